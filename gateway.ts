/**
 * The HTTP gateway: serve plugins as HTTP endpoints from one TOML file. In-process TypeScript
 * handlers (`/<id>`), any go-plugin plugin as a supervised subprocess with every gRPC method
 * transcoded to JSON through its reflection service (`POST /plugins/<id>/<pkg.Service>/<Method>`,
 * Connect's unary conventions, server streams as NDJSON), and Hipcheck plugins
 * (`POST /hipcheck/<publisher>/<name>[/<query>]`). API keys, CORS, limits, TLS, control routes
 * under `/-/`, real reloads and a live status page at `/`.
 *
 *     ./scripts/deno.sh task gateway --config examples/gateway/plugwire.toml
 *
 * @example An in-process plugin behind an API key
 * ```ts
 * import { parseGatewayConfig, startGateway } from "@plugwire/plugwire/gateway";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/hello.ts`, `export default { handle: () => ["hello"] };`);
 * const config = parseGatewayConfig(
 *   `listen = "127.0.0.1:0"\n[auth]\nkeys = ["\${KEY}"]\n[plugins.hello]\nmodule = "hello.ts"\n`,
 *   { file: `${dir}/plugwire.toml`, env: { KEY: "s3cret" } },
 * );
 * await using gateway = await startGateway({ config, handleSignals: false, log: () => {} });
 * const anonymous = await fetch(`${gateway.url}/hello`);
 * assert.equal(anonymous.status, 401);
 * await anonymous.body?.cancel();
 * const ok = await fetch(`${gateway.url}/hello`, { headers: { authorization: "Bearer s3cret" } });
 * assert.deepEqual(await ok.json(), ["hello"]);
 * await gateway.stop();
 * await Deno.remove(dir, { recursive: true });
 * ```
 *
 * @module
 */

import type { HttpPlugin } from "./internal/gateway/module_plugin.ts";

export { Gateway, type GatewayOptions, startGateway } from "./internal/gateway/gateway.ts";
export {
  type CommonPluginSection,
  type GatewayConfig,
  GatewayConfigError,
  type GrpcPluginSection,
  type HandshakeSection,
  type HipcheckPluginSection,
  type ModulePluginSection,
  parseGatewayConfig,
  type PluginSection,
} from "./internal/gateway/config.ts";
export { loadGatewayConfig } from "./internal/gateway/load.ts";
export { GatewayStartError } from "./internal/gateway/listen.ts";
export type {
  HandlerResult,
  HttpPlugin,
  JsonValue,
  PluginContext,
  PluginInitContext,
  PluginRequest,
} from "./internal/gateway/module_plugin.ts";
export type {
  SlotState as PluginState,
  SlotStatus as PluginStatus,
} from "./internal/gateway/slot.ts";

/**
 * Types an in-process plugin module's default export (it returns its argument).
 *
 * @typeParam P The shape of the plugin's `params` in the config file.
 * @param plugin `initialize`, `handle` and `terminate`.
 * @returns The same plugin.
 *
 * @example A counter with params and a terminate step
 * ```ts
 * import { definePlugin } from "@plugwire/plugwire/gateway";
 * import assert from "node:assert/strict";
 *
 * let count = 0;
 * const plugin = definePlugin<{ step: number }>({
 *   initialize(params) {
 *     count = 0;
 *     assert.equal(typeof params.step, "number");
 *   },
 *   handle(_request, ctx) {
 *     count += ctx.params.step;
 *     return { count };
 *   },
 *   terminate() {
 *     count = -1;
 *   },
 * });
 * await plugin.initialize?.({ step: 2 }, { id: "counter", log: () => {} });
 * const ctx = { id: "counter", params: { step: 2 }, log: () => {}, signal: new AbortController().signal };
 * assert.deepEqual(await plugin.handle({} as never, ctx), { count: 2 });
 * ```
 */
export function definePlugin<P = Record<string, unknown>>(plugin: HttpPlugin<P>): HttpPlugin<P> {
  return plugin;
}
