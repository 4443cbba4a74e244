/**
 * Write Hipcheck query plugins in TypeScript: typed query endpoints with JSON schemas, queries
 * to other plugins, configuration with precise errors, default policies and explanations, and a
 * server that Hipcheck core 3.15 starts (`--port`, `--log-level`, plain gRPC on 127.0.0.1).
 *
 * - Define: {@link definePlugin} with {@link query} endpoints; schemas are zod 4 (or any
 *   Standard Schema validator with a JSON Schema) or plain JSON Schema objects ({@link jsonSchema}).
 * - Serve: {@link servePlugin} when the module is the main one.
 * - Test: {@link runQuery} with a {@link mockEngine}; {@link configurePlugin} for configuration.
 * - Ship: `deno task bundle` makes one file; {@link pluginManifest} writes its `plugin.kdl`.
 * - Host: {@link startHipcheckCore} runs Hipcheck plugins (Python, Rust, TypeScript) as Hipcheck
 *   core does and answers queries, routing the plugins' sub-queries between them.
 *
 * @example A query plugin, tested in process
 * ```ts
 * import { definePlugin, mockEngine, query, runQuery, servePlugin } from "@plugwire/plugwire/hipcheck";
 * import { z } from "zod";
 * import assert from "node:assert/strict";
 *
 * const target = z.object({ local: z.object({ path: z.string() }) }).loose();
 * export const plugin = definePlugin({
 *   publisher: "demo",
 *   name: "pathlen",
 *   explanation: "the length of the repository's path",
 *   queries: {
 *     pathlen: query({ key: target, output: z.number(), default: true }, (engine, key) => {
 *       engine.recordConcern(`path ${key.local.path}`);
 *       return key.local.path.length;
 *     }),
 *   },
 * });
 * if (import.meta.main) await servePlugin(plugin); // what Hipcheck core runs
 *
 * const engine = mockEngine({});
 * assert.equal(await runQuery(plugin, "", { local: { path: "/repo" } }, { engine }), 5);
 * assert.deepEqual(engine.concerns, ["path /repo"]);
 * ```
 *
 * @module
 */

export {
  type ConfigOf,
  configurePlugin,
  definePlugin,
  type Engine,
  type HipcheckPlugin,
  type PluginSetup,
  type PluginSpec,
  query,
  type QueryDefinition,
  type QueryOptions,
} from "./internal/hipcheck/plugin.ts";
export {
  formatIssues,
  type InputOf,
  type JsonSchema,
  jsonSchema,
  type JsonValue,
  type OutputOf,
  type Schema,
  type SchemaIssue,
  type StandardResult,
  type StandardValidator,
} from "./internal/hipcheck/schema.ts";
export {
  ConfigError,
  type ConfigErrorKind,
  HipcheckError,
  type HipcheckErrorCode,
} from "./internal/hipcheck/errors.ts";
export type { HipcheckLogger, HipcheckLogLevel } from "./internal/hipcheck/log.ts";
export type { MaybePromise } from "./internal/grpc.ts";
export {
  type PluginServer,
  servePlugin,
  type ServePluginOptions,
} from "./internal/hipcheck/plugin_server.ts";
export {
  type MockEngine,
  mockEngine,
  type MockEngineOptions,
  type MockResponse,
  runQuery,
  type RunQueryOptions,
} from "./internal/hipcheck/testing.ts";
export {
  DEFAULT_ARCHES,
  type ManifestOptions,
  pluginManifest,
} from "./internal/hipcheck/manifest.ts";

// ---------------------------------------------------------------------------------------------
// The host side: a TypeScript Hipcheck core that starts Hipcheck plugins (Python, Rust or
// TypeScript) as Hipcheck core 3.15 does and answers queries, routing sub-queries between them.
export {
  type HipcheckCore,
  type HipcheckCoreOptions,
  type HipcheckCorePlugin,
  type HipcheckCorePluginSpec,
  type HipcheckCoreQuery,
  type HipcheckQueryResult,
  startHipcheckCore,
} from "./internal/hipcheck/core.ts";
export {
  HipcheckCoreError,
  type HipcheckCoreErrorCode,
  type HipcheckCoreErrorOptions,
} from "./internal/hipcheck/core_errors.ts";
export type { HipcheckConnectPolicy } from "./internal/hipcheck/launcher.ts";
export type { LogSink, PluginLogRecord } from "./internal/logger.ts";
export type { LogLevel, LogRecord } from "./internal/hclog.ts";
