/**
 * The host's options: what `startPlugin()` takes, and their validation (docs/protocol.md §2.1,
 * §3, §9). Plain types and one check; nothing here starts or connects anything.
 *
 * @module
 */

import type { GrpcOptions, ServiceDescriptor } from "./shapes.ts";
import type { GrpcBroker } from "./broker.ts";
import type { Checksum } from "./checksum.ts";
import { PluginError } from "./errors.ts";
import { messageSizeOptions, type ServiceClient } from "./grpc.ts";
import type { Interceptor } from "./interceptors.ts";
import type { HandshakeConfig, Network } from "./handshake.ts";
import type { LogSink } from "./logger.ts";
import type { AutoMtlsCurve } from "./mtls.ts";
import type { StdioSink } from "./stdio.ts";
import type { TlsConfig } from "./tls.ts";

/**
 * A plugin as the host sees it: a protobuf-es service descriptor (dispensed as a typed client)
 * or a function that builds any client object from the connection (go-plugin's GRPCClient).
 *
 * @example A descriptor, and a factory of a client of one's own
 * ```ts
 * import type { HostPlugin, PluginConnection } from "@plugwire/plugwire/host";
 * import { KV } from "../gen/kv/kv_pb.ts";
 *
 * // Dispensed as `ServiceClient<typeof KV>`.
 * const kv = KV satisfies HostPlugin;
 * // Dispensed as what the factory returns: a store of strings.
 * const text = ((connection: PluginConnection) => {
 *   const client = connection.client(KV);
 *   return {
 *     get: async (key: string) => new TextDecoder().decode((await client.get({ key })).value),
 *     put: async (key: string, value: string) => {
 *       await client.put({ key, value: new TextEncoder().encode(value) });
 *     },
 *   };
 * }) satisfies HostPlugin;
 * const plugins = { kv, text }; // startPlugin({ ..., plugins }).dispense("text").get("a")
 * ```
 */
export type HostPlugin = ServiceDescriptor | ((connection: PluginConnection) => unknown);

/**
 * Host plugins by name. Names are local: only service names cross the wire.
 *
 * @example Two services of one plugin process
 * ```ts
 * import type { HostPluginSet } from "@plugwire/plugwire/host";
 * import { KV } from "../gen/kv/kv_pb.ts";
 * import { Greeter } from "../gen/greeter/greeter_pb.ts";
 *
 * // `satisfies` keeps each entry's type, so that dispense("kv") returns a typed KV client.
 * const plugins = { kv: KV, greeter: Greeter } satisfies HostPluginSet;
 * ```
 */
export type HostPluginSet = Record<string, HostPlugin>;

/**
 * What `dispense()` returns for a host plugin.
 *
 * @typeParam P The host plugin: a service descriptor or a client factory.
 *
 * @example Naming the type of a dispensed client
 * ```ts
 * import type { Dispensed } from "@plugwire/plugwire/host";
 * import { KV } from "../gen/kv/kv_pb.ts";
 *
 * type KVClient = Dispensed<typeof KV>; // the same as ServiceClient<typeof KV>
 * async function readText(kv: KVClient, key: string): Promise<string> {
 *   return new TextDecoder().decode((await kv.get({ key })).value);
 * }
 * ```
 */
export type Dispensed<P> = P extends ServiceDescriptor ? ServiceClient<P>
  : P extends (connection: PluginConnection) => infer T ? T
  : never;

/**
 * The connection a client factory builds on.
 *
 * @example A client factory hiding the generated client
 * ```ts
 * import type { PluginConnection } from "@plugwire/plugwire/host";
 * import { Greeter } from "../gen/greeter/greeter_pb.ts";
 *
 * function greeter(connection: PluginConnection) {
 *   const client = connection.client(Greeter);
 *   return { hello: async (name: string) => (await client.greet({ name })).message };
 * }
 * // (await startPlugin({ ..., plugins: { greeter } })).dispense("greeter").hello("deno")
 * const plugins = { greeter };
 * ```
 */
export interface PluginConnection {
  /** A typed client for any service of the plugin. */
  client<S extends ServiceDescriptor>(service: S): ServiceClient<S>;
  /** The host side of the broker. */
  readonly broker: GrpcBroker;
}

/**
 * How to start the plugin.
 *
 * @example Running a TypeScript plugin with Deno
 * ```ts
 * import type { PluginCommand } from "@plugwire/plugwire/host";
 *
 * const cmd: PluginCommand = { path: Deno.execPath(), args: ["run", "-A", "plugin.ts"] };
 * ```
 */
