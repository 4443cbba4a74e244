/**
 * A Hipcheck core in TypeScript: it starts Hipcheck query plugins (Python, Rust or TypeScript)
 * as Hipcheck core 3.15 does, sets each up in core's fixed order, and answers
 * `query("publisher/plugin[/query]", key)`, routing the plugins' sub-queries between them.
 *
 * What it does as core does (hipcheck.md §1.3, §1.5):
 * - setup, all plugins in parallel: `GetQuerySchemas` (chunked schemas joined by name),
 *   `SetConfiguration` (any status but NONE is fatal), `GetDefaultPolicyExpression`,
 *   `ExplainDefaultQuery`, then the `InitiateQueryProtocol` stream;
 * - odd ids per plugin; id 0 (the Python SDK's header flush) and stray ids are ignored;
 * - chunking and rfd9 placeholders both ways (internal/hipcheck/query_state_machine.ts);
 * - each key of a sub-query is a query of its own on the target's stream, through one memo
 *   keyed by (publisher, plugin, query, canonical key JSON); the answers go back in key order
 *   on the asking session's id; the target's concerns are dropped, and a sub-query takes the
 *   last output, a top-level query needs exactly one.
 *
 * Where it does better than core: the keys of a batch run at once (core runs them one after
 * the other); identical queries in flight are shared rather than run twice;
 * a query that waits on itself through sub-queries (a cycle, even across concurrent top-level
 * queries) fails with `query-cycle` instead of hanging; a failed sub-query is answered to the
 * asking plugin with UNSPECIFIED (so its session ends; both SDKs turn that into an error) and
 * the top-level query fails with the sub-query's own error; a failed query's error carries the
 * plugin's concerns, which core drops.
 *
 * @module
 */

import { ConfigurationStatus, type Query } from "../../gen/hipcheck/v1/hipcheck_pb.ts";
import { toRpcError } from "../grpc.ts";
import type { LogLevel } from "../hclog.ts";
import type { LogSink } from "../logger.ts";
import type { HipcheckLogLevel } from "./log.ts";
import { AsyncQueue } from "../queue.ts";
import {
  CONFIG_STATUS_TEXT,
  HipcheckCoreError,
  type HipcheckCoreErrorOptions,
} from "./core_errors.ts";
import {
  type HipcheckConnectPolicy,
  type LaunchedPlugin,
  launchHipcheckPlugin,
} from "./launcher.ts";
import {
  errorConcern,
  MAX_CHUNK_BYTES,
  OddIds,
  parseErrorConcern,
  QueryExchange,
  type QueryMessage,
  routeFromPlugin,
} from "./query_state_machine.ts";

/**
 * One plugin for the core to run: what its `plugin.kdl` manifest (publisher, name, entrypoint)
 * and the policy file's analysis entry (its configuration) say.
 *
 * @example The TypeScript `dummy/sha256` example and the Python SDK's example plugin
 * ```ts
 * import type { HipcheckCorePluginSpec } from "@plugwire/plugwire/hipcheck";
 * import assert from "node:assert/strict";
 *
 * const plugins: HipcheckCorePluginSpec[] = [
 *   { publisher: "dummy", name: "sha256", cmd: "deno run -A examples/hipcheck/sha256.ts" },
 *   {
 *     publisher: "mitre",
 *     name: "example",
 *     cmd: ["python3", "test_main.py"],
 *     config: { "binary-file": "/abs/Binary.kdl", "binary-file-threshold": 10 },
 *   },
 * ];
 * assert.deepEqual(plugins.map((p) => `${p.publisher}/${p.name}`), ["dummy/sha256", "mitre/example"]);
 * ```
 */
export interface HipcheckCorePluginSpec {
  /** The plugin's publisher, e.g. `mitre`. */
  publisher: string;
  /** The plugin's name, e.g. `example`. */
  name: string;
  /**
   * The entrypoint: an array of executable and arguments, or one string split on whitespace
   * (no quoting), as core splits a manifest's entrypoint. `--port P --log-level L` follow.
   */
  cmd: readonly string[] | string;
  /** The analysis's configuration (sent as JSON to `SetConfiguration`); default `{}`. */
  config?: Record<string, unknown>;
  /** Extra environment for this plugin (on top of this process's). */
  env?: Record<string, string>;
  /** Working directory (default: this process's, as core). */
  cwd?: string;
  /** This plugin's `--log-level`, over the core's (core: `HC_LOG=plugin::<name>=<level>`). */
  logLevel?: HipcheckLogLevel;
}

