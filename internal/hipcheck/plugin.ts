/**
 * A Hipcheck plugin's definition: its name, query endpoints with their schemas and handlers,
 * configuration, default policy and explanation; and how one query runs against it (validate
 * the key, run the handler, validate the output), the same in the server and in unit tests.
 *
 * @module
 */

import { ConfigError, HipcheckError } from "./errors.ts";
import { parseConfiguration } from "./config.ts";
import type { HipcheckLogger } from "./log.ts";
import type { MaybePromise } from "../grpc.ts";
import {
  type CompiledSchema,
  compileSchema,
  formatIssues,
  type InputOf,
  type JsonValue,
  type OutputOf,
  type Schema,
} from "./schema.ts";

/**
 * What a query handler gets besides its key: queries to other plugins (through Hipcheck core),
 * concerns for the report, the plugin's configuration and its log. A handler that reads the
 * configuration annotates its engine: `(engine: Engine<ConfigOf<typeof config>>, key) => …`.
 *
 * @typeParam C The plugin's configuration type.
 *
 * @example A handler that asks another plugin, typed by a schema for the answer
 * ```ts
 * import { type Engine, mockEngine } from "@plugwire/plugwire/hipcheck";
 * import { z } from "zod";
 * import assert from "node:assert/strict";
 *
 * async function firstByte(engine: Engine, data: number[]): Promise<number> {
 *   const digest = await engine.query("dummy/sha256/sha256", data, z.array(z.number()));
 *   engine.recordConcern(`first byte ${digest[0]}`);
 *   return digest[0];
 * }
 * const engine = mockEngine({ "dummy/sha256/sha256": (key) => (key as number[]).map((n) => n * 2) });
 * assert.equal(await firstByte(engine, [21, 1]), 42);
 * assert.deepEqual(engine.concerns, ["first byte 42"]);
 * ```
 */
export interface Engine<C = unknown> {
  /**
   * Queries another plugin's endpoint through core: `target` is `"publisher/plugin"` (its
   * default endpoint) or `"publisher/plugin/query"`. With `output`, the answer is validated by
   * that schema and typed by it. Queries of one handler run one at a time, in call order (the
   * protocol allows one outstanding query per session).
   */
  query(target: string, key: unknown): Promise<JsonValue>;
  /** The same, with the answer checked by `output` and typed by it. */
  query<S extends Schema>(target: string, key: unknown, output: S): Promise<OutputOf<S>>;
  /**
   * Queries one endpoint with several keys; answers come in key order. Large batches are sent
   * in several messages, none of more than one chunk (Hipcheck core 3.15 cannot decode a
   * chunked message of several keys).
   */
  batchQuery(target: string, keys: readonly unknown[]): Promise<JsonValue[]>;
  /** The same, each answer checked by `output` and typed by it. */
  batchQuery<S extends Schema>(
    target: string,
    keys: readonly unknown[],
    output: S,
  ): Promise<OutputOf<S>[]>;
  /** Adds a concern to this query's reply (Hipcheck shows concerns of failing analyses). */
  recordConcern(concern: string): void;
  /** The plugin's configuration, as its schema produced it. */
  readonly config: C;
  /** The plugin's log (Hipcheck's stderr format). */
  readonly log: HipcheckLogger;
}

/**
 * One query endpoint: its key and output schemas, whether it is the plugin's default endpoint,
 * and its handler. Made by {@link query}.
 *
 * @typeParam K The key's schema.
 * @typeParam O The output's schema.
 * @typeParam C The plugin's configuration type, as the handler sees it.
 *
 * @example Calling a handler directly
 * ```ts
 * import { mockEngine, query, type QueryDefinition } from "@plugwire/plugwire/hipcheck";
 * import { z } from "zod";
 * import assert from "node:assert/strict";
 *
 * const double: QueryDefinition<z.ZodNumber, z.ZodNumber> = query(
 *   { key: z.number(), output: z.number() },
 *   (_engine, key) => key * 2,
 * );
 * assert.equal(await double.handler(mockEngine({}), 21), 42);
 * assert.equal(double.default, false);
 * ```
 */