export interface PluginCommand {
  /** The executable (a path, or a name looked up on PATH). */
  path: string;
  /** Its arguments. */
  args?: string[];
}

/**
 * What a host needs to reconnect to a running plugin from another process. JSON-serialisable.
 * Unlike go-plugin's, it carries the certificates of an AutoMTLS session, so a reattached host
 * keeps using mutual TLS.
 *
 * @example Handing a running plugin over to another host process
 * ```ts
 * import type { ReattachConfig, StartOptions } from "@plugwire/plugwire/host";
 * import { KV } from "../gen/kv/kv_pb.ts";
 *
 * // The first host: `json = JSON.stringify(plugin.reattachConfig()); await plugin.close();`
 * const json = `{"protocol":"grpc","protocolVersion":1,"network":"unix",` +
 *   `"address":"/tmp/plugin123/plugin.sock","pid":4242}`;
 * // The second host:
 * const reattach: ReattachConfig = JSON.parse(json);
 * const options: StartOptions = {
 *   reattach,
 *   handshake: { protocolVersion: 1, magicCookieKey: "BASIC_PLUGIN", magicCookieValue: "hello" },
 *   plugins: { kv: KV },
 * };
 * // await using plugin = await startPlugin(options);
 * ```
 */
export interface ReattachConfig {
  /** Always `grpc`. */
  protocol: "grpc";
  /** The negotiated application protocol version. */
  protocolVersion: number;
  /** `unix` or `tcp`. */
  network: Network;
  /** Socket path or `host:port`. */
  address: string;
  /** The plugin's process id. */
  pid: number;
  /** With mutual TLS: the host's certificate and key and the plugin's certificate (PEM). */
  tls?: TlsConfig;
  /** A directory the first host made for the plugin's sockets, removed by whoever kills it. */
  socketDir?: string;
  /**
   * The host did not start the plugin and must never stop it (go-plugin's `Test`, a provider
   * started with `-debug`): `kill()` only disconnects. @default {false}
   */
  test?: boolean;
}

/**
 * Options of `startPlugin()`. Exactly one of `cmd` and `reattach`.
 *
 * @typeParam P The host's plugins, by name.
 *
 * @example A Go plugin over AutoMTLS, with its debug logs
 * ```ts
 * import { consoleLogSink, type StartOptions } from "@plugwire/plugwire/host";
 * import { KV } from "../gen/kv/kv_pb.ts";
 *
 * const options: StartOptions<{ kv: typeof KV }> = {
 *   cmd: ["./plugin-go-grpc"],
 *   handshake: { protocolVersion: 1, magicCookieKey: "BASIC_PLUGIN", magicCookieValue: "hello" },
 *   plugins: { kv: KV },
 *   autoMtls: true,
 *   startTimeoutMs: 10_000,
 *   logger: consoleLogSink("debug"),
 *   syncStderr: "inherit",
 * };
 * // await using plugin = await startPlugin(options);
 * ```
 */