/**
 * Options of {@link startHipcheckCore}.
 *
 * @example Debug logs of every plugin, shown on stderr
 * ```ts
 * import type { HipcheckCoreOptions } from "@plugwire/plugwire/hipcheck";
 * import { consoleLogSink } from "@plugwire/plugwire/host";
 * import assert from "node:assert/strict";
 *
 * const options: HipcheckCoreOptions = {
 *   plugins: [{ publisher: "dummy", name: "sha256", cmd: "deno run -A examples/hipcheck/sha256.ts" }],
 *   logLevel: "debug", // each plugin gets --log-level debug
 *   logger: consoleLogSink("debug"),
 * };
 * assert.equal(options.plugins.length, 1);
 * ```
 */
export interface HipcheckCoreOptions {
  /** The plugins to run. Publisher/name pairs must be unique. */
  plugins: readonly HipcheckCorePluginSpec[];
  /** Passed to every plugin as `--log-level` (core's default: `error`). */
  logLevel?: HipcheckLogLevel;
  /**
   * Receives the plugins' log records (their stderr JSON lines) and the core's own notes
   * (module `hipcheck-core`). Default: none.
   */
  logger?: LogSink;
  /** Connection retries; the defaults are core's. */
  connect?: HipcheckConnectPolicy;
  /** Extra environment for every plugin. */
  env?: Record<string, string>;
  /** Aborts the start; once started, aborting closes the core. */
  signal?: AbortSignal;
  /** Deadline of each setup call, in milliseconds. @default {30000} */
  setupTimeoutMs?: number;
  /** Chunk budget of messages to plugins, in bytes (tests use small ones). @default {4193280} */
  maxChunkBytes?: number;
  /**
   * How many answers the memo keeps; beyond that the oldest answered ones are forgotten (and
   * asked again when needed). Core keeps every answer for one run; a long-running host (the
   * HTTP gateway) should set a bound. @default {Infinity}
   */
  maxMemoEntries?: number;
}

/**
 * One query endpoint of a running plugin, as its `GetQuerySchemas` listed it.
 *
 * @example Finding a plugin's default endpoint
 * ```ts
 * import type { HipcheckCoreQuery } from "@plugwire/plugwire/hipcheck";
 * import assert from "node:assert/strict";
 *
 * const queries: HipcheckCoreQuery[] = [
 *   { name: "", keySchema: { type: "array" }, outputSchema: { type: "array" } },
 *   { name: "sha256", keySchema: { type: "array" }, outputSchema: { type: "array" } },
 * ];
 * assert.ok(queries.some((q) => q.name === "")); // "" is the default endpoint
 * ```
 */
export interface HipcheckCoreQuery {
  /** The endpoint's name; `""` is the default endpoint. */
  name: string;
  /** The key's JSON Schema, as the plugin sent it. */
  keySchema: unknown;
  /** The output's JSON Schema, as the plugin sent it. */
  outputSchema: unknown;
}

/**
 * A running plugin, as the core set it up.
 *
 * @example The policy an analysis would get without one of its own
 * ```ts
 * import type { HipcheckCorePlugin } from "@plugwire/plugwire/hipcheck";
 * import assert from "node:assert/strict";
 *
 * function policyOf(plugin: HipcheckCorePlugin, fromPolicyFile?: string): string {
 *   const policy = fromPolicyFile ?? plugin.defaultPolicyExpression;
 *   if (!policy) throw new Error(`${plugin.publisher}/${plugin.name} needs a policy`);
 *   return policy;
 * }
 * const files: HipcheckCorePlugin = {
 *   publisher: "plugwire",
 *   name: "files",
 *   pid: 4242,
 *   port: 50052,
 *   queries: [],
 *   defaultPolicyExpression: "(lte $ 100)",
 *   explanation: "the number of files in the repository, not counting .git",
 * };
 * assert.equal(policyOf(files), "(lte $ 100)");
 * assert.throws(() => policyOf({ ...files, defaultPolicyExpression: "" }));
 * ```
 */
export interface HipcheckCorePlugin {
  /** The publisher. */
  publisher: string;
  /** The name. */
  name: string;
  /** The process id. */
  pid: number;
  /** The loopback port it serves on. */
  port: number;
  /** Its endpoints, in the order it listed them (a chunked schema joined). */
  queries: HipcheckCoreQuery[];
  /** Its default policy expression; `""` when it has none. */
  defaultPolicyExpression: string;
  /** Its explanation of the default query; `""` when it has none. */
  explanation: string;
}

/**
 * The answer to a query: the plugin's one output and the concerns it recorded.
 *
 * @example Concerns worth a look
 * ```ts
 * import type { HipcheckQueryResult } from "@plugwire/plugwire/hipcheck";
 * import assert from "node:assert/strict";
 *
 * const result: HipcheckQueryResult = { output: 75, concerns: ["This is a test"] };
 * assert.equal(typeof result.output, "number");
 * assert.deepEqual(result.concerns, ["This is a test"]);
 * ```
 */
