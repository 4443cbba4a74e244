/**
 * Write a plugin: {@link serve} a set of gRPC services so that any go-plugin host (Go,
 * plugwire, python-plugin) can start it and call it.
 *
 * Once {@link serve} has checked the magic cookie, it captures what the plugin writes to stdout
 * and stderr (`console.*` with every method, `Deno.stdout`, `process.stdout`, …): stdout
 * carries the handshake line, so nothing else may reach it first. The captured output is
 * streamed to the host over go-plugin's GRPCStdio service, in order; what the host has not read
 * when the plugin stops or exits is written to the real stderr. Importing this module changes
 * nothing; as with go-plugin, print nothing to stdout before `serve()`. Log with
 * {@link logger}: its hclog JSON lines go straight to stderr, where the host turns them into
 * structured records.
 *
 * @example A KV plugin
 * ```ts ignore
 * import { grpcPlugin, logger, serve } from "@plugwire/plugwire/plugin";
 * import { KV } from "./gen/kv/kv_pb.ts";
 *
 * const store = new Map<string, Uint8Array>();
 * await serve({
 *   handshake: { protocolVersion: 1, magicCookieKey: "BASIC_PLUGIN", magicCookieValue: "hello" },
 *   plugins: {
 *     kv: grpcPlugin(KV, {
 *       get: ({ key }) => ({ value: store.get(key) ?? new Uint8Array() }),
 *       put: ({ key, value }) => {
 *         store.set(key, value);
 *         logger.info("stored", { key });
 *         return {};
 *       },
 *     }),
 *   },
 * });
 * ```
 *
 * @module
 */

import { type Logger, pluginLogger } from "./internal/logger.ts";
import type { ServeOptions, ServingPlugin } from "./internal/serve_options.ts";
import { startServing } from "./internal/server.ts";

export type {
  BrokerConnection,
  BrokerDialOptions,
  BrokerServeOptions,
  BrokerServer,
  GrpcBroker,
} from "./internal/broker.ts";
export type { CallContext, MethodImpl, ServiceImpl } from "./internal/grpc.ts";
export type { ServiceImplOptions, ServiceRegistrar } from "./internal/grpc_server.ts";
export type {
  CallHandler,
  CallKind,
  CallRequest,
  CallResponse,
  Interceptor,
} from "./internal/interceptors.ts";
export type { Network } from "./internal/handshake.ts";
export type { LogLevel } from "./internal/hclog.ts";
export type { Logger, PluginLoggerOptions } from "./internal/logger.ts";
export { pluginLogger } from "./internal/logger.ts";
export type { HandshakeConfig } from "./internal/handshake.ts";
export type {
  GrpcPlugin,
  PluginSet,
  ServeOptions,
  ServingPlugin,
} from "./internal/serve_options.ts";
export { grpcPlugin } from "./internal/serve_options.ts";
export type { TlsConfig } from "./internal/tls.ts";
export type { AutoMtlsCurve } from "./internal/mtls.ts";
export { PluginError, RpcError, Status } from "./internal/errors.ts";

/**
 * The plugin's logger: hclog JSON lines on stderr, which a go-plugin host shows as structured
 * logs from this plugin. Level: `PLUGWIRE_LOG_LEVEL`, else `trace` (the host filters).
 *
 * @example
 * ```ts
 * import { logger, pluginLogger } from "@plugwire/plugwire/plugin";
 * import assert from "node:assert/strict";
 *
 * logger.named("store").debug("opened", { path: "/tmp/kv.db" }); // an hclog line on stderr
 *
 * // The same lines, written somewhere a test can read them:
 * const lines: string[] = [];
 * pluginLogger("store", { write: (line) => void lines.push(line) }).info("opened");
 * assert.equal(JSON.parse(lines[0])["@module"], "store");
 * assert.equal(JSON.parse(lines[0])["@message"], "opened");
 * ```
 */
export const logger: Logger = pluginLogger();

