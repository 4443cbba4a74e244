/**
 * One query session on the plugin side: core's SUBMIT on a new id starts it; the handler runs
 * with an {@link Engine} whose sub-queries travel on the same id, one at a time; the session
 * ends with the REPLY, or UNSPECIFIED with the error as a concern and an ERROR log line.
 *
 * @module
 */

import type { Query } from "../../gen/hipcheck/v1/hipcheck_pb.ts";
import { HipcheckError } from "./errors.ts";
import type { HipcheckLogger } from "./log.ts";
import { compileSchema, formatIssues, type JsonValue, type Schema } from "./schema.ts";
import { type Engine, type HipcheckPlugin, runEndpoint } from "./plugin.ts";
import {
  batchSizes,
  errorConcern,
  MAX_CHUNK_BYTES,
  QueryExchange,
  type QueryMessage,
  QueryProtocolError,
  toJsonText,
} from "./query_state_machine.ts";
import { formatTarget, parseTarget } from "./target.ts";

/** What a session needs from the server that runs it. */
export interface SessionHost {
  readonly plugin: HipcheckPlugin;
  readonly config: unknown;
  readonly log: HipcheckLogger;
  /** Writes wire messages to core, in order. */
  send(chunks: Query[]): void;
  /** The session is over (replied or failed). */
  done(id: number): void;
  /** The chunk budget (tests use small ones). */
  readonly maxBytes?: number;
}

/** Validates sub-query answers with a caller's schema; compiled once per schema object. */
const answerSchemas = new WeakMap<object, ReturnType<typeof compileSchema>>();

/** Checks sub-query answers against `schema`; throws `sub-query-failed` naming the path. */
export async function checkAnswers(
  target: string,
  answers: unknown[],
  schema: Schema | undefined,
): Promise<unknown[]> {
  if (schema === undefined) return answers;
  let compiled = typeof schema === "object" ? answerSchemas.get(schema) : undefined;
  if (!compiled) {
    compiled = compileSchema(schema, "output", `answer of ${target}`);
    if (typeof schema === "object") answerSchemas.set(schema, compiled);
  }
  const out: unknown[] = [];
  for (const [i, answer] of answers.entries()) {
    const result = await compiled.validate(answer);
    if (result.issues) {
      throw new HipcheckError(
        "sub-query-failed",
        `answer ${i} of ${target} does not match its schema: ${formatIssues(result.issues)}`,
        { issues: result.issues },
      );
    }
    out.push(result.value);
  }
  return out;
}

/** A query session, and the engine its handler gets. */
export class PluginSession implements Engine<unknown> {
  readonly #host: SessionHost;
  readonly #exchange: QueryExchange;
  readonly #concerns: string[] = [];
  #queryName = "";
  /** Sub-queries of this session, one after another. */
  #chain: Promise<unknown> = Promise.resolve();
  #waiting: { resolve(m: QueryMessage): void; reject(e: Error): void } | undefined;
  #closed = false;

  constructor(id: number, host: SessionHost) {
    this.#host = host;
    this.#exchange = new QueryExchange(id, "plugin", host.maxBytes ?? MAX_CHUNK_BYTES);
  }

  get config(): unknown {
    return this.#host.config;
  }

  get log(): HipcheckLogger {
    return this.#host.log;
  }

  /** A chunk from core for this session. */
  receive(chunk: Query): void {
    let message: QueryMessage | undefined;
    try {
      message = this.#exchange.receive(chunk);
    } catch (err) {
      if (err instanceof QueryProtocolError && err.code === "unexpected-message") {
        // Out of turn on a running id (a second SUBMIT, a REPLY nobody asked for): stray, like a
        // message on an unknown id. The query goes on.
        this.#host.log.warn(`${err.message}; ignored`, { id: chunk.id });
        return;
      }
      const error = err instanceof QueryProtocolError
        ? new HipcheckError(
          err.code === "invalid-json-key" ? "invalid-key" : "protocol",
          err.message,
          { cause: err },
        )
        : err as Error;
      if (this.#waiting) this.#settle((w) => w.reject(error));
      else this.#fail(error);
      return;
    }
    if (message === undefined) return;
    if (message.kind === "submit") void this.#run(message);
    else this.#settle((w) => w.resolve(message));
  }

  /** The stream closed: a handler waiting for an answer gets an error. */
  close(): void {
    this.#closed = true;
    this.#settle((w) => w.reject(new HipcheckError("protocol", "the query stream closed")));
  }

  #settle(fn: (waiting: { resolve(m: QueryMessage): void; reject(e: Error): void }) => void) {
    const waiting = this.#waiting;
    this.#waiting = undefined;
    if (waiting) fn(waiting);
  }