export interface HipcheckQueryResult {
  /** The output (a JSON value). */
  output: unknown;
  /** The concerns the plugin recorded while answering (a sub-query's concerns are dropped). */
  concerns: string[];
}

/**
 * A running TypeScript Hipcheck core (see {@link startHipcheckCore}).
 *
 * @example Asking the default query of every plugin about one repository
 * ```ts
 * import type { HipcheckCore, HipcheckQueryResult } from "@plugwire/plugwire/hipcheck";
 * import assert from "node:assert/strict";
 *
 * async function analyse(core: HipcheckCore, target: unknown) {
 *   const results: Record<string, HipcheckQueryResult> = {};
 *   for (const { publisher, name } of core.plugins) {
 *     results[`${publisher}/${name}`] = await core.query(`${publisher}/${name}`, target);
 *   }
 *   return results;
 * }
 * // A stand-in core, to show the shape:
 * const fake: HipcheckCore = {
 *   plugins: [{ publisher: "demo", name: "one", pid: 1, port: 1, queries: [], defaultPolicyExpression: "", explanation: "" }],
 *   query: (_target, _key) => Promise.resolve({ output: 1, concerns: [] }),
 *   close: () => Promise.resolve(),
 *   [Symbol.asyncDispose]: () => Promise.resolve(),
 * };
 * assert.deepEqual(await analyse(fake, {}), { "demo/one": { output: 1, concerns: [] } });
 * ```
 */
export interface HipcheckCore extends AsyncDisposable {
  /** The running plugins, in the order they were given. */
  readonly plugins: readonly HipcheckCorePlugin[];
  /**
   * Runs a query as core runs a top-level analysis: `target` is `publisher/plugin[/query]`
   * (no query: the default endpoint), `key` any JSON value. Sub-queries the plugins make are
   * routed to the other plugins the core runs, through one memo: identical queries (same
   * target, same key up to field order) are answered once, also while in flight. Rejects with
   * a {@link HipcheckCoreError}: `query-failed` (with the plugin's concerns), `query-cycle`,
   * `unknown-plugin`, `unknown-query`, `bad-target`, `bad-reply` or `closed`. Aborting
   * `options.signal` rejects this call only; the query runs on and stays memoised.
   */
  query(
    target: string,
    key: unknown,
    options?: { signal?: AbortSignal },
  ): Promise<HipcheckQueryResult>;
  /**
   * Stops every plugin: half-closes its query stream (its cue to exit, as at the end of a
   * Hipcheck run), gives it `graceMs` (default 2000), then SIGTERM and SIGKILL. Queries still
   * running fail with `closed`. Idempotent.
   */
  close(graceMs?: number): Promise<void>;
}

/** A parsed `publisher/plugin[/query]`. */
interface QueryTarget {
  publisher: string;
  plugin: string;
  query: string;
}

/** What a finished query left: every output (a sub-query uses the last) and the concerns. */
interface Answer {
  outputs: unknown[];
  concerns: string[];
}

/** One entry of the memo: a query in flight or done. */
interface MemoEntry {
  label: string;
  answer: Promise<Answer>;
  /** The memo keys this query currently waits on (its sub-queries in flight). */
  waitsOn: Set<string>;
  /** Answered (only answered entries may be evicted). */
  settled: boolean;
}

const CORE_MODULE = "hipcheck-core";

/** The text of a target, `publisher/plugin/query` (the default query shows as `…/plugin`). */
function targetLabel(t: QueryTarget): string {
  return t.query ? `${t.publisher}/${t.plugin}/${t.query}` : `${t.publisher}/${t.plugin}`;
}

/** Splits `publisher/plugin[/query]`, as the SDKs do. */
export function parseTarget(text: string): QueryTarget {
  const parts = typeof text === "string" ? text.split("/") : [];
  if ((parts.length !== 2 && parts.length !== 3) || !parts[0] || !parts[1]) {
    throw new HipcheckCoreError(
      "bad-target",
      `invalid query target ${JSON.stringify(text)}: expected "publisher/plugin[/query]"`,
    );
  }
  return { publisher: parts[0], plugin: parts[1], query: parts[2] ?? "" };
}

/**
 * The JSON text of a value with object keys sorted at every level, so equal keys give equal
 * memo entries whatever their field order.
 */
