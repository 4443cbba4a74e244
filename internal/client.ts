/**
 * The host side: start a plugin process, read its handshake, connect over gRPC, and manage the
 * process until it is killed (docs/protocol.md §2, §5, §6, §7, §9).
 *
 * @module
 */

import type { GrpcOptions, ServiceDescriptor } from "./shapes.ts";
import * as grpc from "@grpc/grpc-js";
import { GRPCBroker } from "../gen/core/plugin/grpc_broker_pb.ts";
import { GRPCController } from "../gen/core/plugin/grpc_controller_pb.ts";
import { GRPCStdio } from "../gen/core/plugin/grpc_stdio_pb.ts";
import { Health } from "../gen/core/grpc/health/v1/health_pb.ts";
import { GrpcBroker } from "./broker.ts";
import { type Checksum, verifyChecksum } from "./checksum.ts";
import { handshakeDiagnostics } from "./diagnostics.ts";
import { PluginError, type PluginErrorCode, RpcError, Status } from "./errors.ts";
import { messageSizeOptions, type ServiceClient, serviceDefinition, toRpcError } from "./grpc.ts";
import { type ClientSettings, createServiceClient } from "./grpc_client.ts";
import type { Interceptor } from "./interceptors.ts";
import {
  type HandshakeConfig,
  type HandshakeInfo,
  type Network,
  parseHandshakeLine,
} from "./handshake.ts";
import { StderrLineParser } from "./hclog.ts";
import { LineSplitter, MAX_LINE_BYTES } from "./lines.ts";
import { PLUGIN_HEALTH_SERVICE } from "./health.ts";
import { consoleLogSink, type LogSink } from "./logger.ts";
import { decodeHandshakeCert, derToPem } from "./pem.ts";
import type { AutoMtlsCurve, Certificate } from "./mtls.ts";
import {
  baseName,
  chgrp,
  type ChildHandle,
  chmod,
  type ExitStatus,
  getEnvAll,
  makeTempDir,
  pidAlive,
  probeAddress,
  removePath,
  resolveExecutable,
  resolveGroup,
  signalPid,
  spawnProcess,
  writeRealStderr,
  writeRealStdout,
  yieldToEventLoop,
} from "./runtime.ts";
import { trackChild, trackClient } from "./lifetime.ts";
import { drainStdio, type StdioSink } from "./stdio.ts";
import { channelCredentials, type TlsConfig } from "./tls.ts";
import { clientSockets, hangUp, type Sockets } from "./hangup.ts";
import { grpcTarget } from "./transport.ts";

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
 * Options of {@link startPlugin}. Exactly one of `cmd` and `reattach`.
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
 * is typed by the negotiated version (see {@link VersionedPluginClient}).
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
 * A client of a plugin started with `versionedPlugins`: one `PluginClient` type per version,
 * told apart by `protocolVersion`, so that `dispense()` after a check of the negotiated version
 * is typed by that version's plugin set.
 *
 * @typeParam V The plugin sets by protocol version.
 *
 * @example Dispensing by the negotiated version
 * ```ts
 * import type { VersionedPluginClient } from "@plugwire/plugwire/host";
 * import { KV } from "../gen/kv/kv_pb.ts";
 * import { Test } from "../gen/grpctest/grpctest_pb.ts";
 *
 * type Sets = { 1: { kv: typeof KV }; 2: { test: typeof Test } };
 * async function describe(plugin: VersionedPluginClient<Sets>): Promise<string> {
 *   if (plugin.protocolVersion === 2) {
 *     return `doubled: ${(await plugin.dispense("test").double({ input: 2 })).output}`;
 *   }
 *   return `kv: ${(await plugin.dispense("kv").get({ key: "a" })).value.length} bytes`;
 * }
 * ```
 */
export type VersionedPluginClient<V extends Record<number, HostPluginSet>> = {
  [K in keyof V & number]: PluginClient<V[K]> & { readonly protocolVersion: K };
}[keyof V & number];

const STDERR_TAIL_LINES = 20;
/** go-plugin's bufio.Scanner stops at 64 KiB lines; a longer first line is not a handshake. */
const MAX_HANDSHAKE_LINE = MAX_LINE_BYTES;

