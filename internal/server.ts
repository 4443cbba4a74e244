/**
 * The plugin side: check the magic cookie, negotiate a version, listen, print the handshake
 * line, serve until the host shuts the plugin down (docs/protocol.md §2.2, §2.3, §3, §4, §6).
 *
 * @module
 */

import type { GrpcOptions, ServiceDescriptor } from "./shapes.ts";
import * as grpc from "@grpc/grpc-js";
import { GRPCBroker } from "../gen/core/plugin/grpc_broker_pb.ts";
import { GRPCController } from "../gen/core/plugin/grpc_controller_pb.ts";
import { GRPCStdio } from "../gen/core/plugin/grpc_stdio_pb.ts";
import { Health, HealthCheckResponse_ServingStatus } from "../gen/core/grpc/health/v1/health_pb.ts";
import { GrpcBroker } from "./broker.ts";
import { PluginError } from "./errors.ts";
import { messageSizeOptions, serviceDefinition, type ServiceImpl } from "./grpc.ts";
import {
  registrarFor,
  responseDelivered,
  type ServiceImplOptions,
  type ServiceRegistrar,
} from "./grpc_server.ts";
import type { Interceptor } from "./interceptors.ts";
import type { AutoMtlsCurve } from "./mtls.ts";
import { debugBanner } from "./reattach_format.ts";
import { formatHandshakeLine, type HandshakeConfig, type Network } from "./handshake.ts";
import { HealthService } from "./health.ts";
import { ReflectionRegistry } from "./reflection.ts";
import { chooseTransport, padBase64, TRANSPORTS_ENV } from "./rpcplugin.ts";
import { type Logger, pluginLogger } from "./logger.ts";
import { negotiateVersion, parseProtocolVersions } from "./negotiate.ts";
import { encodeHandshakeCert } from "./pem.ts";
import {
  baseName,
  exitProcess,
  getEnv,
  onExit,
  onSignal,
  ownPid,
  removeEmptyDirSync,
  removePathSync,
  unrefDelay,
  watchParent,
  writeRealStderr,
  writeRealStdout,
} from "./runtime.ts";
import { OutputCapture } from "./stdio.ts";
import { rejectOutOfDateClientCert, serverCredentials, type TlsConfig } from "./tls.ts";
import { bindServer } from "./transport.ts";

// The handshake settings live with the handshake; re-exported here, where they used to be.
export type { HandshakeConfig } from "./handshake.ts";

/**
 * A plugin as its server sees it: the gRPC services it adds to the plugin's server.
 * {@link grpcPlugin} makes one of a single service.
 *
 * @example One plugin serving two services
 * ```ts
 * import type { GrpcPlugin } from "@plugwire/plugwire/plugin";
 * import { KV } from "../gen/kv/kv_pb.ts";
 * import { Greeter } from "../gen/greeter/greeter_pb.ts";
 *
 * const store = new Map<string, Uint8Array>();
 * const plugin: GrpcPlugin = {
 *   register(registrar) {
 *     registrar.add(KV, {
 *       get: ({ key }) => ({ value: store.get(key) ?? new Uint8Array() }),
 *       put: ({ key, value }) => {
 *         store.set(key, value);
 *         return {};
 *       },
 *     });
 *     registrar.add(Greeter, {
 *       greet: ({ name }) => ({ message: `hello, ${name}` }),
 *       count: ({ text }) => ({ letters: text.length, words: text.split(" ").length }),
 *     });
 *   },
 * };
 * // serve({ handshake, plugins: { store: plugin } })
 * ```
 */
export interface GrpcPlugin {
  /** Adds this plugin's services. */
  register(registrar: ServiceRegistrar<GrpcBroker>): void;
}

/**
 * Plugins by name. Names stay local to each side: only service names cross the wire.
 *
 * @example Serving two protocol versions
 * ```ts
 * import { grpcPlugin, type PluginSet, type ServeOptions } from "@plugwire/plugwire/plugin";
 * import { Greeter } from "../gen/greeter/greeter_pb.ts";
 *
 * const v1: PluginSet = {
 *   greeter: grpcPlugin(Greeter, {
 *     greet: ({ name }) => ({ message: `hello, ${name}` }),
 *     count: ({ text }) => ({ letters: text.length, words: text.split(" ").length }),
 *   }),
 * };
 * const v2: PluginSet = {
 *   greeter: grpcPlugin(Greeter, {
 *     greet: ({ name }) => ({ message: `Hello, ${name}!` }),
 *     count: ({ text }) => ({ letters: text.length, words: text.split(/\s+/).length }),
 *   }),
 * };
 * // A host of version 2 gets v2, a host of version 1 gets v1.
 * const options: ServeOptions = {
 *   handshake: { protocolVersion: 1, magicCookieKey: "GREETER", magicCookieValue: "hi" },
 *   versionedPlugins: { 1: v1, 2: v2 },
 * };
 * ```
 */
