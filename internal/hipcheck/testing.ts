/**
 * Testing a Hipcheck plugin without Hipcheck: a mock engine that answers sub-queries from
 * functions and records concerns, and `runQuery`, which runs one query of a plugin in process
 * exactly as the server would (configuration, key validation, handler, output validation).
 *
 * @module
 */

import { HipcheckError } from "./errors.ts";
import { type HipcheckLogger, hipcheckLogger } from "./log.ts";
import { type Engine, type HipcheckPlugin, runEndpoint, setUpPlugin } from "./plugin.ts";
import type { JsonValue, Schema } from "./schema.ts";
import { checkAnswers } from "./session.ts";
import { formatTarget, parseTarget } from "./target.ts";

/**
 * How a mock answers one target: a function of the key that returns the output, or an `Error`
 * (returned or thrown) to make that sub-query fail. Sync or async.
 *
 * @example An answer that depends on the key, and a failure
 * ```ts
 * import type { MockResponse } from "@plugwire/plugwire/hipcheck";
 * import assert from "node:assert/strict";
 *
 * const length: MockResponse = (key) => String(key).length;
 * const broken: MockResponse = () => new Error("rate limited");
 * assert.equal(length("abc"), 3);
 * assert.ok(broken(null) instanceof Error);
 * ```
 */
export type MockResponse = (key: JsonValue) => unknown;

/**
 * Options of {@link mockEngine}.
 *
 * @example
 * ```ts
 * import { mockEngine, type MockEngineOptions } from "@plugwire/plugwire/hipcheck";
 * import assert from "node:assert/strict";
 *
 * const options: MockEngineOptions = { config: { maxFiles: 3 } };
 * assert.deepEqual(mockEngine({}, options).config, { maxFiles: 3 });
 * ```
 */
export interface MockEngineOptions {
  /** What `engine.config` returns (runQuery replaces it with the parsed `configuration`). */
  config?: unknown;
  /** Where the engine's log lines go (default: nowhere). */
  log?: (line: string) => void;
}

/**
 * An {@link Engine} for tests, with what happened recorded.
 *
 * @example
 * ```ts
 * import { type MockEngine, mockEngine } from "@plugwire/plugwire/hipcheck";
 * import assert from "node:assert/strict";
 *
 * const engine: MockEngine = mockEngine({ "demo/len": (key) => String(key).length });
 * assert.equal(await engine.query("demo/len", "abcd"), 4);
 * engine.recordConcern("noted");
 * assert.deepEqual(engine.calls, [{ target: "demo/len", key: "abcd" }]);
 * assert.deepEqual(engine.concerns, ["noted"]);
 * ```
 */
export interface MockEngine extends Engine<unknown> {
  /** Concerns recorded so far, in order. */
  readonly concerns: string[];
  /** Sub-queries made so far, one entry per key, with the target in canonical form. */
  readonly calls: { target: string; key: JsonValue }[];
}

const setConfig = Symbol("setConfig");

/**
 * A mock engine answering sub-queries from `responses`, keyed by target
 * (`"publisher/plugin/query"`, or `"publisher/plugin"` for the default endpoint). Keys and
 * answers go through JSON as on the wire. A target without a response, an `Error` and an
 * answer that is not JSON fail the sub-query with {@link HipcheckError} `sub-query-failed`, as
 * a failing sub-query does under Hipcheck.
 *
 * @param responses Answers by target.
 * @param options The configuration handlers see; where log lines go.
 * @returns The engine.
 *
 * @example Testing a handler that asks another plugin
 * ```ts
 * import { HipcheckError, mockEngine } from "@plugwire/plugwire/hipcheck";
 * import assert from "node:assert/strict";
 *
 * const engine = mockEngine({
 *   "dummy/sha256/sha256": (key) => (key as number[]).map((n) => 255 - n),
 *   "demo/flaky": () => new Error("unavailable"),
 * });
 * assert.deepEqual(await engine.batchQuery("dummy/sha256/sha256", [[1], [2]]), [[254], [253]]);
 * await assert.rejects(
 *   engine.query("demo/flaky", 1),
 *   (err) => err instanceof HipcheckError && err.code === "sub-query-failed",
 * );
 * await assert.rejects(engine.query("demo/absent", 1), /no mock response for demo\/absent/);
 * ```
 */
