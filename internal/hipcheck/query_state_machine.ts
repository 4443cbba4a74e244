/**
 * Hipcheck's query protocol, the part both ends share: one query exchange's states, cutting a
 * message into chunks and putting chunks back together, the rfd9 compatibility placeholders, the
 * JSON text of keys and outputs, and which ids a side must ignore. Pure code over the generated
 * `hipcheck.v1.Query` message: the plugin side (internal/hipcheck/session.ts and
 * plugin_server.ts) and the core (internal/hipcheck/core.ts) both drive their streams through it.
 *
 * Every rule here is a fact of Hipcheck core 3.15 and hipcheck-common 0.5.0 (the project's
 * shared docs, hipcheck.md §1.5 and §1.8). Where Hipcheck's own code has a bug, this file says
 * so and does the correct thing in a way the real core still accepts:
 * - split tracking is per chunk (hipcheck-common recomputes it from the first chunk);
 * - a receiver drops `""` placeholders before parsing, so chunked batches decode;
 * - the compatibility join is per field (core joins keys and outputs together).
 *
 * One exchange, one id, turns in this order (C = core, P = plugin):
 *
 * ```text
 *   C: SUBMIT (one key)       "core-submitting" → "plugin-working"
 *   P: SUBMIT (sub-query)     "plugin-working"  → "core-answering"     ┐ any number of times,
 *   C: REPLY (one per key)    "core-answering"  → "plugin-working"     ┘ one outstanding
 *   P: REPLY (one output)     "plugin-working"  → "done"
 *   P: UNSPECIFIED (failed)   any state but "done" → "done"
 *   C: UNSPECIFIED            "core-answering" → "plugin-working" (the sub-query failed)
 * ```
 *
 * The whole messages, unchunked, as they look on the wire (`null` and `""` are placeholders):
 *
 * ```text
 *   C→P query     {id, SUBMIT_COMPLETE, plugin's pub/name, query|"", key:[json], output:["null"]}
 *   P→C sub-query {same id, SUBMIT_COMPLETE, TARGET's pub/name/query, key:[json…], output:["null"]}
 *   C→P answers   {same id, REPLY_COMPLETE, TARGET's pub/name/query, key:["null"], output:[json…]}
 *   P→C reply     {id, REPLY_COMPLETE, own pub/name, query as received, key:["null"],
 *                  output:[json], concern:[…]}
 *   P→C failure   {id, UNSPECIFIED, own pub/name, query:"", concern:[…, errorConcern(…)]}
 * ```
 *
 * Each SUBMIT or REPLY may travel as several chunks (`*_IN_PROGRESS` … `*_COMPLETE`, see
 * {@link chunkQuery}); an UNSPECIFIED message is never chunked. Ids: core numbers its queries
 * 1, 3, 5… per plugin ({@link OddIds}); id 0 (the Python SDK's header-flushing message) and ids
 * with no running exchange are ignored with a log line ({@link routeFromCore},
 * {@link routeFromPlugin}), never fatal.
 *
 * @module
 */

import { create } from "@bufbuild/protobuf";
import { type Query, QuerySchema, QueryState } from "../../gen/hipcheck/v1/hipcheck_pb.ts";

/**
 * The byte budget of key + output + concern text in one message: 4 MiB (the gRPC default
 * maximum of tonic and grpc-python) minus 1 KiB for the rest of the message.
 */
export const MAX_CHUNK_BYTES = 4 * 1024 * 1024 - 1024;

/** What goes wrong in the query protocol; `code` says which rule was broken. */
export class QueryProtocolError extends Error {
  /** Which rule was broken. */
  readonly code: QueryProtocolErrorCode;

  /**
   * @param code Which rule was broken.
   * @param message What happened, for a log line.
   */
  constructor(code: QueryProtocolErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "QueryProtocolError";
    this.code = code;
  }
}

/**
 * - `unchunkable`: a message cannot be cut within the byte budget (a character bigger than it),
 *   or an UNSPECIFIED message was given to the chunker.
 * - `mixed-chunks`: a chunk of a SUBMIT arrived while a REPLY was being assembled, or back.
 * - `bad-split`: a chunk says its last element continues, and the next chunk has nothing there.
 * - `incomplete`: an `*_IN_PROGRESS` chunk was decoded as a whole message.
 * - `invalid-json-key` / `invalid-json-output`: a key or output is not JSON text.
 * - `not-json`: a value to send has no JSON text (undefined, a function, a bigint, a cycle).
 * - `unexpected-message`: a message that is not allowed in the exchange's current state.
 */