export type PluginSet = Record<string, GrpcPlugin>;

/**
 * A plugin serving one service with a typed implementation.
 *
 * @typeParam S The service's descriptor.
 * @param service The protobuf-es service descriptor, e.g. `KV` from the generated `kv_pb.ts`.
 * @param impl Functions for the methods of the service, typed from the descriptor. A method left
 *   out answers `UNIMPLEMENTED`, as in grpc-go (Terraform's 22-method Provider service is
 *   usually served in part).
 * @param options `strict: true` makes a method left out an error at start instead.
 * @returns The plugin, for a {@link PluginSet}.
 *
 * @example A KV plugin with an in-memory store
 * ```ts
 * import { grpcPlugin, RpcError, type ServeOptions, Status } from "@plugwire/plugwire/plugin";
 * import { KV } from "../gen/kv/kv_pb.ts";
 *
 * const store = new Map<string, Uint8Array>();
 * const kv = grpcPlugin(KV, {
 *   get: ({ key }) => {
 *     const value = store.get(key);
 *     if (value === undefined) throw new RpcError(Status.NOT_FOUND, `no such key: ${key}`);
 *     return { value };
 *   },
 *   put: ({ key, value }) => {
 *     store.set(key, value);
 *     return {};
 *   },
 * });
 * const options: ServeOptions = {
 *   handshake: { protocolVersion: 1, magicCookieKey: "BASIC_PLUGIN", magicCookieValue: "hello" },
 *   plugins: { kv },
 * };
 * // await serve(options);
 * ```
 */
export function grpcPlugin<S extends ServiceDescriptor>(
  service: S,
  impl: Partial<ServiceImpl<S, GrpcBroker>>,
  options?: ServiceImplOptions,
): GrpcPlugin {
  return { register: (registrar) => registrar.add(service, impl, options) };
}

/**
 * Options of {@link serve}.
 *
 * @example A TCP plugin that closes its store on shutdown
 * ```ts
 * import { grpcPlugin, logger, type ServeOptions } from "@plugwire/plugwire/plugin";
 * import { KV } from "../gen/kv/kv_pb.ts";
 *
 * const store = new Map<string, Uint8Array>();
 * const options: ServeOptions = {
 *   handshake: { protocolVersion: 1, magicCookieKey: "BASIC_PLUGIN", magicCookieValue: "hello" },
 *   plugins: {
 *     kv: grpcPlugin(KV, {
 *       get: ({ key }) => ({ value: store.get(key) ?? new Uint8Array() }),
 *       put: ({ key, value }) => {
 *         store.set(key, value);
 *         return {};
 *       },
 *     }),
 *   },
 *   network: "tcp",
 *   grpcServerOptions: { "grpc.max_receive_message_length": 16 << 20 },
 *   onShutdown: () => {
 *     logger.info("closing", { keys: store.size });
 *     store.clear();
 *   },
 * };
 * // await serve(options); // in a doc test it would exit: no host started this process
 * ```
 */