/**
 * Serves plugins; resolves once the handshake line is printed, with the running server (the
 * way `Deno.serve` returns its server). The process goes on serving until the host shuts the
 * plugin down, so `await serve(options)` stays the one line a plugin that only serves needs;
 * code to run after the shutdown goes in `onShutdown`, or awaits `finished`
 * (`await (await serve(options)).finished`).
 *
 * Before anything else it checks the magic cookie: a process not started by a host with the
 * right cookie prints go-plugin's "This binary is a plugin" message and exits with status 1.
 * Then it negotiates the protocol version with the host, listens on a fresh unix socket (or
 * TCP on 127.0.0.1), with mutual TLS when the host asks for AutoMTLS, serves the health,
 * controller, broker and stdio services beside the plugins' own, and prints the handshake line.
 * SIGINT is ignored, as go-plugin plugins do: the host decides when its plugins stop.
 *
 * On the host's Shutdown call the reply is delivered first, then the server stops (bounded),
 * `onShutdown` runs and `finished` settles, and the process exits 0, as a Go plugin's ends when
 * `plugin.Serve` returns (timers or sockets left open do not keep it alive). Code that reads
 * `finished` keeps the process's ordinary end instead: it goes on until that code and
 * everything it holds are done. A SIGTERM that arrives meanwhile
 * waits for that (up to 5 s) and the process exits 0; a SIGTERM before any Shutdown removes
 * the socket and exits 143. When the host process dies without a Shutdown (SIGKILL, a crash),
 * the plugin notices within a second (its parent process changes), stops, removes its socket
 * and the socket directory its host made, and exits. `shutdown()` (or leaving an `await using`
 * block) stops serving as the host's Shutdown would.
 *
 * @param options The handshake, the plugins and how to serve them.
 * @returns The running server: its version, address, broker, services, `finished` and
 *   `shutdown()`. Rejects (after writing the reason to stderr for the host) when serving cannot
 *   start.
 *
 * @example A greeter plugin: the one line
 * ```ts
 * import { grpcPlugin, serve, type ServeOptions } from "@plugwire/plugwire/plugin";
 * import { Greeter } from "./gen/greeter/greeter_pb.ts";
 *
 * const options: ServeOptions = {
 *   handshake: { protocolVersion: 1, magicCookieKey: "GREETER", magicCookieValue: "hi" },
 *   plugins: {
 *     greeter: grpcPlugin(Greeter, {
 *       greet: ({ name }) => ({ message: `hello, ${name}!` }),
 *       count: ({ text }) => ({ letters: text.length, words: text.split(/\s+/).length }),
 *     }),
 *   },
 * };
 * // The plugin's last line. Not run here: a doc test is not started by a host, so serve()
 * // would print "This binary is a plugin" and exit.
 * // await serve(options);
 * ```
 *
 * @example Serving, and watching a directory meanwhile
 * ```ts
 * import { grpcPlugin, logger, serve, type ServeOptions } from "@plugwire/plugwire/plugin";
 * import { KV } from "./gen/kv/kv_pb.ts";
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
 * };
 * async function main(): Promise<void> {
 *   await using serving = await serve(options);
 *   logger.info("serving", { address: serving.address });
 *   const watcher = Deno.watchFs("./data");
 *   serving.finished.then(() => watcher.close());
 *   for await (const event of watcher) logger.debug("changed", { paths: event.paths });
 * }
 * // Not run here: a doc test is not started by a host, so serve() would exit.
 * // await main();
 * ```
 */
export function serve(options: ServeOptions): Promise<ServingPlugin> {
  return startServing(options);
}

// The structural types every signature is written in (see internal/shapes.ts).
export type * from "./internal/shapes.ts";
export type { MaybePromise } from "./internal/grpc.ts";
export type { GrpcJsHandlers, GrpcJsServiceDefinition } from "./internal/grpc_server.ts";
export type { PluginErrorCode, PluginErrorOptions, StatusCode } from "./internal/errors.ts";