export interface QueryDefinition<
  K extends Schema = Schema,
  O extends Schema = Schema,
  C = unknown,
> {
  /** The key's schema. */
  readonly key: K;
  /** The output's schema. */
  readonly output: O;
  /** Whether this is the default endpoint (also served under `""`). */
  readonly default: boolean;
  /** The handler: the key as the key schema produced it, to the output the schema accepts. */
  readonly handler: (engine: Engine<C>, key: OutputOf<K>) => MaybePromise<InputOf<O>>;
}

/**
 * Options of {@link query}.
 *
 * @typeParam K The key's schema.
 * @typeParam O The output's schema.
 *
 * @example
 * ```ts
 * import type { QueryOptions } from "@plugwire/plugwire/hipcheck";
 * import { z } from "zod";
 * import assert from "node:assert/strict";
 *
 * const options: QueryOptions<z.ZodString, z.ZodNumber> = {
 *   key: z.string(),
 *   output: z.number(),
 *   default: true,
 * };
 * assert.ok(options.default);
 * ```
 */
export interface QueryOptions<K extends Schema, O extends Schema> {
  /** The key's schema: a Standard Schema validator (zod 4…) or a JSON Schema object. */
  key: K;
  /** The output's schema. */
  output: O;
  /** Makes this the plugin's default endpoint (the one Hipcheck analyses query). */
  default?: boolean;
}

/**
 * Declares a query endpoint. The handler's key and return types come from the schemas; the
 * key is validated before the handler runs and the output before it is sent.
 *
 * @param options The schemas, and whether this is the default endpoint.
 * @param handler `(engine, key) => output`, sync or async.
 * @returns The endpoint, for a plugin's `queries`.
 *
 * @example A query keyed by a string (any JSON value works as key or output)
 * ```ts
 * import { definePlugin, query, runQuery } from "@plugwire/plugwire/hipcheck";
 * import { z } from "zod";
 * import assert from "node:assert/strict";
 *
 * const words = query({ key: z.string(), output: z.array(z.string()) }, (_e, text) => text.split(" "));
 * const plugin = definePlugin({ publisher: "demo", name: "text", queries: { words } });
 * assert.deepEqual(await runQuery(plugin, "words", "a b c"), ["a", "b", "c"]);
 * ```
 */
export function query<K extends Schema, O extends Schema, C = unknown>(
  options: QueryOptions<K, O>,
  handler: (engine: Engine<C>, key: OutputOf<K>) => MaybePromise<InputOf<O>>,
): QueryDefinition<K, O, C> {
  if (typeof handler !== "function") {
    throw new HipcheckError("invalid-definition", "query(): the handler must be a function");
  }
  return Object.freeze({
    key: options.key,
    output: options.output,
    default: options.default === true,
    handler,
  });
}

/**
 * The configuration type of a plugin whose configuration schema is `S` (`undefined` without).
 *
 * @typeParam S The configuration schema, or `undefined`.
 *
 * @example
 * ```ts
 * import type { ConfigOf } from "@plugwire/plugwire/hipcheck";
 * import { z } from "zod";
 * import assert from "node:assert/strict";
 *
 * const schema = z.object({ maxFiles: z.number().optional() });
 * const config: ConfigOf<typeof schema> = { maxFiles: 3 };
 * assert.equal(config.maxFiles, 3);
 * ```
 */
export type ConfigOf<S> = S extends Schema ? OutputOf<S> : undefined;

/**
 * What {@link definePlugin} takes.
 *
 * @typeParam S The configuration schema, or `undefined`.
 *
 * @example A plugin with configuration and a default policy from it
 * ```ts
 * import { definePlugin, type PluginSpec, query } from "@plugwire/plugwire/hipcheck";
 * import { z } from "zod";
 * import assert from "node:assert/strict";
 *
 * const config = z.object({ threshold: z.number().int().nonnegative().optional() });
 * const spec: PluginSpec<typeof config> = {
 *   publisher: "demo",
 *   name: "count",
 *   config,
 *   defaultPolicy: ({ threshold }) => threshold === undefined ? undefined : `(lte $ ${threshold})`,
 *   explanation: "the number of things counted",
 *   queries: { count: query({ key: z.unknown(), output: z.number(), default: true }, () => 1) },
 * };
 * assert.equal(definePlugin(spec).defaultQuery, "count");
 * ```
 */