export function canonicalJson(value: unknown): string {
  const text = JSON.stringify(value, (_key, v) => {
    if (v === null || typeof v !== "object" || Array.isArray(v)) return v;
    const sorted: Record<string, unknown> = {};
    for (const k of Object.keys(v).sort()) sorted[k] = (v as Record<string, unknown>)[k];
    return sorted;
  });
  if (text === undefined) throw new TypeError(`not a JSON value: ${typeof value}`);
  return text;
}

/**
 * The error text in a failed query's concerns: a structured error concern (what plugwire's SDK
 * adds, see `errorConcern`) gives `kind: message`; otherwise the concerns themselves.
 */
function errorTextOf(concerns: readonly string[]): string {
  for (const concern of concerns) {
    const error = parseErrorConcern(concern);
    if (error) return `${error.kind}: ${error.message}`;
  }
  return concerns.join("; ");
}

/** One query exchange the core runs on a plugin's stream. */
interface Session {
  exchange: QueryExchange;
  memoKey: string;
  label: string;
  resolve(answer: Answer): void;
  reject(err: unknown): void;
  /** A sub-query of this session failed: the session's own failure is that error. */
  subFailure?: unknown;
}

/** A plugin the core runs: its process, its setup answers and its query stream. */
class PluginRunner {
  readonly info: HipcheckCorePlugin;
  readonly label: string;
  readonly #launched: LaunchedPlugin;
  readonly #core: HipcheckCoreHost;
  readonly #outgoing = new AsyncQueue<{ query: Query }>();
  readonly #ids = new OddIds();
  readonly #sessions = new Map<number, Session>();
  readonly #maxChunkBytes: number;
  #closed = false;
  #streamDone: Promise<void> = Promise.resolve();

  constructor(
    launched: LaunchedPlugin,
    info: HipcheckCorePlugin,
    core: HipcheckCoreHost,
    maxChunkBytes: number,
  ) {
    this.#launched = launched;
    this.info = info;
    this.label = `${info.publisher}/${info.name}`;
    this.#core = core;
    this.#maxChunkBytes = maxChunkBytes;
  }