export interface ServeOptions {
  /** Must match the host's. */
  handshake: HandshakeConfig;
  /** The plugins served under `handshake.protocolVersion`. */
  plugins?: PluginSet;
  /**
   * Plugin sets by protocol version, for hosts of several versions: the highest version the
   * host also speaks wins. `plugins`, if given, is served under `handshake.protocolVersion`.
   */
  versionedPlugins?: Record<number, PluginSet>;
  /**
   * `unix` (default, as go-plugin on every OS but Windows) or `tcp` on 127.0.0.1 within the
   * host's `PLUGIN_MIN_PORT`..`PLUGIN_MAX_PORT`.
   * @default {"unix"}
   */
  network?: Network;
  /**
   * Supplies this plugin's TLS configuration (go-plugin's `TLSProvider`). The handshake then
   * carries no certificate and the host must be configured with matching TLS options. A host
   * that asks for AutoMTLS (`PLUGIN_CLIENT_CERT`) could not use it: serve() refuses to start
   * (`misconfigured`) rather than letting the provider win silently, as go-plugin does.
   */
  tls?: () => TlsConfig | Promise<TlsConfig>;
  /**
   * The curve of this plugin's AutoMTLS certificate: go-plugin's P-521, or P-384 for hosts on
   * grpcio/BoringSSL, which cannot do P-521.
   * @default {"P-521"}
   */
  autoMtlsCurve?: AutoMtlsCurve;
  /** grpc-js server options, e.g. message size limits. */
  grpcServerOptions?: GrpcOptions;
  /**
   * The largest message the plugin accepts from or sends to the host, brokered connections
   * included; a larger one fails its call with RESOURCE_EXHAUSTED. Give the host the same.
   * @default {268435456} (256 MiB)
   */
  maxMessageBytes?: number;
  /** The logger for the library's own messages (default: hclog JSON on stderr, level info). */
  logger?: Logger;
  /**
   * Wrap every call to the plugins' own services (not the protocol's), the first outermost:
   * `(next) => async (request) => …`.
   */
  interceptors?: Interceptor[];
  /**
   * Debug mode (go-plugin's `ServeConfig.Test`, a Terraform provider's `-debug`): started by
   * hand, no cookie check and no handshake line; prints the `TF_REATTACH_PROVIDERS` line under
   * `name` for a host to attach to, and serves until SIGINT or SIGTERM, whatever hosts do.
   */
  debug?: { name: string };
  /**
   * Called after the host asked the plugin to shut down, before `serve()` resolves; the
   * place to flush and close what the plugin holds.
   */
  onShutdown?: () => void | Promise<void>;
}

/**
 * A plugin server that is running.
 *
 * @example Doing more than serving
 * ```ts
 * import { logger, type ServingPlugin } from "@plugwire/plugwire/plugin";
 *
 * // Called as watch(await startServe(options)).
 * async function watch(serving: ServingPlugin): Promise<void> {
 *   logger.info("serving", { address: serving.address, services: serving.services.join(",") });
 *   const heartbeat = setInterval(() => logger.debug("alive"), 60_000);
 *   await serving.stopped;
 *   clearInterval(heartbeat);
 * }
 * ```
 */
export interface ServingPlugin {
  /** The negotiated protocol version. */
  readonly protocolVersion: number;
  /** `unix` or `tcp`. */
  readonly network: Network;
  /** Socket path or `127.0.0.1:port`. */
  readonly address: string;
  /** The plugin side of the broker. */
  readonly broker: GrpcBroker;
  /** The gRPC service names served (for diagnostics and reflection). */
  readonly services: readonly string[];
  /** Settles when the plugin has stopped serving. */
  readonly stopped: Promise<void>;
  /** Stops serving (what the host's Shutdown call does). */
  stop(): Promise<void>;
}

const COOKIE_MESSAGE = "This binary is a plugin. These are not meant to be executed directly.\n" +
  "Please execute the program that consumes these plugins, which will\n" +
  "load any plugins automatically\n";

const MISCONFIGURED_MESSAGE =
  "Misconfigured ServeConfig given to serve this plugin: no magic cookie\n" +
  "key or value was set. Please notify the plugin author and report\n" +
  "this as a bug.\n";

/**
 * The process-wide output capture. serve() starts it once the magic cookie matches: a matching
 * cookie proves a host started the process (some hosts set nothing else), and a process that
 * only imports plugwire keeps its own stdout and stderr.
 */
export const outputCapture: OutputCapture = new OutputCapture();

/** How long a Shutdown waits for a reading host to take the plugin's captured output. */
const STDIO_DRAIN_MS = 500;
/** How long stopping waits for the host's open calls to end before the server cuts them. */
const GRACEFUL_STOP_MS = 1000;
/** How long a SIGTERM that arrives during a Shutdown waits for it to finish. */
const SIGTERM_WAIT_MS = 5000;
/** How long a plugin whose host died gives its own shutdown before it exits anyway. */
const ORPHAN_STOP_MS = 1500;
/** Socket directories that hosts make per plugin (plugwire's, go-plugin's `plugin-dir*`). */
const HOST_SOCKET_DIR = /^(plugwire-|plugin-dir)/;