export interface PluginSpec<S extends Schema | undefined = undefined> {
  /** The publisher, as in `publisher/name`. */
  publisher: string;
  /** The plugin's name. */
  name: string;
  /** The query endpoints by name; at most one has `default: true`. */
  // deno-lint-ignore no-explicit-any
  queries: Record<string, QueryDefinition<any, any, any>>;
  /**
   * The configuration's schema. Policy files name fields with dashes (`max-files`); they reach
   * a schema that names them in camelCase (`maxFiles`) under that name. Without a schema, the
   * plugin accepts only an empty configuration.
   */
  config?: S;
  /**
   * Runs after the schema accepted the configuration, for checks a schema cannot make (files,
   * programs, environment). Throw a {@link ConfigError}; anything else is reported as an
   * internal error.
   */
  configure?: (config: ConfigOf<S>) => MaybePromise<void>;
  /** The default policy expression (e.g. `(lte $ 10)`), or a function of the configuration. */
  defaultPolicy?: string | ((config: ConfigOf<S>) => string | undefined);
  /** What the default query's output means, for Hipcheck's report text. */
  explanation?: string | ((config: ConfigOf<S>) => string | undefined);
}

/**
 * A Hipcheck plugin, as {@link definePlugin} made it: serve it with `servePlugin`, test it with
 * `runQuery`.
 *
 * @typeParam S The configuration schema, or `undefined`.
 *
 * @example
 * ```ts
 * import { definePlugin, type HipcheckPlugin, query } from "@plugwire/plugwire/hipcheck";
 * import { z } from "zod";
 * import assert from "node:assert/strict";
 *
 * const plugin: HipcheckPlugin = definePlugin({
 *   publisher: "demo",
 *   name: "one",
 *   queries: { one: query({ key: z.null(), output: z.literal(1) }, () => 1 as const) },
 * });
 * assert.equal(plugin.defaultQuery, undefined); // no default endpoint
 * assert.deepEqual(Object.keys(plugin.queries), ["one"]);
 * ```
 */
export interface HipcheckPlugin<S extends Schema | undefined = Schema | undefined>
  extends Readonly<PluginSpec<S>> {
  /** The name of the default endpoint, if one is marked `default`. */
  readonly defaultQuery: string | undefined;
}

/** A plugin's schemas, compiled once. */
export interface CompiledPlugin {
  readonly endpoints: ReadonlyMap<string, {
    readonly definition: QueryDefinition;
    readonly key: CompiledSchema;
    readonly output: CompiledSchema;
  }>;
  readonly config: CompiledSchema | undefined;
}

const compiled = new WeakMap<HipcheckPlugin, CompiledPlugin>();

const NAME = /^[^/\s]+$/;

/**
 * Defines a plugin and checks it: names without `/` or spaces, at most one default endpoint,
 * schemas that give a JSON Schema. Throws {@link HipcheckError} (`invalid-definition`).
 *
 * @param spec The plugin.
 * @returns The plugin, frozen.
 *
 * @example Two defaults are an error at definition time
 * ```ts
 * import { definePlugin, HipcheckError, query } from "@plugwire/plugwire/hipcheck";
 * import { z } from "zod";
 * import assert from "node:assert/strict";
 *
 * const q = () => query({ key: z.number(), output: z.number(), default: true }, (_e, k) => k);
 * assert.throws(
 *   () => definePlugin({ publisher: "demo", name: "two", queries: { a: q(), b: q() } }),
 *   (err) => err instanceof HipcheckError && err.code === "invalid-definition",
 * );
 * ```
 */