  /** Opens `InitiateQueryProtocol` and starts reading it. */
  openStream(): void {
    const responses = this.#launched.client.initiateQueryProtocol(this.#outgoing);
    this.#streamDone = (async () => {
      let failure: unknown;
      try {
        for await (const response of responses) this.#onChunk(response.query);
      } catch (err) {
        failure = err;
      }
      const unexpected = !this.#closed;
      const err = new HipcheckCoreError(
        "closed",
        `the query stream of ${this.label} ended` +
          (failure ? `: ${toRpcError(failure).message}` : "") +
          (this.#launched.stderrTail.length
            ? `; its last stderr lines:\n  ${this.#launched.stderrTail.join("\n  ")}`
            : ""),
        { plugin: this.label, cause: failure },
      );
      this.#endSessions(err);
      // Core does not respawn a plugin once it runs: its queries fail from now on; say so.
      if (unexpected) this.#note("error", err.message);
    })();
  }

  /** Runs one query of this plugin; the answer's outputs are as the plugin sent them. */
  run(query: string, key: unknown, memoKey: string, label: string): Promise<Answer> {
    if (this.#closed) {
      return Promise.reject(
        new HipcheckCoreError("closed", `${this.label} is closed`, { plugin: this.label }),
      );
    }
    let id = this.#ids.next();
    while (this.#sessions.has(id)) id = this.#ids.next();
    const exchange = new QueryExchange(id, "core", this.#maxChunkBytes);
    let chunks: Query[];
    try {
      chunks = exchange.send({
        kind: "submit",
        publisher: this.info.publisher,
        plugin: this.info.name,
        query,
        keys: [key],
        outputs: [],
        concerns: [],
      });
    } catch (cause) {
      return Promise.reject(
        new HipcheckCoreError("bad-key", `${label}: the key cannot be sent: ${cause}`, {
          plugin: this.label,
          target: label,
          cause,
        }),
      );
    }
    return new Promise<Answer>((resolve, reject) => {
      this.#sessions.set(id, { exchange, memoKey, label, resolve, reject });
      this.#send(chunks);
    });
  }

  #send(chunks: Query[]): void {
    for (const query of chunks) this.#outgoing.push({ query });
  }

  #note(level: LogLevel, message: string, fields: Record<string, unknown> = {}): void {
    this.#core.note(this.label, level, message, fields);
  }

  #onChunk(chunk: Query | undefined): void {
    if (!chunk) return this.#note("warn", "a query-stream message without a query; ignored");
    const routing = routeFromPlugin(chunk, this.#sessions);
    if (routing.action === "ignore") {
      // id 0 is expected (the Python SDK's first message); anything else is worth a warning.
      return this.#note(chunk.id === 0 ? "debug" : "warn", routing.reason, { id: chunk.id });
    }
    const session = this.#sessions.get(chunk.id)!;
    let message: QueryMessage | undefined;
    try {
      message = session.exchange.receive(chunk);
    } catch (cause) {
      this.#sessions.delete(chunk.id);
      session.reject(
        new HipcheckCoreError(
          "bad-reply",
          `${session.label}: ${this.label} broke the query protocol: ${(cause as Error).message}`,
          { plugin: this.label, target: session.label, cause },
        ),
      );
      return;
    }
    if (!message) return; // more chunks to come
    switch (message.kind) {
      case "reply":
        this.#sessions.delete(chunk.id);
        session.resolve({ outputs: message.outputs, concerns: message.concerns });
        return;
      case "error": {
        this.#sessions.delete(chunk.id);
        if (session.subFailure !== undefined) return session.reject(session.subFailure);
        const text = errorTextOf(message.concerns);
        session.reject(
          new HipcheckCoreError(
            "query-failed",
            `${session.label} failed` + (text ? `: ${text}` : " (the plugin gave no reason)"),
            { plugin: this.label, target: session.label, concerns: message.concerns },
          ),
        );
        return;
      }
      case "submit":
        void this.#answerSubQuery(session, message);
        return;
    }
  }

  /** Answers a plugin's sub-query, key by key through the memo, on the session's id. */
  async #answerSubQuery(session: Session, message: QueryMessage): Promise<void> {
    const target: QueryTarget = {
      publisher: message.publisher,
      plugin: message.plugin,
      query: message.query,
    };
    let outputs: unknown[] | undefined;
    try {
      outputs = await Promise.all(
        message.keys.map(async (key) => {
          const { outputs } = await this.#core.resolve(target, key, session.memoKey);
          if (outputs.length === 0) {
            throw new HipcheckCoreError(
              "bad-reply",
              `${targetLabel(target)} answered a sub-query of ${session.label} without output`,
              { target: targetLabel(target) },
            );
          }
          return outputs[outputs.length - 1]; // core pops the last one
        }),
      );
    } catch (err) {
      // The first failure is the cause; a handler that carries on may fail more sub-queries.
      session.subFailure ??= err;
    }
    if (this.#sessions.get(session.exchange.id) !== session) return; // ended meanwhile
    try {
      this.#send(session.exchange.send(
        outputs
          ? {
            kind: "reply",
            ...{ publisher: target.publisher, plugin: target.plugin, query: target.query },
            keys: [],
            outputs,
            concerns: [],
          }
          : {
            kind: "error",
            ...{ publisher: target.publisher, plugin: target.plugin, query: target.query },
            keys: [],
            outputs: [],
            concerns: [
              errorConcern("sub-query-failed", String((session.subFailure as Error)?.message)),
            ],
          },
      ));
    } catch (cause) {
      this.#sessions.delete(session.exchange.id);
      session.reject(
        cause instanceof HipcheckCoreError ? cause : new HipcheckCoreError(
          "bad-reply",
          `${session.label}: the answer to its sub-query cannot be sent: ${
            (cause as Error).message
          }`,
          { plugin: this.label, target: session.label, cause },
        ),
      );
    }
  }

  #endSessions(err: HipcheckCoreError): void {
    this.#closed = true;
    for (const session of this.#sessions.values()) session.reject(err);
    this.#sessions.clear();
  }

  /** Half-closes the stream (the plugin's cue to exit), then stops the process. */
  async close(graceMs: number): Promise<void> {
    this.#closed = true;
    this.#outgoing.end();
    // The plugin answers the half-close by ending its side of the stream, then exits.
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      this.#streamDone,
      new Promise((resolve) => (timer = setTimeout(resolve, graceMs))),
    ]);
    clearTimeout(timer);
    await this.#launched.kill(graceMs);
    await this.#streamDone;
  }

  /** Stops the process without the stream's goodbye (setup failed). */
  async kill(): Promise<void> {
    this.#closed = true;
    this.#outgoing.end();
    await this.#launched.kill(0);
  }
}

/**
 * The core behind {@link startHipcheckCore}: {@link HipcheckCoreHost.start} runs the plugins;
 * query them with {@link HipcheckCoreHost.query}; close it (or `await using`) to stop them.
 */
export class HipcheckCoreHost implements HipcheckCore {
  readonly #runners = new Map<string, PluginRunner>();
  readonly #memo = new Map<string, MemoEntry>();
  readonly #logger: LogSink;
  readonly #maxMemoEntries: number;
  #closing: Promise<void> | undefined;
  #unlinkSignal = () => {};