/** The items of `source` until `signal` aborts. */
async function* until<T>(source: AsyncIterable<T>, signal: AbortSignal): AsyncGenerator<T> {
  const iterator = source[Symbol.asyncIterator]();
  const aborted = new Promise<"aborted">((resolve) => {
    if (signal.aborted) resolve("aborted");
    signal.addEventListener("abort", () => resolve("aborted"), { once: true });
  });
  try {
    for (;;) {
      const next = await Promise.race([iterator.next(), aborted]);
      if (next === "aborted" || next.done) return;
      yield next.value;
    }
  } finally {
    void iterator.return?.();
  }
}

/** Resolves true when `work` settles within `ms`, false otherwise. */
async function settlesWithin(work: Promise<unknown>, ms: number): Promise<boolean> {
  return await Promise.race([
    work.then(() => true, () => true),
    unrefDelay(ms).then(() => false),
  ]);
}

/** What {@link hungUpSessionsClosed} reads of a grpc-js 1.14 `Server` (private fields). */
interface ServerSessions {
  sessions?: Map<SessionState, unknown>;
  http2Servers?: Map<unknown, { sessions?: Set<SessionState> }>;
}
interface SessionState {
  closed?: boolean;
  destroyed?: boolean;
  once(event: "close", listener: () => void): unknown;
}

/**
 * Waits until the server's HTTP/2 sessions that the peer already tore down have emitted
 * "close". grpc-js's tryShutdown calls `session.close(callback)` on every session not yet
 * `closed`, and Node's `Http2Session.close` drops the callback of a session that is already
 * `destroyed`; so a host that hangs up just before the stop (go-plugin closes its connection
 * right after the Shutdown reply) left tryShutdown without its callback, and every such stop
 * waited out its whole bound (1 s). The "close" of a destroyed session comes on the next tick.
 * Reads grpc-js's private bookkeeping: when it is not there, this waits for nothing.
 */
async function hungUpSessionsClosed(server: grpc.Server): Promise<void> {
  const internals = server as unknown as ServerSessions;
  const all = new Set(internals.sessions?.keys());
  for (const { sessions } of internals.http2Servers?.values() ?? []) {
    for (const session of sessions ?? []) all.add(session);
  }
  const torn = [...all].filter((session) => session.destroyed && !session.closed);
  await Promise.all(
    torn.map((session) => new Promise<void>((resolve) => session.once("close", resolve))),
  );
}

/**
 * Stops a grpc-js server gracefully (GOAWAY, then the open calls may finish) and cuts what is
 * still open after `ms`.
 */
async function stopServer(server: grpc.Server, ms: number): Promise<void> {
  const graceful = hungUpSessionsClosed(server).then(() =>
    new Promise<void>((resolve) => server.tryShutdown(() => resolve()))
  );
  if (!(await settlesWithin(graceful, ms))) server.forceShutdown();
}

function pluginSets(options: ServeOptions): Map<number, PluginSet> {
  const sets = new Map<number, PluginSet>();
  for (const [version, set] of Object.entries(options.versionedPlugins ?? {})) {
    sets.set(Number(version), set);
  }
  if (options.plugins) {
    const version = options.handshake.protocolVersion;
    if (version === undefined) {
      throw new TypeError("Cannot serve `plugins` without `handshake.protocolVersion`");
    }
    sets.set(version, options.plugins);
  }
  if (sets.size === 0) {
    throw new PluginError("misconfigured", "Cannot serve: give `plugins` or `versionedPlugins`");
  }
  return sets;
}

const isVersion = (v: unknown) => Number.isInteger(v) && (v as number) >= 0;

/** Throws a {@link PluginError} (`misconfigured`) for options serve() cannot work with. */
function validateServeOptions(options: ServeOptions): void {
  const bad = (what: string) => {
    throw new PluginError("misconfigured", `Cannot serve: ${what}`);
  };
  if (!isVersion(options.handshake.protocolVersion)) {
    bad(
      `handshake.protocolVersion must be a whole number, not ${options.handshake.protocolVersion}`,
    );
  }
  if (options.network !== undefined && options.network !== "unix" && options.network !== "tcp") {
    bad(`network must be "unix" or "tcp", not ${JSON.stringify(options.network)}`);
  }
  for (const key of ["tls", "onShutdown"] as const) {
    if (options[key] !== undefined && typeof options[key] !== "function") {
      bad(`${key} must be a function`);
    }
  }
  const sets: Array<[string, unknown]> = options.plugins ? [["plugins", options.plugins]] : [];
  for (const [version, set] of Object.entries(options.versionedPlugins ?? {})) {
    if (!/^\d+$/.test(version)) bad(`versionedPlugins has a key that is not a version: ${version}`);
    sets.push([`versionedPlugins[${version}]`, set]);
  }
  for (const [where, set] of sets) {
    if (typeof set !== "object" || set === null) bad(`${where} must be an object of plugins`);
    for (const [name, plugin] of Object.entries(set as object)) {
      if (typeof (plugin as GrpcPlugin | undefined)?.register !== "function") {
        bad(`${where}.${name} is not a plugin (give grpcPlugin(service, impl))`);
      }
    }
  }
}