export function definePlugin<S extends Schema | undefined = undefined>(
  spec: PluginSpec<S>,
): HipcheckPlugin<S> {
  const fail = (message: string, cause?: unknown) => {
    throw new HipcheckError("invalid-definition", message, { cause });
  };
  for (const field of ["publisher", "name"] as const) {
    if (typeof spec[field] !== "string" || !NAME.test(spec[field])) {
      fail(
        `plugin ${field} ${JSON.stringify(spec[field])}: a non-empty name without "/" or spaces`,
      );
    }
  }
  const id = `${spec.publisher}/${spec.name}`;
  const endpoints = new Map<string, {
    definition: QueryDefinition;
    key: CompiledSchema;
    output: CompiledSchema;
  }>();
  let defaultQuery: string | undefined;
  for (const [name, definition] of Object.entries(spec.queries ?? {})) {
    if (!NAME.test(name)) {
      fail(
        `${id}: query name ${JSON.stringify(name)} must be non-empty, without "/" or spaces ` +
          `(mark the default endpoint with default: true)`,
      );
    }
    if (typeof definition?.handler !== "function") fail(`${id}/${name}: not made by query()`);
    if (definition.default) {
      if (defaultQuery !== undefined) {
        fail(`${id}: two default queries, "${defaultQuery}" and "${name}"; at most one`);
      }
      defaultQuery = name;
    }
    try {
      endpoints.set(name, {
        definition,
        key: compileSchema(definition.key, "input", `${id}/${name} key`),
        output: compileSchema(definition.output, "output", `${id}/${name} output`),
      });
    } catch (err) {
      fail((err as Error).message, err);
    }
  }
  if (endpoints.size === 0) fail(`${id}: a plugin needs at least one query`);
  let config: CompiledSchema | undefined;
  if (spec.config !== undefined) {
    try {
      config = compileSchema(spec.config, "input", `${id} configuration`);
    } catch (err) {
      fail((err as Error).message, err);
    }
  }
  const plugin = Object.freeze({
    ...spec,
    queries: Object.freeze({ ...spec.queries }),
    defaultQuery,
  });
  compiled.set(plugin as HipcheckPlugin, { endpoints, config });
  return plugin as HipcheckPlugin<S>;
}

/** The compiled schemas of a plugin made by {@link definePlugin}. */
export function compiledPlugin(plugin: HipcheckPlugin): CompiledPlugin {
  const found = compiled.get(plugin);
  if (!found) {
    throw new HipcheckError("invalid-definition", "not a plugin made by definePlugin()");
  }
  return found;
}

/**
 * Runs one query of `plugin`: `queryName` `""` is the default endpoint. Validates the key,
 * runs the handler with `engine`, validates the output; returns the output to send. Throws
 * {@link HipcheckError}: `unknown-query`, `invalid-key`, `handler` (the handler threw; a
 * HipcheckError from it keeps its code), `invalid-output`.
 */
export async function runEndpoint(
  plugin: HipcheckPlugin,
  queryName: string,
  key: unknown,
  engine: Engine<unknown>,
): Promise<unknown> {
  const { endpoints } = compiledPlugin(plugin);
  const id = `${plugin.publisher}/${plugin.name}`;
  const name = queryName === "" ? plugin.defaultQuery : queryName;
  const endpoint = name === undefined ? undefined : endpoints.get(name);
  if (endpoint === undefined) {
    const known = [...endpoints.keys()].map((n) => `"${n}"`).join(", ");
    throw new HipcheckError(
      "unknown-query",
      queryName === ""
        ? `${id} has no default query (its queries: ${known})`
        : `${id} has no query "${queryName}" (its queries: ${known})`,
    );
  }
  const label = `${id}/${name}`;
  const checkedKey = await endpoint.key.validate(key);
  if (checkedKey.issues) {
    throw new HipcheckError(
      "invalid-key",
      `invalid key for ${label}: ${formatIssues(checkedKey.issues)}`,
      { issues: checkedKey.issues },
    );
  }
  let output: unknown;
  try {
    output = await endpoint.definition.handler(engine, checkedKey.value);
  } catch (err) {
    if (err instanceof HipcheckError) throw err;
    const message = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
    throw new HipcheckError("handler", `${label} failed: ${message}`, { cause: err });
  }
  const checkedOutput = await endpoint.output.validate(output);
  if (checkedOutput.issues) {
    throw new HipcheckError(
      "invalid-output",
      `invalid output from ${label}: ${formatIssues(checkedOutput.issues)}`,
      { issues: checkedOutput.issues },
    );
  }
  try {
    if (JSON.stringify(checkedOutput.value) === undefined) throw new TypeError("undefined");
  } catch (err) {
    throw new HipcheckError(
      "invalid-output",
      `invalid output from ${label}: not JSON (${(err as Error).message})`,
      { cause: err },
    );
  }
  return checkedOutput.value;
}

