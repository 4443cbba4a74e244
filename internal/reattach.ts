/**
 * Reattach configurations as JSON, both forms (docs/protocol.md §9):
 *
 * - plugwire's own, written with `JSON.stringify(plugin.reattachConfig())` and read back by
 *   {@link parseReattachConfig}: checked field by field, so a bad config is a clear error at
 *   once rather than a failed dial later; it carries AutoMTLS certificates.
 * - go-plugin's, the way Terraform and its providers exchange it in `TF_REATTACH_PROVIDERS`
 *   (§9.2): a map from a provider name to
 *   `{"Protocol","ProtocolVersion","Pid","Test","Addr":{"Network","String"}}` (the field names
 *   of terraform-plugin-go's `tf6server` debug mode). go-plugin itself defines no JSON form,
 *   since its `Addr` is a Go interface; this is the one the ecosystem uses.
 *
 * @module
 */

import { PluginError } from "./errors.ts";
import type { ReattachConfig } from "./options.ts";

const MAX_PID = 2 ** 31 - 1;

/**
 * Parses and checks a reattach config written with `JSON.stringify(plugin.reattachConfig())`.
 * Unknown fields are dropped. Throws a {@link PluginError} (`misconfigured`) naming the first
 * problem, never any other error.
 *
 * @param json The JSON text.
 * @returns The config, for `startPlugin({ reattach })`.
 *
 * @example Reattaching from an environment variable
 * ```ts
 * import { parseReattachConfig, PluginError } from "@plugwire/plugwire/host";
 * import assert from "node:assert/strict";
 *
 * const json = `{"protocol":"grpc","protocolVersion":1,"network":"unix",` +
 *   `"address":"/tmp/plugin123/plugin.sock","pid":4242}`;
 * const reattach = parseReattachConfig(json); // then startPlugin({ reattach, ... })
 * assert.equal(reattach.pid, 4242);
 * assert.throws(
 *   () => parseReattachConfig(`{"protocol":"grpc","pid":"4242"}`),
 *   (err) => err instanceof PluginError && err.code === "misconfigured",
 * );
 * ```
 */
export function parseReattachConfig(json: string): ReattachConfig {
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch (err) {
    throw bad(`it is not JSON (${(err as Error).message})`);
  }
  if (!isObject(value)) throw bad("it is not a JSON object");
  if (value.protocol !== "grpc") throw bad(`protocol must be "grpc"`);
  const { protocolVersion, network, address, pid, tls, socketDir } = value;
  if (!Number.isSafeInteger(protocolVersion) || (protocolVersion as number) < 0) {
    throw bad("protocolVersion must be a whole number");
  }
  if (network !== "unix" && network !== "tcp") throw bad(`network must be "unix" or "tcp"`);
  if (typeof address !== "string" || address === "" || address.includes("\0")) {
    throw bad("address must be a socket path or host:port");
  }
  if (!Number.isSafeInteger(pid) || (pid as number) < 1 || (pid as number) > MAX_PID) {
    throw bad("pid must be a process id");
  }
  const config: ReattachConfig = {
    protocol: "grpc",
    protocolVersion: protocolVersion as number,
    network,
    address,
    pid: pid as number,
  };
  if (tls !== undefined) {
    if (!isObject(tls)) throw bad("tls must be an object");
    for (const field of ["cert", "key", "ca"] as const) {
      if (typeof tls[field] !== "string") throw bad(`tls.${field} must be PEM text`);
    }
    if (tls.serverName !== undefined && typeof tls.serverName !== "string") {
      throw bad("tls.serverName must be a string");
    }
    config.tls = {
      cert: tls.cert as string,
      key: tls.key as string,
      ca: tls.ca as string,
      ...(tls.serverName === undefined ? {} : { serverName: tls.serverName as string }),
    };
  }
  if (socketDir !== undefined) {
    if (typeof socketDir !== "string" || socketDir === "") throw bad("socketDir must be a path");
    config.socketDir = socketDir;
  }
  return config;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function bad(why: string): PluginError {
  return new PluginError("misconfigured", `Bad reattach config: ${why}`);
}

/**
 * One entry of `TF_REATTACH_PROVIDERS`: go-plugin's `ReattachConfig` with its address spelled
 * out, field names as Go writes them.
 *
 * @example The entry a provider started with `-debug` prints
 * ```ts
 * import type { GoReattachConfig } from "@plugwire/plugwire/host";
 * import assert from "node:assert/strict";
 *
 * const entry: GoReattachConfig = {
 *   Protocol: "grpc",
 *   ProtocolVersion: 6,
 *   Pid: 4242,
 *   Test: true,
 *   Addr: { Network: "unix", String: "/tmp/plugin123" },
 * };
 * assert.equal(JSON.stringify(entry).startsWith('{"Protocol":"grpc"'), true);
 * ```
 */
export interface GoReattachConfig {
  /** `grpc` (go-plugin's other protocol, `netrpc`, is not spoken by plugwire). */
  Protocol: string;
  /** The negotiated application protocol version. */
  ProtocolVersion: number;
  /** The plugin's process id. */
  Pid: number;
  /** True when the host did not start the plugin and must never stop it (debug mode). */
  Test: boolean;
  /** Where the plugin listens: Go's `net.Addr`, as `Network()` and `String()`. */
  Addr: { Network: string; String: string };
}

function fail(
  message: string,
  code: "misconfigured" | "unsupported-protocol" | "unknown-network" = "misconfigured",
): never {
  throw new PluginError(code, `Cannot read reattach configuration: ${message}`);
}

function isEntry(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value) &&
    "Addr" in value && "Pid" in value;
}

