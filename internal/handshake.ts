/**
 * The handshake line: the one line a plugin prints on stdout to tell its host where to connect.
 *
 * Wire facts: docs/protocol.md §2.3 (format) and §2.4 (how a go-plugin v1.8
 * host parses it). Error texts are go-plugin's, so users can search for them.
 *
 *     CORE|APP|NETWORK|ADDRESS|PROTOCOL|CERT[|MUX]\n
 *
 * @module
 */

import { PluginError } from "./errors.ts";

/** go-plugin's core protocol version: every plugin prints it, every host requires it. */
export const CORE_PROTOCOL_VERSION = 1;

/**
 * The transports a handshake can name.
 *
 * @example Serving on loopback TCP instead of a unix socket
 * ```ts
 * import { grpcPlugin, type Network, type ServeOptions } from "@plugwire/plugwire/plugin";
 * import { Greeter } from "../gen/greeter/greeter_pb.ts";
 *
 * const network: Network = Deno.build.os === "windows" ? "tcp" : "unix";
 * const options: ServeOptions = {
 *   handshake: { protocolVersion: 1, magicCookieKey: "GREETER", magicCookieValue: "hi" },
 *   plugins: {
 *     greeter: grpcPlugin(Greeter, {
 *       greet: ({ name }) => ({ message: `hello, ${name}` }),
 *       count: ({ text }) => ({ letters: text.length, words: text.split(" ").length }),
 *     }),
 *   },
 *   network,
 * };
 * ```
 */
export type Network = "unix" | "tcp";

/**
 * The handshake both sides must agree on. The cookie is not a security measure: it only tells a
 * plugin that it was started by a host, so a user who runs it by hand gets a clear message.
 *
 * @example One constant for the host and the plugin
 * ```ts
 * import type { HandshakeConfig } from "@plugwire/plugwire";
 *
 * // In a module both sides import; go-plugin's examples use these values.
 * const HANDSHAKE: HandshakeConfig = {
 *   protocolVersion: 1,
 *   magicCookieKey: "BASIC_PLUGIN",
 *   magicCookieValue: "hello",
 * };
 * // Host: startPlugin({ handshake: HANDSHAKE, ... }); plugin: serve({ handshake: HANDSHAKE, ... })
 * ```
 */
export interface HandshakeConfig {
  /**
   * The application protocol version of `plugins`. Not needed when only `versionedPlugins`
   * are given: their keys are the versions.
   */
  protocolVersion?: number;
  /** Name of the environment variable the host sets (e.g. `BASIC_PLUGIN`). */
  magicCookieKey: string;
  /** Its value (e.g. `hello`). */
  magicCookieValue: string;
}

/** What a plugin announces in its handshake line. */
export interface HandshakeInfo {
  /** Core protocol version (always 1 for a compatible plugin). */
  coreVersion: number;
  /** The negotiated application protocol version. */
  appVersion: number;
  /** `unix` or `tcp`. */
  network: Network;
  /** A socket path for `unix`, `host:port` for `tcp`. */
  address: string;
  /** `grpc` (plugwire speaks nothing else). */
  protocol: string;
  /** DER of the plugin's TLS certificate (AutoMTLS), or undefined without TLS. */
  serverCert?: Uint8Array;
  /** Whether the plugin supports a multiplexed broker; undefined when the field is absent. */
  multiplex?: boolean;
}

/** What the plugin side needs to print its line. */
export interface HandshakeLineFields {
  appVersion: number;
  network: Network;
  address: string;
  /** Field 6: base64 of the certificate DER without padding, or "" without TLS. */
  serverCert: string;
  /**
   * Field 7. go-plugin prints it only when the host set `PLUGIN_MULTIPLEX_GRPC` (to any value),
   * because hosts older than go-plugin v1.6 split the line into at most 6 fields and would
   * read `cert|true` as the certificate. Undefined leaves the field out.
   */
  multiplex?: boolean;
}

/**
 * Formats the handshake line, newline included.
 *
 * @example
 * ```ts ignore
 * formatHandshakeLine({ appVersion: 1, network: "unix", address: "/tmp/plugin1", serverCert: "" });
 * // "1|1|unix|/tmp/plugin1|grpc|\n"
 * ```
 */
export function formatHandshakeLine(fields: HandshakeLineFields): string {
  for (const [name, value] of [["address", fields.address], ["serverCert", fields.serverCert]]) {
    if (/[|\r\n]/.test(value)) {
      throw new TypeError(`Cannot format handshake: ${name} contains "|" or a line break`);
    }
  }
  const parts = [
    String(CORE_PROTOCOL_VERSION),
    String(fields.appVersion),
    fields.network,
    fields.address,
    "grpc",
    fields.serverCert,
  ];
  if (fields.multiplex !== undefined) parts.push(String(fields.multiplex));
  return parts.join("|") + "\n";
}

/** What the host expects, and what it needs to explain a failure. */
export interface HandshakeExpectations {
  /** The application protocol versions the host has plugin sets for. */
  hostVersions: readonly number[];
  /** True when the host asked for a multiplexed broker (`PLUGIN_MULTIPLEX_GRPC`). */
  multiplexRequested?: boolean;
  /** True when stdout ended without a line (go-plugin adds a sentence for it). */
  eof?: boolean;
  /** Text appended to an "unrecognized" error: why a binary might not speak the protocol. */
  diagnostics?: string;
  /** Decodes field 6 into DER; throws on malformed input. */
  decodeCert: (text: string) => Uint8Array;
}

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