  private constructor(logger: LogSink, maxMemoEntries: number) {
    this.#logger = logger;
    this.#maxMemoEntries = maxMemoEntries;
  }

  /**
   * Starts every plugin and sets it up in core's order; resolves once every query stream is
   * open. Any failure stops everything started and rejects with a {@link HipcheckCoreError}
   * (`config`, `setup-failed`) or a `PluginError` (the process could not be started or
   * reached). When several plugins fail, the first in `plugins` order is thrown.
   */
  static async start(options: HipcheckCoreOptions): Promise<HipcheckCoreHost> {
    const core = new HipcheckCoreHost(
      options.logger ?? (() => {}),
      Math.max(1, options.maxMemoEntries ?? Infinity),
    );
    const seen = new Set<string>();
    for (const spec of options.plugins) {
      const label = `${spec.publisher}/${spec.name}`;
      if (
        !spec.publisher || !spec.name || spec.publisher.includes("/") || spec.name.includes("/")
      ) {
        throw new HipcheckCoreError("bad-target", `invalid plugin name ${JSON.stringify(label)}`);
      }
      if (seen.has(label)) {
        throw new HipcheckCoreError("setup-failed", `plugin ${label} is listed twice`);
      }
      seen.add(label);
    }
    const results = await Promise.allSettled(
      options.plugins.map((spec) => core.#startOne(spec, options)),
    );
    const failed = results.find((r) => r.status === "rejected");
    if (failed) {
      await Promise.all(
        results.map((r) => r.status === "fulfilled" ? r.value.kill() : undefined),
      );
      throw (failed as PromiseRejectedResult).reason;
    }
    for (const r of results) {
      const runner = (r as PromiseFulfilledResult<PluginRunner>).value;
      core.#runners.set(runner.label, runner);
      runner.openStream();
    }
    if (options.signal) {
      const onAbort = () => void core.close();
      options.signal.addEventListener("abort", onAbort, { once: true });
      core.#unlinkSignal = () => options.signal?.removeEventListener("abort", onAbort);
    }
    return core;
  }

  async #startOne(
    spec: HipcheckCorePluginSpec,
    options: HipcheckCoreOptions,
  ): Promise<PluginRunner> {
    const label = `${spec.publisher}/${spec.name}`;
    const cmd = typeof spec.cmd === "string" ? spec.cmd.split(/\s+/).filter(Boolean) : spec.cmd;
    const launched = await launchHipcheckPlugin({
      cmd,
      name: label,
      logLevel: spec.logLevel ?? options.logLevel ?? "error",
      env: { ...options.env, ...spec.env },
      cwd: spec.cwd,
      logger: this.#logger,
      connect: options.connect,
      signal: options.signal,
    });
    try {
      const info = await setUp(launched, spec, label, {
        timeoutMs: options.setupTimeoutMs ?? 30_000,
        signal: options.signal,
      });
      return new PluginRunner(launched, info, this, options.maxChunkBytes ?? MAX_CHUNK_BYTES);
    } catch (err) {
      await launched.kill(0);
      throw err;
    }
  }