/**
 * Reads go-plugin's reattach JSON: either one entry, or a `TF_REATTACH_PROVIDERS` map of them,
 * from which `name` picks one (it may be left out when the map has a single entry).
 *
 * @param json The JSON text, or the parsed value.
 * @param name The provider's name in a map.
 * @returns plugwire's reattach configuration, `test` set from `Test`.
 * @throws {PluginError} `misconfigured` for malformed input or an unknown or ambiguous name,
 *   `unsupported-protocol` for a protocol other than `grpc` (an empty one means `netrpc`),
 *   `unknown-network` for a network other than `unix` or `tcp`.
 *
 * @example Attaching to a provider started with `-debug`
 * ```ts
 * import { parseReattachProviders, type StartOptions } from "@plugwire/plugwire/host";
 * import { KV } from "../gen/kv/kv_pb.ts";
 * import assert from "node:assert/strict";
 *
 * // What the provider printed, e.g. read from Deno.env.get("TF_REATTACH_PROVIDERS"):
 * const printed = `{"registry.terraform.io/example/kv":{"Protocol":"grpc","ProtocolVersion":1,` +
 *   `"Pid":4242,"Test":true,"Addr":{"Network":"unix","String":"/tmp/plugin123"}}}`;
 * const reattach = parseReattachProviders(printed, "registry.terraform.io/example/kv");
 * assert.deepEqual(reattach, {
 *   protocol: "grpc",
 *   protocolVersion: 1,
 *   network: "unix",
 *   address: "/tmp/plugin123",
 *   pid: 4242,
 *   test: true, // kill() only disconnects: the provider keeps running
 * });
 * const options: StartOptions = {
 *   reattach,
 *   handshake: { protocolVersion: 1, magicCookieKey: "BASIC_PLUGIN", magicCookieValue: "hello" },
 *   plugins: { kv: KV },
 * };
 * // await using plugin = await startPlugin(options);
 * ```
 */