/**
 * Go's strconv.Atoi: an optional sign and decimal digits within int64. Returns the number, or
 * the error text go-plugin would include.
 */
export function atoi(text: string): number | string {
  if (!/^[+-]?\d+$/.test(text)) {
    return `strconv.Atoi: parsing ${JSON.stringify(text)}: invalid syntax`;
  }
  const value = BigInt(text);
  if (value < INT64_MIN || value > INT64_MAX) {
    return `strconv.Atoi: parsing ${JSON.stringify(text)}: value out of range`;
  }
  return Number(value);
}

/** Go's strconv.ParseBool spellings. */
const GO_BOOLS: Record<string, boolean> = {
  "1": true,
  t: true,
  T: true,
  TRUE: true,
  true: true,
  True: true,
  "0": false,
  f: false,
  F: false,
  FALSE: false,
  false: false,
  False: false,
};

/**
 * Parses a handshake line with go-plugin v1.8's semantics (docs/protocol.md §2.4), in its order.
 * Throws a {@link PluginError} whose code and message match go-plugin's failure.
 *
 * @example
 * ```ts ignore
 * const info = parseHandshakeLine("1|1|unix|/tmp/plugin1|grpc|\n", {
 *   hostVersions: [1],
 *   decodeCert: decodeHandshakeCert,
 * });
 * // info.address === "/tmp/plugin1"
 * ```
 */
export function parseHandshakeLine(line: string, expect: HandshakeExpectations): HandshakeInfo {
  const trimmed = line.trim();
  const parts = trimmed.split("|");
  if (parts.length < 4) {
    let message = `Unrecognized remote plugin message: ${trimmed}`;
    if (expect.eof) message += "\nFailed to read any lines from plugin's stdout";
    message += "\n" + (expect.diagnostics ?? "");
    throw new PluginError("unrecognized-handshake", message.trimEnd());
  }

  const core = atoi(parts[0]);
  if (typeof core === "string") {
    throw new PluginError(
      "incompatible-core-version",
      `error parsing core protocol version: ${core}`,
    );
  }
  if (core !== CORE_PROTOCOL_VERSION) {
    throw new PluginError(
      "incompatible-core-version",
      `incompatible core API version with plugin. Plugin version: ${parts[0]}, ` +
        `Core version: ${CORE_PROTOCOL_VERSION}\n\n` +
        "To fix this, the plugin usually only needs to be recompiled.\n" +
        "Please report this to the plugin author",
    );
  }

  const app = atoi(parts[1]);
  if (typeof app === "string") {
    throw new PluginError(
      "incompatible-app-version",
      `Error parsing protocol version ${JSON.stringify(parts[1])}: ${app}`,
    );
  }
  if (!expect.hostVersions.includes(app)) {
    // Go prints the slice with %d: "[1 2]".
    const hostList = [...expect.hostVersions].sort((a, b) => a - b).join(" ");
    throw new PluginError(
      "incompatible-app-version",
      `incompatible API version with plugin. Plugin version: ${app}, ` +
        `Client versions: [${hostList}]`,
    );
  }

  const network = parts[2];
  if (network !== "unix" && network !== "tcp") {
    throw new PluginError("unknown-network", `unknown address type: ${parts[3]}`);
  }

  // A line of 4 fields predates gRPC support in go-plugin: it means netrpc.
  const protocol = parts.length >= 5 ? parts[4] : "netrpc";
  if (protocol !== "grpc") {
    throw new PluginError(
      "unsupported-protocol",
      `unsupported plugin protocol ${JSON.stringify(protocol)}. Supported: [grpc]` +
        (protocol === "netrpc" ? "\nplugwire speaks go-plugin's gRPC protocol only." : ""),
    );
  }

  const info: HandshakeInfo = {
    coreVersion: core,
    appVersion: app,
    network,
    address: parts[3],
    protocol,
  };

  // go-plugin only looks at field 6 when it is longer than 50 characters.
  if (parts.length >= 6 && parts[5].length > 50) {
    try {
      info.serverCert = expect.decodeCert(parts[5]);
    } catch (cause) {
      throw new PluginError(
        "bad-certificate",
        `error parsing server cert: ${(cause as Error).message}`,
        { cause },
      );
    }
  }

  // Like go-plugin, field 7 only matters when the host asked for a multiplexed broker.
  const mux = parts.length >= 7 && Object.hasOwn(GO_BOOLS, parts[6])
    ? GO_BOOLS[parts[6]]
    : undefined;
  if (mux !== undefined) info.multiplex = mux;
  if (expect.multiplexRequested) {
    if (parts.length < 7) {
      throw new PluginError(
        "broker-mux-unsupported",
        "client requested gRPC broker multiplexing but plugin does not support the feature; " +
          "for Go plugins, you will need to update the github.com/hashicorp/go-plugin " +
          "dependency and recompile",
      );
    }
    if (mux === undefined) {
      throw new PluginError(
        "broker-mux-unsupported",
        `error parsing ${
          JSON.stringify(parts[6])
        } as a boolean for gRPC broker multiplexing support`,
      );
    }
    if (!mux) {
      throw new PluginError(
        "broker-mux-unsupported",
        "client requested gRPC broker multiplexing but plugin does not support the feature",
      );
    }
  }
  return info;
}