export function mockEngine(
  responses: Record<string, MockResponse>,
  options: MockEngineOptions = {},
): MockEngine {
  const table = new Map<string, MockResponse>();
  for (const [target, response] of Object.entries(responses)) {
    table.set(formatTarget(parseTarget(target)), response);
  }
  const concerns: string[] = [];
  const calls: { target: string; key: JsonValue }[] = [];
  let config = options.config;
  const log: HipcheckLogger = options.log
    ? hipcheckLogger("mock", "trace", options.log)
    : hipcheckLogger("mock", "off", () => {});

  async function answer(target: string, key: unknown): Promise<unknown> {
    const wireKey = throughJson(key, `key for ${target}`) as JsonValue;
    calls.push({ target, key: wireKey });
    const response = table.get(target);
    if (response === undefined) {
      throw new HipcheckError("sub-query-failed", `no mock response for ${target}`);
    }
    let result: unknown;
    try {
      result = await response(wireKey);
    } catch (err) {
      result = err instanceof Error ? err : new Error(String(err));
    }
    if (result instanceof Error) {
      throw new HipcheckError("sub-query-failed", `query to ${target} failed: ${result.message}`, {
        cause: result,
      });
    }
    return throughJson(result, `answer of ${target}`);
  }

  async function batchQuery(target: string, keys: readonly unknown[], output?: Schema) {
    const canonical = formatTarget(parseTarget(target));
    const answers: unknown[] = [];
    for (const key of keys) answers.push(await answer(canonical, key));
    return await checkAnswers(canonical, answers, output);
  }

  const engine = {
    concerns,
    calls,
    get config() {
      return config;
    },
    log,
    recordConcern(concern: string) {
      concerns.push(String(concern));
    },
    query: (target: string, key: unknown, output?: Schema) =>
      batchQuery(target, [key], output).then((answers) => answers[0]),
    batchQuery,
    [setConfig](value: unknown) {
      config = value;
    },
  };
  return engine as unknown as MockEngine;
}

function throughJson(
  value: unknown,
  what: string,
  code: "sub-query-failed" | "invalid-key" = "sub-query-failed",
): unknown {
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch (err) {
    throw new HipcheckError(code, `${what} is not JSON: ${(err as Error).message}`);
  }
  if (text === undefined) throw new HipcheckError(code, `${what} is not JSON`);
  return JSON.parse(text);
}

/**
 * Options of {@link runQuery}.
 *
 * @example
 * ```ts
 * import { mockEngine, type RunQueryOptions } from "@plugwire/plugwire/hipcheck";
 * import assert from "node:assert/strict";
 *
 * const options: RunQueryOptions = { engine: mockEngine({}), configuration: { "max-files": 2 } };
 * assert.equal(options.configuration?.["max-files"], 2);
 * ```
 */
export interface RunQueryOptions {
  /** The engine the handler gets (default: a mock engine with no responses). */
  engine?: MockEngine;
  /**
   * The configuration object as a policy file gives it (dashed names); parsed by the plugin's
   * schema as `SetConfiguration` would, and what `engine.config` then returns. Default `{}`.
   */
  configuration?: Record<string, unknown>;
}

/**
 * Runs one query of `plugin` in process, as the server would: configures the plugin, validates
 * the key, runs the handler with the engine, validates the output (which goes through JSON).
 * `queryName` `""` is the default endpoint. Throws {@link HipcheckError} as the server would
 * report it, or a `ConfigError` for a configuration the plugin rejects.
 *
 * @param plugin The plugin.
 * @param queryName The endpoint, `""` for the default one.
 * @param key The key.
 * @param options The engine (for its responses and recorded concerns) and the configuration.
 * @returns The output, as it would be sent.
 *
 * @example Asserting on the output and the recorded concerns
 * ```ts
 * import { definePlugin, mockEngine, query, runQuery } from "@plugwire/plugwire/hipcheck";
 * import { z } from "zod";
 * import assert from "node:assert/strict";
 *
 * const plugin = definePlugin({
 *   publisher: "demo",
 *   name: "first",
 *   queries: {
 *     first: query({ key: z.array(z.number()), output: z.number(), default: true }, async (engine, key) => {
 *       const digest = await engine.query("dummy/sha256/sha256", key, z.array(z.number()));
 *       engine.recordConcern(`first byte ${digest[0]}`);
 *       return digest[0];
 *     }),
 *   },
 * });
 * const engine = mockEngine({ "dummy/sha256/sha256": () => [75, 245] });
 * assert.equal(await runQuery(plugin, "", [1], { engine }), 75);
 * assert.deepEqual(engine.concerns, ["first byte 75"]);
 * ```
 */
export async function runQuery(
  plugin: HipcheckPlugin,
  queryName: string,
  key: unknown,
  options: RunQueryOptions = {},
): Promise<JsonValue> {
  const engine = options.engine ?? mockEngine({});
  const { config } = await setUpPlugin(plugin, JSON.stringify(options.configuration ?? {}));
  (engine as unknown as { [setConfig](value: unknown): void })[setConfig]?.(config);
  const wireKey = throughJson(key, "key", "invalid-key");
  const output = await runEndpoint(plugin, queryName, wireKey, engine);
  return JSON.parse(JSON.stringify(output));
}