/**
 * The outcome of configuring a plugin: its configuration, default policy expression and
 * explanation (`""` for none), as `SetConfiguration`, `GetDefaultPolicyExpression` and
 * `ExplainDefaultQuery` report them.
 *
 * @example
 * ```ts
 * import type { PluginSetup } from "@plugwire/plugwire/hipcheck";
 * import assert from "node:assert/strict";
 *
 * const setup: PluginSetup = { config: { maxFiles: 3 }, defaultPolicy: "(lte $ 3)", explanation: "" };
 * assert.equal(setup.defaultPolicy, "(lte $ 3)");
 * ```
 */
export interface PluginSetup<C = unknown> {
  /** The configuration the handlers see. */
  config: C;
  /** The default policy expression, `""` for none. */
  defaultPolicy: string;
  /** The explanation of the default query, `""` for none. */
  explanation: string;
}

/**
 * Configures a plugin as Hipcheck core would, with the policy file's configuration object
 * (dashed names), and returns its configuration, default policy and explanation. Throws
 * {@link ConfigError} exactly where `SetConfiguration` would answer with a status.
 *
 * @param plugin The plugin.
 * @param configuration The configuration object (default `{}`, what core sends for none).
 * @returns The plugin's setup.
 *
 * @example A default policy that depends on the configuration
 * ```ts
 * import { ConfigError, configurePlugin, definePlugin, query } from "@plugwire/plugwire/hipcheck";
 * import { z } from "zod";
 * import assert from "node:assert/strict";
 *
 * const plugin = definePlugin({
 *   publisher: "demo",
 *   name: "limit",
 *   config: z.object({ maxFiles: z.number().int().nonnegative().optional() }),
 *   defaultPolicy: ({ maxFiles }) => maxFiles === undefined ? undefined : `(lte $ ${maxFiles})`,
 *   queries: { n: query({ key: z.unknown(), output: z.number(), default: true }, () => 1) },
 * });
 * assert.equal((await configurePlugin(plugin, { "max-files": 5 })).defaultPolicy, "(lte $ 5)");
 * assert.equal((await configurePlugin(plugin)).defaultPolicy, "");
 * await assert.rejects(configurePlugin(plugin, { "max-file": 5 }), (err) => {
 *   assert.ok(err instanceof ConfigError);
 *   assert.equal(err.kind, "unrecognized");
 *   assert.equal(err.message, "'max-file' with value '5'; did you mean 'max-files'?");
 *   return true;
 * });
 * ```
 */
export async function configurePlugin<S extends Schema | undefined>(
  plugin: HipcheckPlugin<S>,
  configuration: Record<string, unknown> = {},
): Promise<PluginSetup<ConfigOf<S>>> {
  return await setUpPlugin(plugin, JSON.stringify(configuration));
}

/** {@link configurePlugin} from the JSON text `SetConfiguration` carries. */
export async function setUpPlugin<S extends Schema | undefined>(
  plugin: HipcheckPlugin<S>,
  configurationJson: string,
): Promise<PluginSetup<ConfigOf<S>>> {
  const config = await parseConfiguration(
    configurationJson,
    compiledPlugin(plugin as HipcheckPlugin).config,
  ) as ConfigOf<S>;
  try {
    await plugin.configure?.(config);
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    throw ConfigError.internal(err instanceof Error ? err.message : String(err));
  }
  const text = (value: string | ((config: ConfigOf<S>) => string | undefined) | undefined) =>
    (typeof value === "function" ? value(config) : value) ?? "";
  let defaultPolicy: string, explanation: string;
  try {
    defaultPolicy = text(plugin.defaultPolicy);
    explanation = text(plugin.explanation);
  } catch (err) {
    throw ConfigError.internal(
      `default policy or explanation: ${err instanceof Error ? err.message : String(err)}`,
    );
  }
  return { config, defaultPolicy, explanation };
}
