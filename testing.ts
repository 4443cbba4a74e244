/**
 * Test plugins without spawning them: {@link connectInProcess} serves a plugin set in the test's
 * own process, on a private unix socket, and connects the host's client to it (go-plugin's
 * `TestPluginGRPCConn`). Handlers run exactly as under `serve()` (registration, interceptors,
 * `UNIMPLEMENTED` for methods left out, broker), and calls go through the host's own client code,
 * so a plugin author unit-tests handlers with real gRPC and no process.
 *
 * @example Unit-testing a KV plugin's handlers
 * ```ts
 * import { connectInProcess } from "@plugwire/plugwire/testing";
 * import { grpcPlugin } from "@plugwire/plugwire/plugin";
 * import { KV } from "./gen/kv/kv_pb.ts";
 * import assert from "node:assert/strict";
 *
 * const store = new Map<string, Uint8Array>();
 * await using plugin = await connectInProcess({
 *   serve: {
 *     plugins: {
 *       kv: grpcPlugin(KV, {
 *         get: ({ key }) => ({ value: store.get(key) ?? new Uint8Array() }),
 *         put: ({ key, value }) => {
 *           store.set(key, value);
 *           return {};
 *         },
 *       }),
 *     },
 *   },
 *   host: { plugins: { kv: KV } },
 * });
 * const kv = plugin.dispense("kv");
 * await kv.put({ key: "a", value: new TextEncoder().encode("1") });
 * assert.equal(new TextDecoder().decode((await kv.get({ key: "a" })).value), "1");
 * ```
 *
 * @module
 */

import type { HostPluginSet } from "./internal/options.ts";
import {
  connectInProcess as connect,
  type InProcessOptions,
  type InProcessPlugin,
} from "./internal/in_process.ts";

export type { InProcessOptions, InProcessPlugin } from "./internal/in_process.ts";

/**
 * Serves `options.serve` in this process and connects a host client to it, over gRPC on a
 * private unix socket (with AutoMTLS when `autoMtls` is set). Close it, or use `await using`:
 * that disconnects the host, stops the server and removes the socket.
 *
 * @typeParam P The host's plugins, by name.
 * @param options The plugin side (as `serve()` takes it) and the host side (as `startPlugin()`).
 * @returns The connected pair.
 * @throws {TypeError} When a side has no plugins, or a strict implementation lacks a method.
 *
 * @example Methods left out answer UNIMPLEMENTED; interceptors run on both sides
 * ```ts
 * import { connectInProcess } from "@plugwire/plugwire/testing";
 * import { grpcPlugin, RpcError, Status } from "@plugwire/plugwire/plugin";
 * import { KV } from "./gen/kv/kv_pb.ts";
 * import assert from "node:assert/strict";
 *
 * const seen: string[] = [];
 * await using plugin = await connectInProcess({
 *   serve: {
 *     plugins: { kv: grpcPlugin(KV, { get: ({ key }) => ({ value: new TextEncoder().encode(key) }) }) },
 *     interceptors: [(next) => (request) => {
 *       seen.push(`plugin ${request.method} ${request.metadata["x-user"]}`);
 *       return next(request);
 *     }],
 *   },
 *   host: {
 *     plugins: { kv: KV },
 *     interceptors: [(next) => (request) => {
 *       request.metadata["x-user"] = "ada";
 *       return next(request);
 *     }],
 *   },
 *   autoMtls: true,
 * });
 * const kv = plugin.dispense("kv");
 * assert.equal(new TextDecoder().decode((await kv.get({ key: "k" })).value), "k");
 * await assert.rejects(kv.put({ key: "k" }), (err) => (err as RpcError).code === Status.UNIMPLEMENTED);
 * assert.deepEqual(seen, ["plugin Get ada", "plugin Put ada"]);
 * ```
 */
export function connectInProcess<P extends HostPluginSet>(
  options: InProcessOptions<P>,
): Promise<InProcessPlugin<P>> {
  return connect(options);
}