/** One line for stderr: what went wrong, in words a host can show as they are. */
function describeFailure(err: unknown): string {
  if (err instanceof PluginError) return `${err.message} (${err.code})`;
  if (err instanceof Error) return `${err.name}: ${err.message}`;
  return String(err);
}

function envPort(name: string): number {
  const value = getEnv(name);
  if (value === undefined || value === "") return 0;
  const port = Number(value);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new PluginError("misconfigured", `${name} is not a port number: ${value}`);
  }
  return port;
}

/**
 * Starts serving. Exits the process (status 1) when the cookie is missing or wrong, as
 * go-plugin does, before anything is created. Resolves once the handshake line is printed.
 *
 * Any failure before the handshake (bad options, a plugin missing a method, a socket that
 * cannot be bound) is written to the real stderr as one plain line, so that every host shows
 * it (a host whose plugin printed no handshake only has its stderr to go on), everything made
 * so far is released, and the error is thrown on.
 */
export async function startServing(options: ServeOptions): Promise<ServingPlugin> {
  const { magicCookieKey, magicCookieValue } = options.handshake;
  if (!magicCookieKey || !magicCookieValue) {
    writeRealStderr(MISCONFIGURED_MESSAGE);
    exitProcess(1);
  }
  // Debug mode is started by hand, on purpose: no cookie (go-plugin's test mode skips it too).
  if (!options.debug && getEnv(magicCookieKey) !== magicCookieValue) {
    writeRealStderr(COOKIE_MESSAGE);
    exitProcess(1);
  }
  // From here on stdout is the protocol channel: what the plugin prints goes to the host over
  // GRPCStdio, never before the handshake line.
  outputCapture.start();
  const undo: Array<() => void | Promise<void>> = [];
  try {
    return await serveAfterCookie(options, undo);
  } catch (err) {
    for (const step of undo.reverse()) {
      try {
        await step();
      } catch {
        // Releasing what a failed start made must not hide why it failed.
      }
    }
    outputCapture.stop();
    writeRealStderr(`plugwire: cannot serve this plugin: ${describeFailure(err)}\n`);
    throw err;
  }
}