export type QueryProtocolErrorCode =
  | "unchunkable"
  | "mixed-chunks"
  | "bad-split"
  | "incomplete"
  | "invalid-json-key"
  | "invalid-json-output"
  | "not-json"
  | "unexpected-message";

/** What a whole (de-chunked) message of an exchange is. */
export type QueryMessageKind = "submit" | "reply" | "error";

/**
 * One whole message of an exchange, with keys and outputs as JSON values.
 * In a `submit` only `keys` mean something (its `outputs` hold the `null` placeholder); in a
 * `reply` only `outputs` (its `keys` hold the `null` placeholder); an `error` carries concerns.
 */
export interface QueryMessage {
  /** The exchange's id. */
  id: number;
  /** SUBMIT_COMPLETE, REPLY_COMPLETE or UNSPECIFIED. */
  kind: QueryMessageKind;
  /** In a submit, the target's publisher; in a reply, the answering plugin's. */
  publisher: string;
  /** In a submit, the target plugin; in a reply, the answering plugin. */
  plugin: string;
  /** The endpoint; `""` is the default endpoint. */
  query: string;
  /** Keys, one JSON value each. */
  keys: unknown[];
  /** Outputs, one JSON value each (one per key). */
  outputs: unknown[];
  /** Free-text concerns. */
  concerns: string[];
}

// ---------------------------------------------------------------------------------------------
// JSON text of keys and outputs

/**
 * The compact JSON text of a value (what serde_json writes), or a `not-json` error for values
 * JSON cannot carry.
 */
export function toJsonText(value: unknown, what = "value"): string {
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch (err) {
    throw new QueryProtocolError("not-json", `${what} is not JSON: ${(err as Error).message}`, {
      cause: err,
    });
  }
  if (text === undefined) {
    throw new QueryProtocolError("not-json", `${what} is not JSON (${typeof value})`);
  }
  return text;
}

/**
 * Parses the `key` or `output` texts of a whole message. `""` elements are rfd9 placeholders of
 * later chunks and are dropped (a JSON document is never empty). If an element still does not
 * parse, the field is joined into one text and parsed as one value: the compatibility path for
 * peers that cut a value without marking the split. Per field, not both fields at once as core.
 */