export interface StartOptions<P extends HostPluginSet = HostPluginSet> {
  /** The plugin executable and its arguments: `["./kv-plugin", "--flag"]` or an object. */
  cmd?: string[] | PluginCommand;
  /** Reconnect to a running plugin instead of starting one. */
  reattach?: ReattachConfig;
  /** Must match the plugin's. */
  handshake: HandshakeConfig;
  /** The plugins of `handshake.protocolVersion`. */
  plugins?: P;
  /** Plugin sets by version, to negotiate across versions. */
  versionedPlugins?: Record<number, P>;
  /** Extra environment for the plugin (after the host's, before the protocol's variables). */
  env?: Record<string, string>;
  /** Do not pass the host's environment to the plugin. @default {false} */
  skipHostEnv?: boolean;
  /** Working directory of the plugin. */
  cwd?: string;
  /** `inherit` passes the host's stdin (go-plugin does); `null` gives none. @default {"inherit"} */
  stdin?: "inherit" | "null";
  /** How long the plugin may take to print its handshake line. @default {60000} */
  startTimeoutMs?: number;
  /** How long each step of `kill()` waits for the plugin to exit. @default {2000} */
  killGraceMs?: number;
  /** Port range for TCP plugins (`PLUGIN_MIN_PORT`/`PLUGIN_MAX_PORT`). @default {10000} */
  minPort?: number;
  /** Highest port for TCP plugins. @default {25000} */
  maxPort?: number;
  /** Where the plugin's sockets go (a fresh private directory inside it). @default {os temp dir} */
  unixSocketDir?: string;
  /** A group (name or gid) that may connect to the plugin's sockets (mode 0660). */
  unixSocketGroup?: string;
  /** Generate certificates and speak mutual TLS (go-plugin's AutoMTLS). @default {false} */
  autoMtls?: boolean;
  /**
   * The curve of the host's AutoMTLS certificate: go-plugin's P-521, or P-384 for plugins on
   * grpcio/BoringSSL, which cannot do P-521.
   * @default {"P-521"}
   */
  autoMtlsCurve?: AutoMtlsCurve;
  /**
   * Accept a plugin that answers an AutoMTLS request without a certificate, and talk plaintext.
   * Off by default: without it such a plugin is refused with `tls-required`.
   * @default {false}
   */
  allowPlaintextFallback?: boolean;
  /** Manual TLS (go-plugin's TLSConfig); together with `autoMtls` it is refused (`misconfigured`). */
  tls?: TlsConfig;
  /**
   * The protocol flavour: go-plugin's, or RPCPlugin's (the host lists its transports in
   * `PLUGIN_TRANSPORTS`, mutual TLS is mandatory, the plugin has no controller service).
   * @default {"go-plugin"}
   */
  protocol?: "go-plugin" | "rpcplugin";
  /** Refuse to start an executable whose digest differs. */
  checksum?: Checksum;
  /** The plugin's name in log records. @default {basename of the executable} */
  name?: string;
  /** Receives the plugin's log records (default: text lines on stderr, info and above). */
  logger?: LogSink;
  /**
   * Receives every raw stderr line of the plugin, with its "\n" (go-plugin's `Stderr`). A line
   * longer than 64 KiB comes in pieces of 64 KiB, without "\n" but the last; so do the log
   * records made of it.
   */
  stderr?: (line: string) => void;
  /**
   * Receives the plugin's streamed stdout (GRPCStdio): a function, `"inherit"` to mirror it on
   * the host's stdout, or `"discard"` (go-plugin's default).
   * @default {"discard"}
   */
  syncStdout?: StdioSink | "inherit" | "discard";
  /** The same for the plugin's streamed stderr. @default {"discard"} */
  syncStderr?: StdioSink | "inherit" | "discard";
  /** Aborts the start: the plugin is killed and `startPlugin` rejects. */
  signal?: AbortSignal;
  /** grpc-js channel options for the connection to the plugin. */
  grpcChannelOptions?: GrpcOptions;
  /**
   * The largest message the host sends to or accepts from the plugin, brokered connections
   * included; a larger one fails its call with RESOURCE_EXHAUSTED. Give the plugin the same
   * `maxMessageBytes`, so that both ends agree.
   * @default {268435456} (256 MiB)
   */
  maxMessageBytes?: number;
  /**
   * Wrap every call made through `dispense()` and `client()`, the first outermost:
   * `(next) => async (request) => …`.
   */
  interceptors?: Interceptor[];
  /**
   * The deadline of every call made through `dispense()` and `client()` that gives no
   * `timeoutMs` of its own; it then fails with `DEADLINE_EXCEEDED`. @default {no deadline}
   */
  callTimeoutMs?: number;
}

/**
 * Options of `startPlugin()` for a host with plugin sets by version only: the client it returns
 * is typed by the negotiated version (see `VersionedPluginClient`).
 *
 * @typeParam V The plugin sets by protocol version.
 *
 * @example Two versions of one plugin
 * ```ts
 * import type { VersionedStartOptions } from "@plugwire/plugwire/host";
 * import { KV } from "../gen/kv/kv_pb.ts";
 * import { Test } from "../gen/grpctest/grpctest_pb.ts";
 * import assert from "node:assert/strict";
 *
 * const options: VersionedStartOptions<{ 1: { kv: typeof KV }; 2: { test: typeof Test } }> = {
 *   cmd: ["./plugin"],
 *   handshake: { magicCookieKey: "BASIC_PLUGIN", magicCookieValue: "hello" }, // no protocolVersion
 *   versionedPlugins: { 1: { kv: KV }, 2: { test: Test } },
 * };
 * assert.deepEqual(Object.keys(options.versionedPlugins), ["1", "2"]);
 * ```
 */
export type VersionedStartOptions<V extends Record<number, HostPluginSet>> =
  & Omit<StartOptions, "plugins" | "versionedPlugins">
  & {
    /** Not with `versionedPlugins` here: give every set under its version. */
    plugins?: undefined;
    /** Plugin sets by protocol version; the highest the plugin also speaks wins. */
    versionedPlugins: V;
  };

/**
 * Throws a {@link PluginError} (`misconfigured`) for options `startPlugin()` cannot work with,
 * with a sentence that names the option, before anything is created.
 */