async function serveAfterCookie(
  options: ServeOptions,
  undo: Array<() => void | Promise<void>>,
): Promise<ServingPlugin> {
  const log = options.logger ?? pluginLogger("plugwire");

  validateServeOptions(options);
  const sets = pluginSets(options);
  const offered = parseProtocolVersions(getEnv("PLUGIN_PROTOCOL_VERSIONS"));
  for (const bad of offered.invalid) {
    // go-plugin writes this without a newline; a line of its own reads better and parses the same.
    writeRealStderr(`server sent invalid plugin version ${JSON.stringify(bad)}\n`);
  }
  const version = negotiateVersion([...sets.keys()], offered.versions);
  const plugins = sets.get(version)!;
  const transports = getEnv(TRANSPORTS_ENV);
  if (transports !== undefined && !offered.versions.includes(version)) {
    // RPCPlugin: no version in common means exit, not "serve the lowest".
    writeRealStderr(
      `plugin supports protocol versions [${[...sets.keys()].join(" ")}], host offers ` +
        `[${offered.versions.join(" ")}]: nothing in common\n`,
    );
    exitProcess(1);
  }

  // TLS: a provider, or AutoMTLS when the host sent its certificate; never both.
  let tls: TlsConfig | undefined;
  let handshakeCert = "";
  const hostCert = getEnv("PLUGIN_CLIENT_CERT");
  if (options.tls && hostCert) {
    // go-plugin lets the provider win silently; the host then expects a certificate in the
    // handshake, gets none, and cannot verify the provider's: refuse with the reason instead.
    throw new PluginError(
      "misconfigured",
      "the host asked for AutoMTLS (PLUGIN_CLIENT_CERT is set) but serve() was given its own " +
        "`tls` provider: configure the host with the matching TLS options instead of AutoMTLS, " +
        "or drop the provider",
    );
  }
  if (hostCert) {
    // go-plugin logs this and serves anyway, a socket no host can use; refuse the start.
    const { parseClientCertPem } = await import("./client_cert.ts");
    try {
      parseClientCertPem(hostCert);
    } catch (err) {
      log.error("client cert provided but failed to parse", {
        error: err instanceof Error ? err.message : String(err),
      });
      throw err;
    }
  }
  if (options.tls) {
    tls = await options.tls();
  } else if (hostCert) {
    // Loaded only with AutoMTLS: the ASN.1 packages cost a plaintext plugin ~15 ms of start-up.
    const { generateCertificate } = await import("./mtls.ts");
    const own = await generateCertificate({ curve: options.autoMtlsCurve });
    tls = { cert: own.certPem, key: own.keyPem, ca: hostCert };
    handshakeCert = encodeHandshakeCert(own.der);
    if (transports !== undefined) handshakeCert = padBase64(handshakeCert);
  }

  if (transports !== undefined && !tls) {
    writeRealStderr(
      "RPCPlugin requires TLS: the host set PLUGIN_TRANSPORTS but no PLUGIN_CLIENT_CERT, " +
        "and this plugin has no TLS provider\n",
    );
    exitProcess(1);
  }
  const network = transports === undefined
    ? options.network ?? "unix"
    : chooseTransport(transports, options.network);
  if (network === undefined) {
    writeRealStderr(`no supported transport in PLUGIN_TRANSPORTS=${transports}\n`);
    exitProcess(1);
  }
  const socketDir = getEnv("PLUGIN_UNIX_SOCKET_DIR") || undefined;
  const messageSize = messageSizeOptions(options.maxMessageBytes);
  const broker = new GrpcBroker({
    network,
    socketDir,
    tls,
    grpcServerOptions: { ...messageSize, ...options.grpcServerOptions },
    grpcChannelOptions: messageSize,
  });
  const server = new grpc.Server({
    ...messageSize,
    ...options.grpcServerOptions,
    ...(tls ? { interceptors: [rejectOutOfDateClientCert] } : {}),
  });
  undo.push(() => server.forceShutdown(), () => broker.close());
  const reflection = new ReflectionRegistry();
  const registrar = registrarFor(
    server,
    broker,
    (name, descriptor) => reflection.add(name, descriptor),
  );
  const health = new HealthService();

  let resolveStopped!: () => void;
  const stopped = new Promise<void>((resolve) => (resolveStopped = resolve));
  let stopping: Promise<void> | undefined;
  const cleanups: Array<() => void> = [];
  undo.push(() => {
    for (const cleanup of cleanups.splice(0)) cleanup();
  });

  // go-plugin's order: health, reflection, the plugins' services, broker, controller, stdio.
  registrar.add(Health, health.impl());
  reflection.register(registrar);
  const pluginRegistrar = options.interceptors?.length
    ? registrarFor(server, broker, (name, d) => reflection.add(name, d), {
      interceptors: options.interceptors,
    })
    : registrar;
  for (const [name, plugin] of Object.entries(plugins)) {
    try {
      plugin.register(pluginRegistrar);
    } catch (err) {
      if (err instanceof PluginError) throw err;
      const reason = err instanceof Error ? err.message : String(err);
      throw new PluginError("misconfigured", `plugin ${JSON.stringify(name)}: ${reason}`, {
        cause: err,
      });
    }
  }
  // The host keeps its broker stream open for the plugin's life; stopping ends it from here,
  // so that the server's graceful stop is not left waiting on it.
  const endStreams = new AbortController();
  registrar.add(GRPCBroker, {
    startStream: (requests) => until(broker.runStream(() => requests), endStreams.signal),
  });
  // Answer first, then stop once the host has read the answer: a clean reply lets a host tell
  // "shut down" from "crashed", and grpclib (python-plugin's host) fails a call that is still
  // in flight when the server's GOAWAY arrives. Raw grpc-js, because only the call object
  // leads to the reply's HTTP/2 stream. Bounded, should the host never answer the PING.
  registrar.addGrpcJs(serviceDefinition(GRPCController), {
    shutdown: (call: object, reply: (err: null, response: object) => void) => {
      reply(null, {});
      void settlesWithin(responseDelivered(call), GRACEFUL_STOP_MS).then(() => stop());
    },
  });
  registrar.add(GRPCStdio, outputCapture.impl());

  const bound = await bindServer(server, serverCredentials(tls), {
    network,
    socketDir,
    socketGroup: getEnv("PLUGIN_UNIX_SOCKET_GROUP") || undefined,
    minPort: envPort("PLUGIN_MIN_PORT"),
    maxPort: envPort("PLUGIN_MAX_PORT"),
  });
  undo.push(() => bound.cleanup());
  // If the process ends any other way (SIGTERM handler below, an uncaught error), the socket
  // file must not outlive it.
  if (bound.network === "unix") cleanups.push(onExit(() => removePathSync(bound.address)));

  async function stop(): Promise<void> {
    stopping ??= (async () => {
      health.setAll(HealthCheckResponse_ServingStatus.NOT_SERVING);
      // A host that reads the plugin's output gets all of it before the stream ends.
      await outputCapture.drained(STDIO_DRAIN_MS);
      outputCapture.endStreams();
      endStreams.abort();
      await broker.close();
      // The socket file goes while the open calls end: stopping closes the listener first, so
      // nothing new could connect through it anyway.
      await Promise.all([stopServer(server, GRACEFUL_STOP_MS), bound.cleanup()]);
      for (const cleanup of cleanups.splice(0)) cleanup();
      try {
        await options.onShutdown?.();
      } finally {
        outputCapture.stop();
        resolveStopped();
      }
    })();
    return await stopping;
  }

  // go-plugin plugins ignore SIGINT: a Ctrl-C in the host's terminal reaches the whole process
  // group, and the host decides when its plugins stop. In debug mode the user's Ctrl-C stops it.
  cleanups.push(onSignal("SIGINT", () => {
    if (options.debug) void stop();
    else log.trace("plugin received interrupt signal, ignoring");
  }));
  // SIGTERM ends the process as the default action would (status 143), but without leaving
  // the socket. During or after a Shutdown it is the host making sure: the Shutdown finishes
  // (bounded), onShutdown runs and the plugin exits 0. pyvider-rpcplugin's host sends SIGTERM
  // 50 ms after Shutdown. This handler stays for the process's life once serving has begun.
  undo.push(onSignal("SIGTERM", () => {
    if (stopping) {
      void settlesWithin(stopping, SIGTERM_WAIT_MS).then((done) => {
        if (done) exitProcess(0);
        void bound.cleanup().finally(() => exitProcess(143));
      });
      return;
    }
    void bound.cleanup().finally(() => exitProcess(143));
  }));
  // A host that dies (SIGKILL, a crash, a Ctrl-C it does not handle) never sends Shutdown; its
  // plugin is reparented. go-plugin's plugins then live on (go-plugin #10, #291); this one
  // stops (bounded), removes its socket and the host's socket directory if empty, and exits.
  cleanups.push(watchParent(() => {
    void settlesWithin(stop(), ORPHAN_STOP_MS).then(() => {
      if (bound.network === "unix") {
        removePathSync(bound.address);
        if (socketDir && HOST_SOCKET_DIR.test(baseName(socketDir))) removeEmptyDirSync(socketDir);
      }
      exitProcess(0);
    });
  }));

  const multiplexEnv = getEnv("PLUGIN_MULTIPLEX_GRPC");
  // Debug mode prints no handshake line but the reattach configuration (docs/protocol.md §9.3).
  const debugLine = options.debug && debugBanner(options.debug.name, {
    protocol: "grpc",
    protocolVersion: version,
    network: bound.network,
    address: bound.address,
    pid: ownPid(),
    test: true,
  });
  writeRealStdout(
    debugLine || formatHandshakeLine({
      appVersion: version,
      network: bound.network,
      address: bound.address,
      serverCert: handshakeCert,
      // The broker is not multiplexed; say so only when asked (see formatHandshakeLine).
      multiplex: multiplexEnv ? false : undefined,
    }),
  );
  outputCapture.handshakePrinted();

  return {
    protocolVersion: version,
    network: bound.network,
    address: bound.address,
    broker,
    services: reflection.names,
    stopped,
    stop,
  };
}