  /** The running plugins, in the order they were given. */
  get plugins(): HipcheckCorePlugin[] {
    return [...this.#runners.values()].map((r) => r.info);
  }

  /**
   * Runs a query as core runs a top-level analysis: `target` is `publisher/plugin[/query]`
   * (no query: the default endpoint), `key` any JSON value. The answer must have exactly one
   * output. Identical queries (same target, same key up to field order) are answered once.
   * Aborting `options.signal` rejects this call with the signal's reason; the query itself runs
   * on (another caller may share it) and its answer stays in the memo.
   */
  async query(
    target: string,
    key: unknown,
    options: { signal?: AbortSignal } = {},
  ): Promise<HipcheckQueryResult> {
    const parsed = parseTarget(target);
    options.signal?.throwIfAborted();
    const answer = this.resolve(parsed, key, undefined);
    const { outputs, concerns } = options.signal
      ? await untilAborted(answer, options.signal)
      : await answer;
    if (outputs.length !== 1) {
      throw new HipcheckCoreError(
        "bad-reply",
        `${targetLabel(parsed)} answered with ${outputs.length} outputs; a query needs exactly one`,
        { target: targetLabel(parsed) },
      );
    }
    return { output: outputs[0], concerns: [...concerns] };
  }

  /**
   * Answers one query through the memo. `waiter` is the memo key of the query that asks (for a
   * sub-query), whose wait is recorded so that a cycle is detected instead of awaited.
   * @internal
   */
  resolve(target: QueryTarget, key: unknown, waiter: string | undefined): Promise<Answer> {
    const label = targetLabel(target);
    if (this.#closing) {
      return Promise.reject(new HipcheckCoreError("closed", "the Hipcheck core is closed"));
    }
    const runner = this.#runners.get(`${target.publisher}/${target.plugin}`);
    if (!runner) {
      return Promise.reject(
        new HipcheckCoreError(
          "unknown-plugin",
          `No such plugin ${target.publisher}/${target.plugin}`,
          { target: label },
        ),
      );
    }
    if (!runner.info.queries.some((q) => q.name === target.query)) {
      return Promise.reject(
        new HipcheckCoreError(
          "unknown-query",
          `${runner.label} has no query ${JSON.stringify(target.query)}; it has ` +
            runner.info.queries.map((q) => JSON.stringify(q.name)).join(", "),
          { plugin: runner.label, target: label },
        ),
      );
    }
    let keyText: string;
    try {
      keyText = canonicalJson(key);
    } catch (cause) {
      return Promise.reject(
        new HipcheckCoreError("bad-key", `the key of ${label} is not a JSON value: ${cause}`, {
          target: label,
          cause,
        }),
      );
    }
    const memoKey = JSON.stringify([target.publisher, target.plugin, target.query, keyText]);
    const entryLabel = `${label} ${keyText.length > 80 ? keyText.slice(0, 77) + "..." : keyText}`;

    if (waiter !== undefined) {
      const cycle = this.#pathTo(memoKey, waiter);
      if (cycle) {
        const names = [waiter, ...cycle].map((k) => this.#memo.get(k)?.label ?? entryLabel);
        return Promise.reject(
          new HipcheckCoreError(
            "query-cycle",
            `query cycle: ${names.join(" -> ")}`,
            { target: label, cycle: names },
          ),
        );
      }
    }

    let entry = this.#memo.get(memoKey);
    if (!entry) {
      const created: MemoEntry = {
        label: entryLabel,
        answer: undefined!,
        waitsOn: new Set(),
        settled: false,
      };
      created.answer = runner.run(target.query, key, memoKey, entryLabel);
      created.answer.then(
        () => (created.settled = true),
        // A failure is not remembered: the next identical query tries again.
        () => {
          if (this.#memo.get(memoKey) === created) this.#memo.delete(memoKey);
        },
      );
      this.#memo.set(memoKey, created);
      this.#evict();
      entry = created;
    }
    if (waiter === undefined) return entry.answer;
    const waiting = this.#memo.get(waiter);
    waiting?.waitsOn.add(memoKey);
    return entry.answer.finally(() => waiting?.waitsOn.delete(memoKey));
  }

  /** Forgets the oldest answered entries beyond `maxMemoEntries` (Map order is insertion order). */
  #evict(): void {
    if (this.#memo.size <= this.#maxMemoEntries) return;
    for (const [key, entry] of this.#memo) {
      if (this.#memo.size <= this.#maxMemoEntries) break;
      if (entry.settled) this.#memo.delete(key);
    }
  }

  /**
   * The chain of memo keys from `from` to `to` through the queries each waits on, or undefined
   * when `to` is not reachable (`from === to` is a cycle of one).
   */
  #pathTo(from: string, to: string): string[] | undefined {
    const seen = new Set<string>();
    const walk = (at: string): string[] | undefined => {
      if (at === to) return [at];
      if (seen.has(at)) return undefined;
      seen.add(at);
      for (const next of this.#memo.get(at)?.waitsOn ?? []) {
        const rest = walk(next);
        if (rest) return [at, ...rest];
      }
      return undefined;
    };
    return walk(from);
  }

  /** Logs a note of the core's own about a plugin. @internal */
  note(plugin: string, level: LogLevel, message: string, fields: Record<string, unknown>): void {
    try {
      this.#logger({ plugin, module: CORE_MODULE, level, message, fields, raw: "" });
    } catch {
      // A faulty sink must not break the core.
    }
  }

  /**
   * Stops every plugin: half-closes its query stream (its cue to exit, as core's end of run),
   * gives it `graceMs` to exit, then SIGTERM and SIGKILL. Queries still running fail with
   * `closed`. Idempotent.
   */
  close(graceMs = 2000): Promise<void> {
    this.#closing ??= (async () => {
      this.#unlinkSignal();
      await Promise.all([...this.#runners.values()].map((r) => r.close(graceMs)));
      this.#memo.clear();
    })();
    return this.#closing;
  }

  /** Closes the core (for `await using`). */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

/**
 * Starts a TypeScript Hipcheck core: every plugin is spawned as Hipcheck core 3.15 spawns it
 * (`<cmd…> --port P --log-level L`, plain gRPC on 127.0.0.1, connect with backoff, respawn on
 * a new port) and set up in core's order (`GetQuerySchemas`, `SetConfiguration`,
 * `GetDefaultPolicyExpression`, `ExplainDefaultQuery`, then the query stream), all in
 * parallel. Python, Rust and TypeScript Hipcheck plugins work alike.
 *
 * Rejects, leaving no process behind, with a {@link HipcheckCoreError} (`config` when a plugin
 * refuses its configuration: `status` and `detail` say how; `setup-failed` for a failed setup
 * call) or a `PluginError` when a plugin cannot be started or reached.
 *
 * @param options The plugins, their log level and logger, connection retries.
 * @returns The running core; close it (or `await using`) to stop the plugins.
 *
 * @example The TypeScript `dummy/sha256` example, queried as core would
 * ```ts
 * import { startHipcheckCore } from "@plugwire/plugwire/hipcheck";
 * import assert from "node:assert/strict";
 *
 * await using core = await startHipcheckCore({
 *   plugins: [{
 *     publisher: "dummy",
 *     name: "sha256",
 *     cmd: [Deno.execPath(), "run", "-A", "examples/hipcheck/sha256.ts"],
 *   }],
 * });
 * assert.deepEqual(core.plugins[0].queries.map((q) => q.name).sort(), ["", "sha256"]);
 * const { output, concerns } = await core.query("dummy/sha256/sha256", [1]);
 * assert.deepEqual((output as number[]).slice(0, 4), [75, 245, 18, 47]);
 * assert.deepEqual(concerns, []);
 * ```
 */
export function startHipcheckCore(options: HipcheckCoreOptions): Promise<HipcheckCore> {
  return HipcheckCoreHost.start(options);
}

/** `promise`, or the signal's reason once it is aborted. */
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}

/** The four setup calls, in core's order. */
async function setUp(
  launched: LaunchedPlugin,
  spec: HipcheckCorePluginSpec,
  label: string,
  call: { timeoutMs: number; signal?: AbortSignal },
): Promise<HipcheckCorePlugin> {
  const client = launched.client;
  const step = async <T>(name: string, call: () => Promise<T>): Promise<T> => {
    try {
      return await call();
    } catch (cause) {
      if (cause instanceof HipcheckCoreError) throw cause;
      throw new HipcheckCoreError(
        "setup-failed",
        `Plugin '${label}': ${name} failed: ${toRpcError(cause).message}`,
        { plugin: label, cause },
      );
    }
  };

  // 1. Schemas; a schema too big for one message comes in several with the same name.
  const texts = new Map<string, { key: string; output: string }>();
  await step("GetQuerySchemas", async () => {
    for await (
      const r of client.getQuerySchemas({ empty: {} }, call)
    ) {
      const t = texts.get(r.queryName) ?? { key: "", output: "" };
      t.key += r.keySchema;
      t.output += r.outputSchema;
      texts.set(r.queryName, t);
    }
  });
  const queries: HipcheckCoreQuery[] = [];
  for (const [name, t] of texts) {
    try {
      queries.push({ name, keySchema: JSON.parse(t.key), outputSchema: JSON.parse(t.output) });
    } catch (cause) {
      throw new HipcheckCoreError(
        "setup-failed",
        `Plugin '${label}': the schemas of query ${JSON.stringify(name)} are not JSON`,
        { plugin: label, cause },
      );
    }
  }

  // 2. Configuration: anything but NONE is fatal, worded as core words it.
  const config = await step(
    "SetConfiguration",
    () => client.setConfiguration({ configuration: JSON.stringify(spec.config ?? {}) }, call),
  );
  if (config.status !== ConfigurationStatus.NONE) {
    const options: HipcheckCoreErrorOptions = {
      plugin: label,
      status: config.status,
      detail: config.message,
    };
    const generic = CONFIG_STATUS_TEXT[config.status] ?? `configuration status ${config.status}`;
    throw new HipcheckCoreError(
      "config",
      `Plugin '${label}': ${generic}${config.message ? `: ${config.message}` : ""}`,
      options,
    );
  }

  // 3, 4. Default policy expression and explanation ("" for none).
  const policy = await step(
    "GetDefaultPolicyExpression",
    () => client.getDefaultPolicyExpression({ empty: {} }, call),
  );
  const explain = await step(
    "ExplainDefaultQuery",
    () => client.explainDefaultQuery({ empty: {} }, call),
  );

  return {
    publisher: spec.publisher,
    name: spec.name,
    pid: launched.pid,
    port: launched.port,
    queries,
    defaultPolicyExpression: policy.policyExpression,
    explanation: explain.explanation,
  };
}