export function parseReattachProviders(json: string | unknown, name?: string): ReattachConfig {
  let value: unknown = json;
  if (typeof json === "string") {
    try {
      value = JSON.parse(json);
    } catch (cause) {
      fail(`not JSON (${(cause as Error).message})`);
    }
  }
  if (!isEntry(value)) {
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      fail("expected a JSON object");
    }
    const names = Object.keys(value);
    const chosen = name ?? (names.length === 1 ? names[0] : undefined);
    if (chosen === undefined) {
      fail(`give the provider's name, one of ${JSON.stringify(names)}`);
    }
    if (!Object.hasOwn(value, chosen)) {
      fail(`no provider ${JSON.stringify(chosen)} in ${JSON.stringify(names)}`);
    }
    value = (value as Record<string, unknown>)[chosen];
    if (!isEntry(value)) fail(`the entry of ${JSON.stringify(chosen)} has no Addr and Pid`);
  }
  const entry = value as Partial<Record<keyof GoReattachConfig, unknown>>;
  const protocol = entry.Protocol ?? "";
  if (typeof protocol !== "string") fail("Protocol is not a string");
  if (protocol !== "grpc") {
    fail(
      `unsupported plugin protocol ${JSON.stringify(protocol || "netrpc")}. Supported: [grpc]`,
      "unsupported-protocol",
    );
  }
  const version = entry.ProtocolVersion;
  if (!Number.isInteger(version)) fail("ProtocolVersion is not an integer");
  const pid = entry.Pid;
  if (!Number.isInteger(pid) || (pid as number) <= 0) fail("Pid is not a process id");
  const addr = entry.Addr as { Network?: unknown; String?: unknown } | null;
  if (typeof addr?.Network !== "string" || typeof addr?.String !== "string" || !addr.String) {
    fail("Addr needs a Network and a String");
  }
  if (addr.Network !== "unix" && addr.Network !== "tcp") {
    fail(`unknown address type: ${addr.Network}`, "unknown-network");
  }
  if (entry.Test !== undefined && typeof entry.Test !== "boolean") fail("Test is not a boolean");
  const config: ReattachConfig = {
    protocol: "grpc",
    protocolVersion: version as number,
    network: addr.Network,
    address: addr.String,
    pid: pid as number,
  };
  if (entry.Test) config.test = true;
  return config;
}

/**
 * go-plugin's reattach entry for a plugwire reattach configuration (certificates and socket
 * directory have no place in it: Terraform attaches without TLS).
 *
 * @param config plugwire's reattach configuration.
 * @returns The entry, with Go's field names.
 */
export function toGoReattachConfig(config: ReattachConfig): GoReattachConfig {
  return {
    Protocol: config.protocol,
    ProtocolVersion: config.protocolVersion,
    Pid: config.pid,
    Test: config.test ?? false,
    Addr: { Network: config.network, String: config.address },
  };
}

/**
 * The value of `TF_REATTACH_PROVIDERS` for some providers: a JSON map from each name to its
 * go-plugin reattach entry.
 *
 * @param providers plugwire reattach configurations by provider name.
 * @returns JSON text.
 *
 * @example Handing a running plugin to Terraform
 * ```ts
 * import { formatReattachProviders, type ReattachConfig } from "@plugwire/plugwire/host";
 * import assert from "node:assert/strict";
 *
 * // A host's plugin.reattachConfig(), marked as not to be stopped by Terraform:
 * const config: ReattachConfig = {
 *   protocol: "grpc",
 *   protocolVersion: 6,
 *   network: "unix",
 *   address: "/tmp/plugin123",
 *   pid: 4242,
 *   test: true,
 * };
 * const env = formatReattachProviders({ "registry.terraform.io/example/kv": config });
 * assert.equal(
 *   env,
 *   `{"registry.terraform.io/example/kv":{"Protocol":"grpc","ProtocolVersion":6,"Pid":4242,` +
 *     `"Test":true,"Addr":{"Network":"unix","String":"/tmp/plugin123"}}}`,
 * );
 * ```
 */
export function formatReattachProviders(providers: Record<string, ReattachConfig>): string {
  const out: Record<string, GoReattachConfig> = {};
  for (const [name, config] of Object.entries(providers)) out[name] = toGoReattachConfig(config);
  return JSON.stringify(out);
}

/**
 * What a provider in debug mode prints on stdout, as terraform-plugin-go words it on Unix: the
 * `TF_REATTACH_PROVIDERS` assignment, single-quoted for a POSIX shell.
 */
export function debugBanner(name: string, config: ReattachConfig): string {
  const json = formatReattachProviders({ [name]: config });
  return "Provider started. To attach Terraform CLI, set the TF_REATTACH_PROVIDERS environment " +
    "variable with the following:\n\n" +
    `\tTF_REATTACH_PROVIDERS='${json.replaceAll("'", `'"'"'`)}'\n\n`;
}
