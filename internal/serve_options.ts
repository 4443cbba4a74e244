/**
 * The plugin side's options: what `serve()` takes, the plugin sets, and their validation
 * (docs/protocol.md §3). Plain types and checks; nothing here listens or serves.
 *
 * @module
 */

import type { GrpcOptions, ServiceDescriptor } from "./shapes.ts";
import type { GrpcBroker } from "./broker.ts";
import { PluginError } from "./errors.ts";
import type { ServiceImpl } from "./grpc.ts";
import type { ServiceImplOptions, ServiceRegistrar } from "./grpc_server.ts";
import type { HandshakeConfig, Network } from "./handshake.ts";
import type { Interceptor } from "./interceptors.ts";
import type { Logger } from "./logger.ts";
import type { AutoMtlsCurve } from "./mtls.ts";
import type { TlsConfig } from "./tls.ts";

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
 * Options of `serve()`.
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
 * A plugin server that is running: what `serve()` returns once the handshake line is printed
 * (as `Deno.serve` returns its server). The process keeps serving until the host shuts the
 * plugin down; `finished` settles then.
 *
 * @example Doing more than serving
 * ```ts
 * import { logger, type ServingPlugin } from "@plugwire/plugwire/plugin";
 *
 * // Called as watch(await serve(options)).
 * async function watch(serving: ServingPlugin): Promise<void> {
 *   logger.info("serving", { address: serving.address, services: serving.services.join(",") });
 *   const heartbeat = setInterval(() => logger.debug("alive"), 60_000);
 *   await serving.finished;
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
  /**
   * Settles when the plugin has stopped serving (after the host's Shutdown, and `onShutdown`).
   * Reading it means code runs after that: the process then ends when that code is done, not
   * right after the host's Shutdown.
   */
  readonly finished: Promise<void>;
  /** Stops serving, as the host's Shutdown call does; resolves with `finished`. Idempotent. */
  shutdown(): Promise<void>;
  /** {@link ServingPlugin.shutdown}, for `await using`. */
  [Symbol.asyncDispose](): Promise<void>;
}

/** The plugin sets by protocol version: `versionedPlugins`, and `plugins` under
 * `handshake.protocolVersion`. */
export function pluginSets(options: ServeOptions): Map<number, PluginSet> {
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
export function validateServeOptions(options: ServeOptions): void {
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