function parseJsonField(texts: string[], code: "invalid-json-key" | "invalid-json-output") {
  const elements = texts.filter((t) => t !== "");
  try {
    return elements.map((t) => JSON.parse(t));
  } catch (first) {
    try {
      return [JSON.parse(texts.join(""))];
    } catch {
      const field = code === "invalid-json-key" ? "key" : "output";
      throw new QueryProtocolError(
        code,
        `invalid JSON in query ${field}: ${(first as Error).message}`,
        { cause: first },
      );
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Whole messages ⇄ wire messages

/**
 * The wire messages of one whole message: keys and outputs as JSON text, cut into chunks and
 * given the rfd9 placeholders exactly as hipcheck-common does. An error is one UNSPECIFIED
 * message with the concerns, never chunked and without placeholders, as Hipcheck's SDKs send it.
 *
 * @param maxBytes The chunk budget (tests use small ones).
 */
export function encodeQuery(message: QueryMessage, maxBytes = MAX_CHUNK_BYTES): Query[] {
  const base = {
    id: message.id,
    publisherName: message.publisher,
    pluginName: message.plugin,
    queryName: message.query,
  };
  if (message.kind === "error") {
    return [
      create(QuerySchema, { ...base, state: QueryState.UNSPECIFIED, concern: message.concerns }),
    ];
  }
  const whole = create(QuerySchema, {
    ...base,
    state: message.kind === "submit" ? QueryState.SUBMIT_COMPLETE : QueryState.REPLY_COMPLETE,
    key: message.keys.map((k, i) => toJsonText(k, `key ${i}`)),
    output: message.outputs.map((o, i) => toJsonText(o, `output ${i}`)),
    concern: message.concerns,
  });
  return chunkQuery(whole, maxBytes);
}

/**
 * The whole message of a complete wire message (one from {@link ChunkAssembler.push}, or a
 * single `*_COMPLETE` / UNSPECIFIED message). Placeholders are tolerated; see the module notes.
 */
export function decodeQuery(query: Query): QueryMessage {
  const head = {
    id: query.id,
    publisher: query.publisherName,
    plugin: query.pluginName,
    query: query.queryName,
    concerns: [...query.concern],
  };
  switch (query.state) {
    case QueryState.SUBMIT_COMPLETE:
    case QueryState.REPLY_COMPLETE:
      return {
        ...head,
        kind: query.state === QueryState.SUBMIT_COMPLETE ? "submit" : "reply",
        keys: parseJsonField(query.key, "invalid-json-key"),
        outputs: parseJsonField(query.output, "invalid-json-output"),
      };
    case QueryState.SUBMIT_IN_PROGRESS:
    case QueryState.REPLY_IN_PROGRESS:
      throw new QueryProtocolError(
        "incomplete",
        `message ${query.id} is a chunk (${QueryState[query.state]}), not a whole message`,
      );
    default:
      // UNSPECIFIED, or a state number this version does not know: both mean failure.
      return { ...head, kind: "error", keys: [], outputs: [] };
  }
}

// ---------------------------------------------------------------------------------------------
// Chunking (hipcheck-common chunk.rs, rewritten)

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The elements of one field still to be sent; the head may be a remainder in bytes. */
class PendingField {
  #items: string[];
  #next = 0;
  #headBytes: Uint8Array | undefined;

  constructor(items: string[]) {
    this.#items = items;
  }

  get empty(): boolean {
    return this.#headBytes === undefined && this.#next >= this.#items.length;
  }

  /**
   * Moves elements into `sink` while they fit in `budget.remaining` bytes. When one does not
   * fit, as much of it as ends on a UTF-8 character boundary goes, and the result is `true`
   * (the chunk is split and ends here). When not even one character fits, nothing moves.
   */
  drainInto(sink: string[], budget: { remaining: number; progressed: boolean }): boolean {
    while (!this.empty) {
      let bytes = this.#headBytes;
      if (bytes === undefined) {
        const text = this.#items[this.#next];
        // A UTF-16 unit is at most 3 UTF-8 bytes: most elements fit without being encoded.
        if (text.length * 3 <= budget.remaining) {
          sink.push(text);
          budget.remaining -= encoder.encode(text).length;
          budget.progressed = true;
          this.#next++;
          continue;
        }
        bytes = encoder.encode(text);
        this.#next++;
        this.#headBytes = bytes;
      }
      if (bytes.length <= budget.remaining) {
        sink.push(decoder.decode(bytes));
        budget.remaining -= bytes.length;
        budget.progressed = true;
        this.#headBytes = undefined;
        continue;
      }
      let cut = budget.remaining;
      while (cut > 0 && (bytes[cut] & 0xc0) === 0x80) cut--; // back to a character's first byte
      if (cut === 0) return false;
      sink.push(decoder.decode(bytes.subarray(0, cut)));
      budget.remaining -= cut;
      budget.progressed = true;
      this.#headBytes = bytes.subarray(cut);
      return true;
    }
    return false;
  }
}

/**
 * Cuts a whole SUBMIT or REPLY into the messages that carry it, as hipcheck-common 0.5.0 does:
 * - fields drain in the order key, output, concern, within `maxBytes` of text per message;
 * - an element that does not fit is cut at a UTF-8 character boundary, the message gets
 *   `split: true` and ends there, and the rest opens the same field of the next message;
 * - all but the last message are `*_IN_PROGRESS`, the last `*_COMPLETE`;
 * - rfd9 placeholders: a message whose key (output) is empty gets `[""]`, and if the whole
 *   message had no key (output) the first message's `key[0]` (`output[0]`) is `"null"`.
 *
 * A message with no key, output or concern at all (hipcheck-common would send nothing, leaving
 * the peer waiting) becomes one message `key: ["null"], output: ["null"]`.
 */
export function chunkQuery(query: Query, maxBytes = MAX_CHUNK_BYTES): Query[] {
  let inProgress: QueryState, complete: QueryState;
  switch (query.state) {
    case QueryState.SUBMIT_IN_PROGRESS:
    case QueryState.SUBMIT_COMPLETE:
      [inProgress, complete] = [QueryState.SUBMIT_IN_PROGRESS, QueryState.SUBMIT_COMPLETE];
      break;
    case QueryState.REPLY_IN_PROGRESS:
    case QueryState.REPLY_COMPLETE:
      [inProgress, complete] = [QueryState.REPLY_IN_PROGRESS, QueryState.REPLY_COMPLETE];
      break;
    default:
      throw new QueryProtocolError(
        "unchunkable",
        `message ${query.id} is UNSPECIFIED; only SUBMIT and REPLY messages are chunked`,
      );
  }
  const noKey = query.key.length === 0;
  const noOutput = query.output.length === 0;
  const fields = [
    new PendingField(query.key),
    new PendingField(query.output),
    new PendingField(query.concern),
  ];
  const chunks: Query[] = [];
  const budget = { remaining: 0, progressed: false };
  do {
    budget.remaining = maxBytes;
    budget.progressed = false;
    const chunk = create(QuerySchema, {
      id: query.id,
      state: inProgress,
      publisherName: query.publisherName,
      pluginName: query.pluginName,
      queryName: query.queryName,
    });
    const sinks = [chunk.key, chunk.output, chunk.concern];
    for (let i = 0; i < fields.length; i++) {
      if (fields[i].drainInto(sinks[i], budget)) {
        chunk.split = true;
        break;
      }
      if (budget.remaining === 0) break;
    }
    if (!budget.progressed && fields.some((f) => !f.empty)) {
      throw new QueryProtocolError(
        "unchunkable",
        `message ${query.id} cannot be cut into chunks of ${maxBytes} bytes`,
      );
    }
    if (chunk.key.length === 0) chunk.key.push("");
    if (chunk.output.length === 0) chunk.output.push("");
    chunks.push(chunk);
  } while (fields.some((f) => !f.empty));
  chunks[chunks.length - 1].state = complete;
  if (noKey) chunks[0].key[0] = "null";
  if (noOutput) chunks[0].output[0] = "null";
  return chunks;
}

type ChunkField = "key" | "output" | "concern";

/**
 * The field a split chunk's last element is in: the last field with content, where an output
 * of exactly `[""]` or `["null"]` is a placeholder, not content (hipcheck-common's rule).
 */
function splitFieldOf(chunk: Query): ChunkField {
  if (chunk.concern.length > 0) return "concern";
  const out = chunk.output;
  if (!(out.length === 1 && (out[0] === "" || out[0] === "null")) && out.length > 0) {
    return "output";
  }
  return "key";
}

function directionOf(state: QueryState): "submit" | "reply" | undefined {
  if (state === QueryState.SUBMIT_IN_PROGRESS || state === QueryState.SUBMIT_COMPLETE) {
    return "submit";
  }
  if (state === QueryState.REPLY_IN_PROGRESS || state === QueryState.REPLY_COMPLETE) {
    return "reply";
  }
  return undefined;
}

function isInProgress(state: QueryState): boolean {
  return state === QueryState.SUBMIT_IN_PROGRESS || state === QueryState.REPLY_IN_PROGRESS;
}

/**
 * Puts the chunks of one id back together, one message at a time. Unlike hipcheck-common it
 * remembers each chunk's own `split` flag, so chunks may arrive one read at a time.
 */
export class ChunkAssembler {
  #pending: Query | undefined;
  #splitField: ChunkField | undefined;

  /** Whether a message is partly received. */
  get assembling(): boolean {
    return this.#pending !== undefined;
  }

  /**
   * Takes the next chunk; returns the whole message when this chunk completes one. An
   * UNSPECIFIED message ends what was being assembled and is returned as is: the peer failed.
   */
  push(chunk: Query): Query | undefined {
    const direction = directionOf(chunk.state);
    const pending = this.#pending;
    if (direction === undefined) {
      this.#pending = this.#splitField = undefined;
      return chunk;
    }
    if (pending === undefined) {
      if (!isInProgress(chunk.state)) return chunk;
      this.#pending = create(QuerySchema, {
        id: chunk.id,
        state: chunk.state,
        publisherName: chunk.publisherName,
        pluginName: chunk.pluginName,
        queryName: chunk.queryName,
        key: [...chunk.key],
        output: [...chunk.output],
        concern: [...chunk.concern],
      });
      this.#splitField = chunk.split ? splitFieldOf(chunk) : undefined;
      return undefined;
    }
    if (direction !== directionOf(pending.state)) {
      this.#pending = this.#splitField = undefined;
      throw new QueryProtocolError(
        "mixed-chunks",
        `message ${chunk.id}: a ${direction} chunk arrived while a ${
          directionOf(pending.state)
        } was being assembled`,
      );
    }
    const next = { key: [...chunk.key], output: [...chunk.output], concern: [...chunk.concern] };
    const field = this.#splitField;
    if (field !== undefined) {
      const into = pending[field];
      const piece = next[field].shift();
      if (piece === undefined || into.length === 0) {
        this.#pending = this.#splitField = undefined;
        throw new QueryProtocolError(
          "bad-split",
          `message ${chunk.id}: the previous chunk was split in ${field}, this one has no ${field}`,
        );
      }
      into[into.length - 1] += piece;
    }
    pending.key.push(...next.key);
    pending.output.push(...next.output);
    pending.concern.push(...next.concern);
    this.#splitField = chunk.split ? splitFieldOf(chunk) : undefined;
    if (isInProgress(chunk.state)) return undefined;
    pending.state = chunk.state;
    this.#pending = this.#splitField = undefined;
    return pending;
  }
}

// ---------------------------------------------------------------------------------------------
// Batches

/**
 * Groups the JSON texts of a batch's keys so that no group of more than one key needs more
 * than one chunk: Hipcheck core 3.15 cannot decode a chunked message with several keys or
 * outputs. A key bigger than `maxBytes` travels alone (single-element messages chunk fine).
 * Returns the groups' sizes, in order.
 */
export function batchSizes(keyTexts: string[], maxBytes = MAX_CHUNK_BYTES): number[] {
  const sizes: number[] = [];
  let count = 0;
  let bytes = 0;
  for (const text of keyTexts) {
    const length = encoder.encode(text).length;
    if (count > 0 && bytes + length > maxBytes) {
      sizes.push(count);
      count = 0;
      bytes = 0;
    }
    count++;
    bytes += length;
  }
  if (count > 0) sizes.push(count);
  return sizes;
}

// ---------------------------------------------------------------------------------------------
// Error concerns

/**
 * What failed, in an error concern: the key or output did not match its schema, the endpoint
 * does not exist, the handler threw, a sub-query failed, or the protocol was broken.
 */
export type QueryErrorKind =
  | "invalid-key"
  | "invalid-output"
  | "unknown-query"
  | "handler"
  | "sub-query-failed"
  | "protocol";

/**
 * The concern a plugwire plugin adds to its UNSPECIFIED reply (after the concerns it recorded):
 * `{"error":{"kind":…,"message":…}}`. Hipcheck core 3.15 discards it (the plugin's ERROR log line
 * is what reaches the user there); a plugwire core reads it back with {@link parseErrorConcern}.
 */
export function errorConcern(kind: QueryErrorKind, message: string): string {
  return JSON.stringify({ error: { kind, message } });
}

/** The error in a concern written by {@link errorConcern}, or `undefined` for other text. */
export function parseErrorConcern(
  concern: string,
): { kind: string; message: string } | undefined {
  if (!concern.startsWith('{"error":')) return undefined;
  try {
    const { error } = JSON.parse(concern);
    if (typeof error?.kind === "string" && typeof error?.message === "string") {
      return { kind: error.kind, message: error.message };
    }
  } catch {
    // not ours
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// Ids

/**
 * What a side does with an incoming chunk: start a new exchange, route it to a running one, or
 * ignore it with the reason as a log line (never fail the stream over it).
 */
export type Routing =
  | { action: "new" }
  | { action: "existing" }
  | { action: "ignore"; reason: string };

/**
 * The plugin side's routing of a chunk from core. Id 0 is the Python SDK's header-flushing
 * message (and never a query); a SUBMIT on an unknown id opens an exchange; anything else on
 * an unknown id is stray (a late reply, a finished exchange).
 */
export function routeFromCore(chunk: Query, running: { has(id: number): boolean }): Routing {
  if (chunk.id === 0) return { action: "ignore", reason: "id 0 is not a query; ignored" };
  if (running.has(chunk.id)) return { action: "existing" };
  if (directionOf(chunk.state) === "submit") return { action: "new" };
  return {
    action: "ignore",
    reason: `${stateName(chunk.state)} for id ${chunk.id}, which has no running query; ignored`,
  };
}

/**
 * The core side's routing of a chunk from a plugin: only ids the core issued and has not
 * finished are routed; id 0 (the Python SDK's first message) and stray ids are ignored.
 */
export function routeFromPlugin(chunk: Query, running: { has(id: number): boolean }): Routing {
  if (chunk.id === 0) return { action: "ignore", reason: "id 0 is not a query; ignored" };
  if (running.has(chunk.id)) return { action: "existing" };
  return {
    action: "ignore",
    reason: `${stateName(chunk.state)} for id ${chunk.id}, which core has not issued; ignored`,
  };
}

function stateName(state: QueryState): string {
  return QueryState[state] ?? `state ${state}`;
}

/**
 * Core's query ids for one plugin: odd, from 1 (even ids were reserved for plugin-initiated
 * queries, which the protocol never allowed). Wraps before int32 overflows.
 */
export class OddIds {
  #next = 1;

  /** The next id. */
  next(): number {
    const id = this.#next;
    this.#next = id >= 0x7fff_fffd ? 1 : id + 2;
    return id;
  }
}

// ---------------------------------------------------------------------------------------------
// One exchange

/**
 * Whose turn it is in one exchange:
 * - `core-submitting`: core's query (its SUBMIT) is on its way;
 * - `plugin-working`: the plugin runs the query; its next message is a sub-query SUBMIT, the
 *   final REPLY or an UNSPECIFIED error (the plugin may also fail in the other states);
 * - `core-answering`: the plugin asked a sub-query; core's next message is the REPLY with one
 *   output per key (or UNSPECIFIED: the sub-query failed, a plugwire core's extension);
 * - `done`: the plugin replied or failed; later messages on this id are stray.
 */
export type ExchangeState = "core-submitting" | "plugin-working" | "core-answering" | "done";

/** Which end of the stream a {@link QueryExchange} runs on. */
export type ExchangeSide = "plugin" | "core";

// The plugin may give up in any state but `done` (a key that is not JSON, an answer it cannot
// read); core's UNSPECIFIED only answers a sub-query.
const NEXT_STATE: Record<
  ExchangeState,
  Partial<Record<`${"core" | "plugin"}:${QueryMessageKind}`, ExchangeState>>
> = {
  "core-submitting": { "core:submit": "plugin-working", "plugin:error": "done" },
  "plugin-working": {
    "plugin:submit": "core-answering",
    "plugin:reply": "done",
    "plugin:error": "done",
  },
  "core-answering": {
    "core:reply": "plugin-working",
    "core:error": "plugin-working",
    "plugin:error": "done",
  },
  "done": {},
};

/**
 * One query exchange (one id) on one side: it assembles what the peer sends, checks every
 * whole message against the turn order, and chunks what this side sends.
 */
export class QueryExchange {
  /** The exchange's id. */
  readonly id: number;
  /** The side this object runs on. */
  readonly side: ExchangeSide;
  #state: ExchangeState = "core-submitting";
  #assembler = new ChunkAssembler();
  #maxBytes: number;

  /**
   * @param id The exchange's id.
   * @param side The side this object runs on.
   * @param maxBytes The chunk budget (tests use small ones).
   */
  constructor(id: number, side: ExchangeSide, maxBytes = MAX_CHUNK_BYTES) {
    this.id = id;
    this.side = side;
    this.#maxBytes = maxBytes;
  }

  /** Whose turn it is. */
  get state(): ExchangeState {
    return this.#state;
  }

  /**
   * Takes a chunk from the peer. Returns the whole message once it is complete (and moves the
   * turn on), `undefined` while chunks are still coming. Throws {@link QueryProtocolError} for a
   * message out of turn, mixed chunks or invalid JSON; the turn then stays where it was, so the
   * plugin side can still answer with an error.
   */
  receive(chunk: Query): QueryMessage | undefined {
    const peer = this.side === "plugin" ? "core" : "plugin";
    if (chunk.id !== this.id) {
      throw new QueryProtocolError(
        "unexpected-message",
        `exchange ${this.id} was handed a message for id ${chunk.id}`,
      );
    }
    this.#expectTurn(peer, directionOf(chunk.state) ?? "error");
    const whole = this.#assembler.push(chunk);
    if (whole === undefined) return undefined;
    const message = decodeQuery(whole);
    this.#advance(peer, message.kind);
    return message;
  }

  /**
   * The wire messages that send `message` from this side, in order. Throws
   * {@link QueryProtocolError} (and sends nothing) when it is not this side's turn for it.
   */
  send(message: Omit<QueryMessage, "id">): Query[] {
    const chunks = encodeQuery({ ...message, id: this.id }, this.#maxBytes);
    this.#advance(this.side, message.kind);
    return chunks;
  }

  #expectTurn(who: ExchangeSide, kind: QueryMessageKind): void {
    if (NEXT_STATE[this.#state][`${who}:${kind}`] === undefined) {
      throw new QueryProtocolError(
        "unexpected-message",
        `exchange ${this.id}: a ${kind} from the ${who} is not allowed in state ${this.#state}`,
      );
    }
  }

  #advance(who: ExchangeSide, kind: QueryMessageKind): void {
    this.#expectTurn(who, kind);
    this.#state = NEXT_STATE[this.#state][`${who}:${kind}`]!;
  }
}
