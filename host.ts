/**
 * Write a host: {@link startPlugin} launches a plugin (plugwire, Go or Python), completes
 * go-plugin's handshake, connects over gRPC, and hands back a {@link PluginClient} that
 * dispenses typed clients and kills the plugin when done.
 *
 * @example A KV host
 * ```ts ignore
 * import { startPlugin } from "@plugwire/plugwire/host";
 * import { KV } from "./gen/kv/kv_pb.ts";
 *
 * await using plugin = await startPlugin({
 *   cmd: ["./kv-plugin"],
 *   handshake: { protocolVersion: 1, magicCookieKey: "BASIC_PLUGIN", magicCookieValue: "hello" },
 *   plugins: { kv: KV },
 *   autoMtls: true,
 * });
 * const kv = plugin.dispense("kv");
 * await kv.put({ key: "a", value: new TextEncoder().encode("1") });
 * console.log(new TextDecoder().decode((await kv.get({ key: "a" })).value));
 * ```
 *
 * @module
 */

import type { PluginClient, VersionedPluginClient } from "./internal/client.ts";
import type { HostPluginSet, StartOptions, VersionedStartOptions } from "./internal/options.ts";
import { startPlugin as start } from "./internal/start.ts";

export type {
  Dispensed,
  HostPlugin,
  HostPluginSet,
  PluginCommand,
  PluginConnection,
  ReattachConfig,
  StartOptions,
  VersionedStartOptions,
} from "./internal/options.ts";
export type { VersionedPluginClient } from "./internal/client.ts";
export { PluginClient } from "./internal/client.ts";
export type {
  BrokerConnection,
  BrokerDialOptions,
  BrokerServeOptions,
  BrokerServer,
  GrpcBroker,
} from "./internal/broker.ts";
export type { Checksum } from "./internal/checksum.ts";
export type { CallOptions, MethodClient, ServiceClient } from "./internal/grpc.ts";
export type { ServiceRegistrar } from "./internal/grpc_server.ts";
export type {
  CallHandler,
  CallKind,
  CallRequest,
  CallResponse,
  Interceptor,
} from "./internal/interceptors.ts";
export type { Network } from "./internal/handshake.ts";
export type { LogLevel, LogRecord } from "./internal/hclog.ts";
export type { LogSink, PluginLogRecord } from "./internal/logger.ts";
export { consoleLogSink } from "./internal/logger.ts";
export { parseReattachConfig } from "./internal/reattach.ts";
export type { ExitStatus } from "./internal/runtime.ts";
export type { HandshakeConfig } from "./internal/handshake.ts";
export type { StdioSink } from "./internal/stdio.ts";
export type { TlsConfig } from "./internal/tls.ts";
export type { AutoMtlsCurve } from "./internal/mtls.ts";
export type { GoReattachConfig } from "./internal/reattach.ts";
export { formatReattachProviders, parseReattachProviders } from "./internal/reattach.ts";
export { PluginError, RpcError, Status } from "./internal/errors.ts";
export { cleanupPlugins, killPluginsOnSignal } from "./internal/lifetime.ts";
export type { KillOnSignalOptions } from "./internal/lifetime.ts";

/**
 * Starts a plugin and connects to it, or reattaches to a running one.
 *
 * It passes the magic cookie, the protocol versions of the host's plugin sets, the port range
 * and (unless `skipHostEnv`) the host's environment; with `autoMtls` it generates a P-521
 * certificate and speaks mutual TLS. Every failure is a {@link PluginError} with a `code`
 * (`start-timeout`, `incompatible-app-version`, `exited-before-connect`, …) and, where it helps,
 * the plugin's last stderr lines; a failed start leaves no process and no files behind.
 * With `versionedPlugins` only, the client is typed by the negotiated version
 * ({@link VersionedPluginClient}): check `protocolVersion`, then `dispense()`.
 *
 * @param options The command, the handshake, the plugins and how to run them.
 * @returns A connected client; kill it (or use `await using`) when done.
 * @throws {PluginError} When the plugin cannot be started, handshaken or reached.
 *
 * @example Starting the KV example plugin over AutoMTLS
 * ```ts
 * import { startPlugin } from "@plugwire/plugwire/host";
 * import { KV } from "./gen/kv/kv_pb.ts";
 * import assert from "node:assert/strict";
 *
 * const cwd = await Deno.makeTempDir(); // the KV plugin keeps each value in a file there
 * const pluginFile = new URL("./examples/kv/plugin.ts", import.meta.url).pathname;
 * {
 *   await using plugin = await startPlugin({
 *     cmd: [Deno.execPath(), "run", "-A", "--quiet", pluginFile],
 *     handshake: { protocolVersion: 1, magicCookieKey: "BASIC_PLUGIN", magicCookieValue: "hello" },
 *     plugins: { kv: KV },
 *     autoMtls: true,
 *     cwd,
 *   });
 *   const kv = plugin.dispense("kv");
 *   await kv.put({ key: "greeting", value: new TextEncoder().encode("hello") });
 *   const { value } = await kv.get({ key: "greeting" });
 *   assert.match(new TextDecoder().decode(value), /^hello/); // the plugin appends a signature
 * } // `await using` kills the plugin here
 * await Deno.remove(cwd, { recursive: true });
 * ```
 */
export function startPlugin<V extends Record<number, HostPluginSet>>(
  options: VersionedStartOptions<V>,
): Promise<VersionedPluginClient<V>>;
/**
 * Starts a plugin with `plugins` (and perhaps `versionedPlugins`), or reattaches to one.
 *
 * @param options The command, the handshake, the plugins and how to run them.
 * @returns A connected client; kill it (or use `await using`) when done.
 * @throws {PluginError} When the plugin cannot be started, handshaken or reached.
 *
 * @example A plugin set of one version
 * ```ts
 * import { PluginError, startPlugin } from "@plugwire/plugwire/host";
 * import { KV } from "./gen/kv/kv_pb.ts";
 * import assert from "node:assert/strict";
 *
 * await assert.rejects(
 *   startPlugin({
 *     cmd: ["/nonexistent/kv-plugin"],
 *     handshake: { protocolVersion: 1, magicCookieKey: "BASIC_PLUGIN", magicCookieValue: "hello" },
 *     plugins: { kv: KV },
 *   }),
 *   (err) => err instanceof PluginError && err.code === "exited-before-connect",
 * );
 * ```
 */
export function startPlugin<P extends HostPluginSet>(
  options: StartOptions<P>,
): Promise<PluginClient<P>>;
export function startPlugin<P extends HostPluginSet>(
  options: StartOptions<P>,
): Promise<PluginClient<P>> {
  return start(options);
}
// The structural types every signature is written in (see internal/shapes.ts).
export type * from "./internal/shapes.ts";
export type { MaybePromise } from "./internal/grpc.ts";
export type { GrpcJsHandlers, GrpcJsServiceDefinition } from "./internal/grpc_server.ts";
export type { PluginErrorCode, PluginErrorOptions, StatusCode } from "./internal/errors.ts";