export function validateStartOptions(options: StartOptions): void {
  const bad = (message: string): never => {
    throw new PluginError("misconfigured", message);
  };
  if (typeof options !== "object" || options === null) bad("startPlugin needs an options object");
  if ((options.cmd === undefined) === (options.reattach === undefined)) {
    bad("exactly one of cmd or reattach must be set");
  }
  if (options.reattach && options.checksum) {
    bad("only one of Reattach or SecureConfig can be set");
  }
  if (!options.plugins && !options.versionedPlugins) bad("give plugins or versionedPlugins");
  if (options.plugins && options.handshake?.protocolVersion === undefined) {
    bad("plugins need handshake.protocolVersion (or give versionedPlugins)");
  }
  const h = options.handshake;
  if (!h?.magicCookieKey || !h.magicCookieValue) {
    bad("handshake needs a magicCookieKey and a magicCookieValue");
  }
  if (
    h.protocolVersion !== undefined &&
    (!Number.isSafeInteger(h.protocolVersion) || h.protocolVersion < 1)
  ) {
    bad(`handshake.protocolVersion must be a positive integer, not ${h.protocolVersion}`);
  }
  if (options.cmd !== undefined) {
    const path = Array.isArray(options.cmd) ? options.cmd[0] : options.cmd?.path;
    if (typeof path !== "string" || path === "") bad("cmd needs an executable");
  }
  // go-plugin ignores TLSConfig under AutoMTLS; silently dropping either is worse than saying so.
  if (options.tls && options.autoMtls) {
    bad("tls and autoMtls cannot be used together: give your own certificates or ask for AutoMTLS");
  }
  if (options.tls && (!options.tls.cert || !options.tls.key || !options.tls.ca)) {
    bad("tls needs a cert, a key and a ca (PEM)");
  }
  const positive = (name: string, value: number | undefined, min: number) => {
    if (value !== undefined && !(Number.isFinite(value) && value >= min)) {
      bad(`${name} must be a number of milliseconds >= ${min}, not ${value}`);
    }
  };
  if (options.maxMessageBytes !== undefined) messageSizeOptions(options.maxMessageBytes);
  positive("startTimeoutMs", options.startTimeoutMs, 1);
  positive("killGraceMs", options.killGraceMs, 0);
  for (
    const [name, port] of [["minPort", options.minPort], ["maxPort", options.maxPort]] as const
  ) {
    if (port !== undefined && !(Number.isInteger(port) && port >= 0 && port <= 65535)) {
      bad(`${name} must be a port number (0-65535), not ${port}`);
    }
  }
  if ((options.minPort ?? 10000) > (options.maxPort ?? 25000)) {
    bad(`minPort ${options.minPort ?? 10000} is greater than maxPort ${options.maxPort ?? 25000}`);
  }
  const oneOf = (name: string, value: unknown, allowed: readonly unknown[]) => {
    if (value !== undefined && !allowed.includes(value)) {
      bad(`${name} must be one of ${allowed.map((a) => JSON.stringify(a)).join(", ")}`);
    }
  };
  oneOf("stdin", options.stdin, ["inherit", "null"]);
  oneOf("protocol", options.protocol, ["go-plugin", "rpcplugin"]);
  for (const name of ["syncStdout", "syncStderr"] as const) {
    if (typeof options[name] !== "function") oneOf(name, options[name], ["inherit", "discard"]);
  }
  if (options.checksum) {
    oneOf("checksum.algorithm", options.checksum.algorithm, [
      "SHA-1",
      "SHA-256",
      "SHA-384",
      "SHA-512",
    ]);
  }
  const r = options.reattach;
  if (r) {
    oneOf("reattach.network", r.network, ["unix", "tcp"]);
    if (!Number.isSafeInteger(r.pid) || r.pid < 1) {
      bad(`reattach.pid must be a process id, not ${r.pid}`);
    }
    if (typeof r.address !== "string" || r.address === "") bad("reattach.address is empty");
    if (!Number.isSafeInteger(r.protocolVersion)) {
      bad(`reattach.protocolVersion must be an integer, not ${r.protocolVersion}`);
    }
  }
}

/** The host's plugin sets by protocol version: `versionedPlugins`, and `plugins` under
 * `handshake.protocolVersion`. */
export function hostPluginSets<P extends HostPluginSet>(options: StartOptions<P>): Map<number, P> {
  const sets = new Map<number, P>();
  for (const [v, set] of Object.entries(options.versionedPlugins ?? {})) sets.set(Number(v), set);
  const version = options.handshake.protocolVersion;
  if (options.plugins && version !== undefined && !sets.has(version)) {
    sets.set(version, options.plugins);
  }
  return sets;
}