  async #run(message: QueryMessage): Promise<void> {
    this.#queryName = message.query;
    const { plugin } = this.#host;
    try {
      if (message.keys.length === 0) {
        throw new HipcheckError("invalid-key", "the query has no key");
      }
      // Core sends one key; several (a plugwire core's batch) are answered one by one.
      const outputs: unknown[] = [];
      for (const key of message.keys) {
        outputs.push(await runEndpoint(plugin, message.query, key, this));
      }
      this.#send({
        kind: "reply",
        publisher: plugin.publisher,
        plugin: plugin.name,
        query: message.query,
        keys: [],
        outputs,
        concerns: this.#concerns,
      });
      this.#host.log.debug("query answered", { id: this.#exchange.id, query: message.query });
      this.#finish();
    } catch (err) {
      this.#fail(err);
    }
  }

  #send(message: Omit<QueryMessage, "id">): void {
    this.#host.send(this.#exchange.send(message));
  }

  #finish(): void {
    if (!this.#closed) this.#host.done(this.#exchange.id);
    this.#closed = true;
    // A sub-query still waiting (the handler settled without awaiting it) gets no answer now.
    this.#settle((w) => w.reject(new HipcheckError("protocol", "the query is over")));
  }

  /** Replies UNSPECIFIED with the concerns so far and the error, and logs the error. */
  #fail(err: unknown): void {
    if (this.#exchange.state === "done") return;
    const error = err instanceof HipcheckError
      ? err
      : new HipcheckError("handler", err instanceof Error ? err.message : String(err), {
        cause: err,
      });
    const { plugin, log } = this.#host;
    log.error(error.message, { id: this.#exchange.id, query: this.#queryName, kind: error.code });
    try {
      this.#send({
        kind: "error",
        publisher: plugin.publisher,
        plugin: plugin.name,
        query: "",
        keys: [],
        outputs: [],
        concerns: [...this.#concerns, errorConcern(errorKind(error), error.message)],
      });
    } catch (sendErr) {
      log.error(`could not send the error reply: ${(sendErr as Error).message}`);
    }
    this.#finish();
  }

  recordConcern(concern: string): void {
    this.#concerns.push(String(concern));
  }

  query(target: string, key: unknown, output?: Schema): Promise<never> {
    return this.batchQuery(target, [key], output).then((answers) => answers[0] as never);
  }

  batchQuery(target: string, keys: readonly unknown[], output?: Schema): Promise<never> {
    const run = this.#chain.then(() => this.#batch(target, keys, output));
    this.#chain = run.catch(() => {});
    return run as Promise<never>;
  }

  async #batch(target: string, keys: readonly unknown[], schema?: Schema): Promise<unknown[]> {
    const parsed = parseTarget(target);
    const label = formatTarget(parsed);
    if (this.#closed) throw new HipcheckError("protocol", `cannot query ${label}: session over`);
    let texts: string[];
    try {
      texts = keys.map((k, i) => toJsonText(k, `key ${i} for ${label}`));
    } catch (err) {
      throw new HipcheckError("sub-query-failed", (err as Error).message, { cause: err });
    }
    const answers: JsonValue[] = [];
    let start = 0;
    for (const size of batchSizes(texts, this.#host.maxBytes ?? MAX_CHUNK_BYTES)) {
      const group = keys.slice(start, start + size);
      start += size;
      const answered = new Promise<QueryMessage>((resolve, reject) => {
        this.#waiting = { resolve, reject };
      });
      try {
        this.#send({ kind: "submit", ...parsed, keys: [...group], outputs: [], concerns: [] });
      } catch (err) {
        this.#waiting = undefined;
        throw new HipcheckError("protocol", (err as Error).message, { cause: err });
      }
      const reply = await answered;
      if (reply.kind === "error") {
        const reason = reply.concerns.length ? `: ${reply.concerns.join("; ")}` : "";
        throw new HipcheckError("sub-query-failed", `query to ${label} failed${reason}`);
      }
      if (reply.outputs.length !== group.length) {
        throw new HipcheckError(
          "sub-query-failed",
          `query to ${label} sent ${group.length} key(s) and got ${reply.outputs.length} answer(s)`,
        );
      }
      answers.push(...reply.outputs as JsonValue[]);
    }
    return await checkAnswers(label, answers, schema);
  }
}

function errorKind(error: HipcheckError) {
  return error.code === "invalid-definition" || error.code === "invalid-arguments"
    ? "handler"
    : error.code;
}