function validate(options: StartOptions): void {
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

function hostPluginSets<P extends HostPluginSet>(options: StartOptions<P>): Map<number, P> {
  const sets = new Map<number, P>();
  for (const [v, set] of Object.entries(options.versionedPlugins ?? {})) sets.set(Number(v), set);
  const version = options.handshake.protocolVersion;
  if (options.plugins && version !== undefined && !sets.has(version)) {
    sets.set(version, options.plugins);
  }
  return sets;
}

/**
 * A running plugin, connected. Dispense typed clients from it; kill it when done (or let
 * `await using` do it).
 *
 * @typeParam P The host's plugins, by name.
 *
 * @example Dispensing a typed client, then stopping the plugin
 * ```ts
 * import { startPlugin } from "@plugwire/plugwire/host";
 * import { KV } from "../gen/kv/kv_pb.ts";
 * import assert from "node:assert/strict";
 *
 * const cwd = await Deno.makeTempDir(); // the KV plugin keeps each value in a file there
 * const pluginFile = new URL("../examples/kv/plugin.ts", import.meta.url).pathname;
 * const plugin = await startPlugin({
 *   cmd: [Deno.execPath(), "run", "-A", "--quiet", pluginFile],
 *   handshake: { protocolVersion: 1, magicCookieKey: "BASIC_PLUGIN", magicCookieValue: "hello" },
 *   plugins: { kv: KV },
 *   cwd,
 *   logger: () => {},
 * });
 * try {
 *   await plugin.ping();
 *   const kv = plugin.dispense("kv"); // a ServiceClient<typeof KV>
 *   await kv.put({ key: "a", value: new TextEncoder().encode("1") });
 *   assert.equal(plugin.reattachConfig().pid, plugin.pid);
 * } finally {
 *   await plugin.kill(); // Shutdown over gRPC, then SIGTERM, then SIGKILL
 * }
 * assert.ok(plugin.hasExited);
 * const { code, signal } = await plugin.exited; // code 0 after a clean shutdown
 * await Deno.remove(cwd, { recursive: true });
 * ```
 */
export class PluginClient<P extends HostPluginSet = HostPluginSet> {
  /** The negotiated application protocol version. */
  readonly protocolVersion: number;
  /** `unix` or `tcp`. */
  readonly network: Network;
  /** Socket path or `host:port`. */
  readonly address: string;
  /** The plugin's process id. */
  readonly pid: number;
  /** The plugin's name in logs. */
  readonly name: string;
  /** The host side of the broker: serve callbacks for the plugin, dial the plugin's servers. */
  readonly broker: GrpcBroker;
  /** Settles with the exit status when the plugin process exits. */
  readonly exited: Promise<ExitStatus>;
  /** Whether the connection uses TLS (AutoMTLS or manual). */
  readonly tls: boolean;
  /** The plugin's handshake line as it printed it; undefined after a reattach. */
  readonly handshakeLine: string | undefined;

  readonly #plugins: P;
  readonly #grpc: grpc.Client;
  readonly #sockets: Sockets;
  readonly #tls: TlsConfig | undefined;
  readonly #child: ChildHandle | undefined;
  readonly #socketDir: string | undefined;
  readonly #killGraceMs: number;
  readonly #lifetime = new AbortController();
  readonly #dispensed = new Map<string, unknown>();
  readonly #untrack: () => void;
  #hasExited = false;
  #killing: Promise<void> | undefined;
  #closing: Promise<void> | undefined;
  #reattached: boolean;
  /** kill() or close() was called: calls from then on are CANCELLED, not UNAVAILABLE. */
  #closedLocally = false;
  #exitStatus: ExitStatus | undefined;
  readonly #controller: boolean;
  readonly #callSettings: ClientSettings;
  readonly #test: boolean;

  /** @internal Use {@link startPlugin}. */
  constructor(init: {
    info: HandshakeInfo;
    plugins: P;
    grpc: grpc.Client;
    /** The channel's sockets (hangup.ts); none for a channel someone else owns. */
    sockets?: Sockets;
    tls?: TlsConfig;
    broker: GrpcBroker;
    name: string;
    pid: number;
    child?: ChildHandle;
    exited: Promise<ExitStatus>;
    socketDir?: string;
    killGraceMs: number;
    untrack: () => void;
    reattached: boolean;
    controller?: boolean;
    callSettings?: ClientSettings;
    test?: boolean;
    handshakeLine?: string;
  }) {
    this.protocolVersion = init.info.appVersion;
    this.network = init.info.network;
    this.address = init.info.address;
    this.pid = init.pid;
    this.name = init.name;
    this.broker = init.broker;
    this.#plugins = init.plugins;
    this.#grpc = init.grpc;
    this.#sockets = init.sockets ?? new Set();
    this.#tls = init.tls;
    this.#child = init.child;
    this.#socketDir = init.socketDir;
    this.#killGraceMs = init.killGraceMs;
    const untrackClient = trackClient(this);
    this.#untrack = () => {
      init.untrack();
      untrackClient();
    };
    this.#reattached = init.reattached;
    this.#controller = init.controller ?? true;
    this.broker.setClosedError(this.#closedError);
    this.#callSettings = init.callSettings ?? {};
    this.#test = init.test ?? false;
    this.tls = init.tls !== undefined;
    this.handshakeLine = init.handshakeLine;
    this.exited = init.exited.then((status) => {
      this.#hasExited = true;
      this.#exitStatus = status;
      void this.#close();
      return status;
    });
  }

  /** True once the plugin process has exited. */
  get hasExited(): boolean {
    return this.#hasExited;
  }

  /** The abort signal of this client's life: aborted when it is killed or the plugin exits. */
  get signal(): AbortSignal {
    return this.#lifetime.signal;
  }

  /** A typed client for any service of the plugin, by descriptor. */
  client<S extends ServiceDescriptor>(service: S): ServiceClient<S> {
    return createServiceClient(service, this.#grpc, {
      ...this.#callSettings,
      closed: this.#closedError,
    });
  }

  /**
   * What a call fails with once the connection is gone: CANCELLED after kill() or close(),
   * UNAVAILABLE when the plugin went away by itself.
   */
  readonly #closedError = (): RpcError => {
    const who = `plugin ${JSON.stringify(this.name)} (pid ${this.pid})`;
    if (this.#closedLocally) {
      return new RpcError(Status.CANCELLED, `${who}: the client was closed (kill() or close())`);
    }
    const status = this.#exitStatus;
    const how = !status
      ? "is gone"
      : status.signal
      ? `was killed by ${status.signal}`
      : status.code === null
      ? "exited"
      : `exited with status ${status.code}`;
    return new RpcError(Status.UNAVAILABLE, `${who} ${how}`);
  };

  /**
   * The client of the named plugin of the negotiated version. Throws `unknown-plugin` for a
   * name the host's plugin set lacks.
   */
  dispense<K extends keyof P & string>(name: K): Dispensed<P[K]> {
    if (this.#dispensed.has(name)) return this.#dispensed.get(name) as Dispensed<P[K]>;
    const plugin = this.#plugins[name];
    if (plugin === undefined) {
      throw new PluginError("unknown-plugin", `unknown plugin type: ${name}`);
    }
    const client = typeof plugin === "function"
      ? plugin({ client: (service) => this.client(service), broker: this.broker })
      : this.client(plugin);
    this.#dispensed.set(name, client);
    return client as Dispensed<P[K]>;
  }

  /**
   * The certificate the plugin presents on this connection (DER), read from a TLS session of
   * one health check; undefined without TLS. With AutoMTLS it is the one from the handshake.
   */
  peerCertificate(): Promise<Uint8Array | undefined> {
    if (!this.#tls) return Promise.resolve(undefined);
    const check = serviceDefinition(Health).check;
    return new Promise((resolve, reject) => {
      const call = this.#grpc.makeUnaryRequest(
        check.path,
        check.requestSerialize,
        check.responseDeserialize,
        { service: PLUGIN_HEALTH_SERVICE },
        { deadline: Date.now() + 5000 },
        (err) => {
          if (err) return reject(toRpcError(err));
          const raw = call.getAuthContext()?.sslPeerCertificate?.raw;
          resolve(raw ? new Uint8Array(raw) : undefined);
        },
      );
    });
  }

  /** Checks that the plugin answers (a health check of service `plugin`). Throws an RpcError. */
  async ping(options: { timeoutMs?: number } = {}): Promise<void> {
    const health = this.client(Health);
    await health.check({ service: PLUGIN_HEALTH_SERVICE }, {
      timeoutMs: options.timeoutMs ?? 5000,
    });
  }

  /** What another host process needs to reattach to this plugin. */
  reattachConfig(): ReattachConfig {
    const config: ReattachConfig = {
      protocol: "grpc",
      protocolVersion: this.protocolVersion,
      network: this.network,
      address: this.address,
      pid: this.pid,
    };
    if (this.#tls) config.tls = { ...this.#tls };
    if (this.#socketDir) config.socketDir = this.#socketDir;
    if (this.#test) config.test = true;
    return config;
  }

  /**
   * Stops the plugin: asks it to shut down over gRPC, waits `killGraceMs`, then sends SIGTERM,
   * waits again, then SIGKILL. Removes its socket directory. Idempotent; safe after the plugin
   * has exited. Calls made afterwards reject with an RpcError `CANCELLED`.
   */
  kill(): Promise<void> {
    this.#closedLocally = true;
    this.#killing ??= this.#kill();
    return this.#killing;
  }

  async #kill(): Promise<void> {
    // A plugin in debug mode (reattach `test`) belongs to whoever started it: only disconnect.
    if (!this.#hasExited && !this.#test) {
      let answered = false;
      // Before the plugin stops its brokered servers under them (see GrpcBroker.dial).
      this.broker.closeConnections();
      // An RPCPlugin plugin has no controller: straight to SIGTERM.
      if (this.#controller) {
        try {
          await this.client(GRPCController).shutdown({}, { timeoutMs: this.#killGraceMs });
          answered = true;
        } catch (err) {
          // grpc-go's hard stop often kills its own reply: UNAVAILABLE still means "stopping".
          answered = (toRpcError(err) as RpcError).code === 14;
        }
      }
      if (!this.#controller || !(await this.#waitExit(this.#killGraceMs))) {
        if (this.#child) {
          this.#child.kill("SIGTERM");
          if (!(await this.#waitExit(this.#killGraceMs))) {
            this.#child.kill("SIGKILL");
            await this.exited;
          }
        } else if (answered || (await this.#answers())) {
          // Reattached: only signal the pid when the plugin still answers at its address, so a
          // reused pid is never hit.
          signalPid(this.pid, "SIGTERM");
          if (!(await this.#waitExit(this.#killGraceMs)) && (await this.#answers())) {
            signalPid(this.pid, "SIGKILL");
            await this.#waitExit(this.#killGraceMs);
          }
        }
      }
    }
    // Whatever the plugin left in its process group (the real plugin behind `sh -c`) goes too.
    this.#child?.killStragglers();
    await this.#close();
    if (this.#socketDir) await removePath(this.#socketDir);
  }

  async #answers(): Promise<boolean> {
    try {
      await this.ping({ timeoutMs: 500 });
      return true;
    } catch {
      return false;
    }
  }

  async #waitExit(ms: number): Promise<boolean> {
    if (this.#hasExited) return true;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
    const result = await Promise.race([this.exited.then(() => true as const), timeout]);
    clearTimeout(timer);
    return result;
  }

  /**
   * Disconnects without stopping the plugin (for a handoff to another host through
   * {@link PluginClient.reattachConfig}). Calls made afterwards reject with an RpcError
   * `CANCELLED`.
   */
  async close(): Promise<void> {
    this.#closedLocally = true;
    this.#reattached = true;
    await this.#close();
  }

  #close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#lifetime.abort();
      this.#untrack();
      // The channel first: a call made once `exited` has settled must see it closed. Its
      // sockets are destroyed before grpc-js can say GOAWAY: Deno 2.9.6 can abort a plugwire
      // plugin that receives one (hangup.ts); go-plugin's hosts end connections the same way.
      hangUp(this.#sockets);
      this.#grpc.close();
      await this.broker.close();
      if (this.#hasExited && !this.#reattached && this.#socketDir) {
        await removePath(this.#socketDir);
      }
    })();
    return this.#closing;
  }

  /** Kills the plugin (for `await using`). */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.kill();
  }
}

/**
 * Waits for the channel to connect. Fails at the first failed attempt, as go-plugin's dial
 * does on a non-temporary error: the plugin listens before it prints its handshake line, so a
 * refused connection, a missing socket or a peer that does not speak HTTP/2 will not get better
 * by waiting.
 */
function waitForConnection(client: grpc.Client, timeoutMs: number): Promise<void> {
  const channel = client.getChannel();
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const check = () => {
      const state = channel.getConnectivityState(true);
      if (state === grpc.connectivityState.READY) return resolve();
      if (state === grpc.connectivityState.TRANSIENT_FAILURE) {
        return reject(new Error("the connection failed"));
      }
      if (state === grpc.connectivityState.SHUTDOWN) {
        return reject(new Error("the channel was closed"));
      }
      channel.watchConnectivityState(state, deadline, (err) => {
        if (err) reject(new Error(`no connection within ${timeoutMs} ms`));
        else check();
      });
    };
    check();
  });
}

/** Connects to a plugin at the handshake's address and opens the protocol's streams. */
export async function connect<P extends HostPluginSet>(
  info: HandshakeInfo,
  plugins: P,
  tls: TlsConfig | undefined,
  options: StartOptions<P>,
  extra: {
    name: string;
    pid: number;
    child?: ChildHandle;
    exited: Promise<ExitStatus>;
    socketDir?: string;
    untrack: () => void;
    reattached: boolean;
    test?: boolean;
    handshakeLine?: string;
  },
): Promise<PluginClient<P>> {
  const { credentials, options: tlsOptions } = channelCredentials(tls);
  // The connection's sockets, to end it without a GOAWAY (see hangup.ts).
  const sockets = clientSockets(credentials);
  const messageSize = messageSizeOptions(options.maxMessageBytes);
  const grpcClient = new grpc.Client(grpcTarget(info.network, info.address), credentials, {
    ...messageSize,
    ...options.grpcChannelOptions,
    ...tlsOptions,
  });
  try {
    await waitForConnection(grpcClient, Math.min(options.startTimeoutMs ?? 60_000, 10_000));
  } catch (cause) {
    // The state says only that it failed; one call on the failed channel reports grpc-js's
    // last connection error (the OS reason, a TLS refusal, a name mismatch, ...).
    const lastError = await createServiceClient(Health, grpcClient)
      .check({ service: PLUGIN_HEALTH_SERVICE }, { timeoutMs: 1000 })
      .then(() => undefined, (err) => {
        const details = (toRpcError(err) as RpcError).details;
        return /Last error: (.*?)(?: \([\dTZ:.-]+\))?\.? Resolution note/s.exec(details)?.[1];
      });
    hangUp(sockets);
    grpcClient.close();
    throw new PluginError(
      "connection-failed",
      `Cannot connect to plugin ${JSON.stringify(extra.name)} at ${info.network}:${info.address}` +
        (tls ? " over mutual TLS" : "") + `: ${(cause as Error).message}` +
        (lastError ? ` (last error: ${lastError})` : ""),
      { cause },
    );
  }
  const broker = new GrpcBroker({
    network: info.network,
    socketDir: extra.socketDir,
    tls,
    grpcServerOptions: messageSize,
    grpcChannelOptions: { ...messageSize, ...options.grpcChannelOptions },
  });
  const client = new PluginClient<P>({
    info,
    plugins,
    grpc: grpcClient,
    sockets,
    tls,
    broker,
    killGraceMs: options.killGraceMs ?? 2000,
    controller: options.protocol !== "rpcplugin",
    callSettings: { interceptors: options.interceptors, timeoutMs: options.callTimeoutMs },
    ...extra,
  });

  // Like go-plugin's newGRPCClient: open the broker stream and the stdio stream right away, for
  // the plugin's whole life. A plugin without them still works: their errors are ignored.
  // Straight on the channel: the protocol's own streams live as long as the plugin, so neither
  // the caller's interceptors nor its default deadline apply to them.
  broker.runStream((outgoing) =>
    createServiceClient(GRPCBroker, grpcClient).startStream(outgoing, { signal: client.signal })
  );
  const sink = (option: StdioSink | "inherit" | "discard" | undefined, inherit: StdioSink) =>
    typeof option === "function" ? option : option === "inherit" ? inherit : () => {};
  void drainStdio(
    createServiceClient(GRPCStdio, grpcClient),
    {
      stdout: sink(options.syncStdout, writeRealStdout),
      stderr: sink(options.syncStderr, writeRealStderr),
    },
    client.signal,
    () => {},
  );
  return client;
}

/**
 * Follows a plugin's stderr: every line to the raw sink, parsed into a record for the logger,
 * and the last lines kept for error messages.
 */
function watchStderr(
  child: ChildHandle,
  name: string,
  options: Pick<StartOptions, "logger" | "stderr">,
): { tail: string[]; done: Promise<void> } {
  const logger = options.logger ?? consoleLogSink("info");
  const parser = new StderrLineParser();
  const tail: string[] = [];
  let ended!: () => void;
  const done = new Promise<void>((resolve) => (ended = resolve));
  const lines = new LineSplitter((line) => {
    options.stderr?.(line);
    const record = parser.parse(line);
    tail.push(record.raw);
    if (tail.length > STDERR_TAIL_LINES) tail.shift();
    try {
      logger({ ...record, plugin: name });
    } catch {
      // A faulty sink must not take the host down.
    }
  });
  child.stderr.onData((chunk) => {
    lines.push(chunk);
    // One chunk at a time, with the event loop in between: a plugin flooding its stderr is
    // held back by the pipe instead of starving the host's calls.
    return yieldToEventLoop();
  });
  child.stderr.onEnd(() => {
    lines.flush();
    ended();
  });
  return { tail, done };
}

/**
 * The first line of a plugin's stdout (the handshake), without its newline; `eof` when stdout
 * ended first. Everything after it is read and discarded, undecoded, so a plugin printing to
 * its real stdout never blocks on a full pipe.
 */
function readFirstLine(child: ChildHandle): Promise<{ line: string; eof: boolean }> {
  return new Promise((resolve) => {
    let pending = true;
    let ended = false;
    const lines = new LineSplitter((line) => {
      if (!pending) return;
      pending = false;
      resolve({ line: line.replace(/\n$/, ""), eof: ended });
    }, MAX_HANDSHAKE_LINE);
    child.stdout.onData((chunk) => {
      if (pending) lines.push(chunk);
    });
    child.stdout.onEnd(() => {
      if (!pending) return;
      ended = true;
      lines.flush();
      if (!pending) return;
      pending = false;
      resolve({ line: "", eof: true });
    });
  });
}

/**
 * Starts a plugin (or reattaches to one), completes the handshake and connects.
 * Any failure kills the process and removes what was created before the error is thrown.
 */
export async function startPlugin<P extends HostPluginSet>(
  options: StartOptions<P>,
): Promise<PluginClient<P>> {
  try {
    return await start(options);
  } catch (err) {
    // The README promises a PluginError with a code for every failed start.
    if (err instanceof PluginError) throw err;
    throw new PluginError("misconfigured", `Cannot start the plugin: ${errorText(err)}`, {
      cause: err,
    });
  }
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * `err` as a PluginError naming the process a failed start had started, so that a caller can
 * check it is gone; a failure that is no PluginError yet gets `code`.
 */
function startError(
  err: unknown,
  code: PluginErrorCode,
  context: { name: string; path: string; pid?: number; stderrTail: string[] },
): PluginError {
  if (err instanceof PluginError) {
    return new PluginError(err.code, err.message, {
      cause: err.cause,
      path: err.path ?? context.path,
      stderrTail: err.stderrTail.length > 0 ? err.stderrTail : context.stderrTail,
      pid: context.pid,
    });
  }
  return new PluginError(
    code,
    `Cannot start plugin ${JSON.stringify(context.name)}: ${errorText(err)}`,
    { cause: err, path: context.path, pid: context.pid, stderrTail: context.stderrTail },
  );
}

async function start<P extends HostPluginSet>(
  options: StartOptions<P>,
): Promise<PluginClient<P>> {
  validate(options);
  const sets = hostPluginSets(options);
  if (options.reattach) return await reattach(options, sets);

  const cmd = Array.isArray(options.cmd)
    ? { path: options.cmd[0], args: options.cmd.slice(1) }
    : options.cmd!;
  if (!cmd.path) throw new PluginError("misconfigured", "cmd needs an executable");
  const path = resolveExecutable(cmd.path);
  const name = options.name ?? baseName(cmd.path);
  if (options.checksum) await verifyChecksum(path, options.checksum);

  // Protocol variables come last, so neither the host's environment nor `env` can break them.
  const env: Record<string, string> = {
    ...(options.skipHostEnv ? {} : getEnvAll()),
    ...options.env,
    [options.handshake.magicCookieKey]: options.handshake.magicCookieValue,
    PLUGIN_MIN_PORT: String(options.minPort ?? 10000),
    PLUGIN_MAX_PORT: String(options.maxPort ?? 25000),
    PLUGIN_PROTOCOL_VERSIONS: [...sets.keys()].join(","),
  };
  const rpcplugin = options.protocol === "rpcplugin";
  if (rpcplugin) env.PLUGIN_TRANSPORTS = "unix,tcp";
  let hostCert: Certificate | undefined;
  // RPCPlugin makes TLS mandatory: AutoMTLS unless the host brought its own TLS settings.
  if (options.autoMtls || (rpcplugin && !options.tls)) {
    // Loaded only for AutoMTLS: the ASN.1 packages cost a plaintext host start-up time.
    const { generateCertificate } = await import("./mtls.ts");
    hostCert = await generateCertificate({ curve: options.autoMtlsCurve });
    env.PLUGIN_CLIENT_CERT = hostCert.certPem;
  } else {
    delete env.PLUGIN_CLIENT_CERT;
  }

  // A private directory for the plugin's sockets: killing the client removes it whole, even
  // when the plugin was SIGKILLed and could not remove its own socket files.
  let socketDir: string;
  try {
    socketDir = await makeTempDir("plugwire-", options.unixSocketDir);
  } catch (cause) {
    throw new PluginError(
      "misconfigured",
      `Cannot make a socket directory for plugin ${JSON.stringify(name)} in ` +
        `${options.unixSocketDir ?? "the temp dir"}: ${errorText(cause)}`,
      { cause, path },
    );
  }
  env.PLUGIN_UNIX_SOCKET_DIR = socketDir;
  let child: ChildHandle | undefined;
  let untrack = () => {};
  let stderrTail: string[] = [];
  const fail = async (
    err: unknown,
    code: PluginErrorCode = "exited-before-connect",
  ): Promise<never> => {
    child?.kill("SIGKILL");
    if (child) await child.exited;
    untrack();
    await removePath(socketDir);
    throw startError(err, code, { name, path, pid: child?.pid, stderrTail: [...stderrTail] });
  };

  try {
    if (options.unixSocketGroup) {
      try {
        await chgrp(socketDir, await resolveGroup(options.unixSocketGroup));
        await chmod(socketDir, 0o770);
      } catch (cause) {
        return await fail(
          new PluginError(
            "misconfigured",
            `Cannot give the socket directory to group ${
              JSON.stringify(options.unixSocketGroup)
            }: ${errorText(cause)}`,
            { cause },
          ),
        );
      }
      env.PLUGIN_UNIX_SOCKET_GROUP = options.unixSocketGroup;
    }
    try {
      child = await spawnProcess(path, cmd.args ?? [], {
        env,
        cwd: options.cwd,
        stdin: options.stdin ?? "inherit",
      });
    } catch (cause) {
      throw new PluginError(
        "exited-before-connect",
        `Cannot start plugin ${JSON.stringify(name)}: ${(cause as Error).message}`,
        { cause, path },
      );
    }
  } catch (err) {
    return await fail(err);
  }
  untrack = trackChild({ child, socketDir });

  const stderr = watchStderr(child, name, options);
  stderrTail = stderr.tail;
  const lineReady = readFirstLine(child);

  const startTimeoutMs = options.startTimeoutMs ?? 60_000;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let onAbort: (() => void) | undefined;
  const outcome = await Promise.race([
    lineReady.then((r) => ({ kind: "line" as const, ...r })),
    child.exited.then((status) => ({ kind: "exit" as const, status })),
    new Promise<{ kind: "timeout" }>((resolve) => {
      timer = setTimeout(() => resolve({ kind: "timeout" }), startTimeoutMs);
    }),
    new Promise<{ kind: "abort" }>((resolve) => {
      if (!options.signal) return;
      onAbort = () => resolve({ kind: "abort" });
      if (options.signal.aborted) onAbort();
      else options.signal.addEventListener("abort", onAbort, { once: true });
    }),
  ]);
  clearTimeout(timer);
  if (onAbort) options.signal?.removeEventListener("abort", onAbort);

  if (outcome.kind === "timeout") {
    return await fail(
      new PluginError(
        "start-timeout",
        `timeout while waiting for plugin to start: ${JSON.stringify(name)} printed no ` +
          `handshake line within ${startTimeoutMs} ms`,
        { path, stderrTail: [...stderr.tail] },
      ),
    );
  }
  if (outcome.kind === "abort") {
    return await fail(
      new PluginError("closed", `Starting plugin ${JSON.stringify(name)} was aborted`, {
        cause: options.signal?.reason,
        path,
      }),
    );
  }
  if (outcome.kind === "exit" || (outcome.kind === "line" && outcome.eof && !outcome.line)) {
    // Let stderr finish so the tail holds the plugin's last words.
    const status = await child.exited;
    await Promise.race([stderr.done, new Promise((r) => setTimeout(r, 200))]);
    const tail = [...stderr.tail];
    const how = status.signal ? `signal ${status.signal}` : `status ${status.code}`;
    return await fail(
      new PluginError(
        "exited-before-connect",
        `plugin exited before we could connect: ${JSON.stringify(name)} ended with ${how}` +
          (tail.length ? `; its last stderr lines:\n  ${tail.join("\n  ")}` : ""),
        { path, stderrTail: tail },
      ),
    );
  }

  let info: HandshakeInfo;
  try {
    info = parseHandshakeLine(outcome.line, {
      hostVersions: [...sets.keys()],
      eof: outcome.eof,
      decodeCert: decodeHandshakeCert,
    });
  } catch (err) {
    if (!(err instanceof PluginError)) return await fail(err, "unrecognized-handshake");
    // Only an unrecognised line needs the notes about the executable (a stat and a read of
    // the file), so they are gathered here rather than before every parse.
    const message = err.code === "unrecognized-handshake"
      ? `${err.message}\n${(await handshakeDiagnostics(path)).trimEnd()}`
      : err.message;
    return await fail(
      new PluginError(err.code, message, { path, stderrTail: [...stderr.tail], cause: err.cause }),
    );
  }

  let tls: TlsConfig | undefined = options.tls;
  if (hostCert) {
    if (info.serverCert) {
      const { checkCertificate } = await import("./x509.ts");
      try {
        checkCertificate(info.serverCert);
      } catch (cause) {
        return await fail(
          new PluginError(
            "bad-certificate",
            `plugin ${JSON.stringify(name)} sent a handshake certificate that cannot be used: ` +
              (cause as Error).message,
            { cause },
          ),
        );
      }
      tls = { cert: hostCert.certPem, key: hostCert.keyPem, ca: derToPem(info.serverCert) };
    } else if (options.allowPlaintextFallback && !rpcplugin) {
      tls = undefined;
    } else {
      return await fail(
        new PluginError(
          "tls-required",
          `plugin ${JSON.stringify(name)} did not return a certificate although the host asked ` +
            "for AutoMTLS; refusing to fall back to plaintext (set allowPlaintextFallback to " +
            "accept, or upgrade the plugin)",
          { path },
        ),
      );
    }
  }

  try {
    return await connect(info, sets.get(info.appVersion)!, tls, options, {
      handshakeLine: outcome.line,
      name,
      pid: child.pid,
      child,
      exited: child.exited,
      socketDir,
      untrack,
      reattached: false,
    });
  } catch (err) {
    return await fail(err, "connection-failed");
  }
}

async function reattach<P extends HostPluginSet>(
  options: StartOptions<P>,
  sets: Map<number, P>,
): Promise<PluginClient<P>> {
  const config = options.reattach!;
  const plugins = sets.get(config.protocolVersion);
  if (!plugins) {
    throw new PluginError(
      "incompatible-app-version",
      `incompatible API version with plugin. Plugin version: ${config.protocolVersion}, ` +
        `Client versions: [${[...sets.keys()].join(" ")}]`,
      { pid: config.pid },
    );
  }
  const name = options.name ?? `pid ${config.pid}`;
  // Like go-plugin: the pid must be alive and one dial of the address must succeed.
  if (!pidAlive(config.pid) || !(await probeAddress(config.network, config.address))) {
    throw new PluginError("process-not-found", "reattachment process not found", {
      pid: config.pid,
    });
  }
  // go-plugin polls the pid every second to notice the plugin's exit.
  let poll: ReturnType<typeof setInterval> | undefined;
  const exited = new Promise<ExitStatus>((resolve) => {
    poll = setInterval(() => {
      if (!pidAlive(config.pid)) {
        clearInterval(poll);
        resolve({ code: null, signal: null });
      }
    }, 1000);
  });
  const info: HandshakeInfo = {
    coreVersion: 1,
    appVersion: config.protocolVersion,
    network: config.network,
    address: config.address,
    protocol: "grpc",
  };
  let client: PluginClient<P>;
  try {
    client = await connect(info, plugins, config.tls ?? options.tls, options, {
      name,
      pid: config.pid,
      exited,
      socketDir: config.socketDir,
      untrack: () => clearInterval(poll),
      reattached: true,
      test: config.test,
    });
  } catch (cause) {
    clearInterval(poll);
    throw new PluginError("process-not-found", "reattachment process not found", {
      cause,
      pid: config.pid,
    });
  }
  return client;
}
