// Unit tests of the shared Hipcheck query state machine: chunking as hipcheck-common 0.5.0 does
// it, assembly that keeps split state per chunk, placeholders, turns, id routing, batches.
import assert from "node:assert/strict";
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { type Query, QuerySchema, QueryState } from "../gen/hipcheck/v1/hipcheck_pb.ts";
import {
  batchSizes,
  ChunkAssembler,
  chunkQuery,
  decodeQuery,
  encodeQuery,
  errorConcern,
  MAX_CHUNK_BYTES,
  OddIds,
  parseErrorConcern,
  QueryExchange,
  type QueryMessage,
  QueryProtocolError,
  routeFromCore,
  routeFromPlugin,
} from "../internal/hipcheck/query_state_machine.ts";
import { testNoLeftovers } from "./_util.ts";

const q = (init: MessageInitShape<typeof QuerySchema>) => create(QuerySchema, { id: 1, ...init });
const fields = (chunks: Query[]) =>
  chunks.map((c) => ({
    state: QueryState[c.state],
    key: c.key,
    output: c.output,
    concern: c.concern,
    split: c.split,
  }));
const isProtocolError = (code: string) => (err: unknown) =>
  err instanceof QueryProtocolError && err.code === code;

Deno.test("budget is 4 MiB minus 1 KiB", () => {
  assert.equal(MAX_CHUNK_BYTES, 4_193_280);
});

Deno.test("chunking: hipcheck-common's own case, two 10-byte keys with a budget of 10", () => {
  const chunks = chunkQuery(
    q({ state: QueryState.REPLY_COMPLETE, key: ["0123456789", "0123456789"] }),
    10,
  );
  assert.deepEqual(fields(chunks), [
    {
      state: "REPLY_IN_PROGRESS",
      key: ["0123456789"],
      output: ["null"],
      concern: [],
      split: false,
    },
    { state: "REPLY_COMPLETE", key: ["0123456789"], output: [""], concern: [], split: false },
  ]);
});

Deno.test("chunking: a message that fits is one message with the null placeholders", () => {
  assert.deepEqual(fields(chunkQuery(q({ state: QueryState.SUBMIT_COMPLETE, key: ["1"] }))), [
    { state: "SUBMIT_COMPLETE", key: ["1"], output: ["null"], concern: [], split: false },
  ]);
  assert.deepEqual(fields(chunkQuery(q({ state: QueryState.REPLY_COMPLETE, output: ["2"] }))), [
    { state: "REPLY_COMPLETE", key: ["null"], output: ["2"], concern: [], split: false },
  ]);
  // Nothing at all still makes one message (hipcheck-common would send none).
  assert.deepEqual(fields(chunkQuery(q({ state: QueryState.REPLY_COMPLETE }))), [
    { state: "REPLY_COMPLETE", key: ["null"], output: ["null"], concern: [], split: false },
  ]);
});

Deno.test("chunking: key, then output, then concern share one budget; splits end a chunk", () => {
  const chunks = chunkQuery(
    q({ state: QueryState.SUBMIT_COMPLETE, key: ['"abcdef"'], output: [], concern: ["xyz"] }),
    5,
  );
  // Chunk 2 takes the key's rest (3 bytes) and 2 bytes of the concern: split again.
  assert.deepEqual(fields(chunks), [
    { state: "SUBMIT_IN_PROGRESS", key: ['"abcd'], output: ["null"], concern: [], split: true },
    { state: "SUBMIT_IN_PROGRESS", key: ['ef"'], output: [""], concern: ["xy"], split: true },
    { state: "SUBMIT_COMPLETE", key: [""], output: [""], concern: ["z"], split: false },
  ]);
  const whole = new ChunkAssembler();
  assert.equal(whole.push(chunks[0]), undefined);
  assert.equal(whole.push(chunks[1]), undefined);
  const message = decodeQuery(whole.push(chunks[2])!);
  assert.deepEqual(message.keys, ["abcdef"]);
  assert.deepEqual(message.concerns, ["xyz"]);
});

Deno.test("chunking: cuts only at UTF-8 character boundaries, and fails when a char cannot fit", () => {
  const text = '"aこれは実験です"'; // 3-byte characters
  const chunks = chunkQuery(q({ state: QueryState.REPLY_COMPLETE, output: [text] }), 10);
  const bytes = chunks.map((c) => new TextEncoder().encode(c.output.join("") + c.key.join("")));
  for (const [i, c] of chunks.entries()) {
    assert.ok(new TextEncoder().encode(c.output[0]).length <= 10, `chunk ${i}`);
    assert.ok(!c.output[0].includes("\ufffd"), `chunk ${i} cut a character`);
  }
  assert.ok(bytes.length > 1);
  const assembler = new ChunkAssembler();
  let whole: Query | undefined;
  for (const c of chunks) whole = assembler.push(c);
  assert.deepEqual(decodeQuery(whole!).outputs, ["aこれは実験です"]);
  assert.throws(
    () => chunkQuery(q({ state: QueryState.REPLY_COMPLETE, output: ['"これ"'] }), 2),
    isProtocolError("unchunkable"),
  );
  assert.throws(
    () => chunkQuery(q({ state: QueryState.UNSPECIFIED, concern: ["x"] })),
    isProtocolError("unchunkable"),
  );
});

Deno.test("assembly: split state is tracked per chunk, fed one read at a time", () => {
  // The Python SDK and hipcheck-common fail this sequence (hipcheck.md §1.5 G).
  const chunks = [
    q({ state: QueryState.SUBMIT_IN_PROGRESS, key: ['"ab"'], output: ["null"] }),
    q({ state: QueryState.SUBMIT_IN_PROGRESS, key: ['"cd'], output: [""], split: true }),
    q({ state: QueryState.SUBMIT_COMPLETE, key: ['ef"'], output: [""] }),
  ];
  const assembler = new ChunkAssembler();
  assert.equal(assembler.push(chunks[0]), undefined);
  assert.equal(assembler.assembling, true);
  assert.equal(assembler.push(chunks[1]), undefined);
  const whole = assembler.push(chunks[2])!;
  assert.equal(assembler.assembling, false);
  assert.deepEqual(decodeQuery(whole).keys, ["ab", "cdef"]);
});

Deno.test("assembly: a chunked two-key batch (the one real hc rejects) decodes here", () => {
  const key0 = JSON.stringify("a".repeat(20));
  const key1 = JSON.stringify("b".repeat(30));
  const chunks = chunkQuery(q({ state: QueryState.SUBMIT_COMPLETE, key: [key0, key1] }), 22);
  assert.ok(chunks.length >= 3);
  const assembler = new ChunkAssembler();
  let whole: Query | undefined;
  for (const c of chunks) whole = assembler.push(c);
  assert.deepEqual(decodeQuery(whole!).keys, ["a".repeat(20), "b".repeat(30)]);
});

Deno.test("assembly: mixed directions and a split with nothing after it are errors", () => {
  const a = new ChunkAssembler();
  a.push(q({ state: QueryState.REPLY_IN_PROGRESS, output: ["[1"], split: true }));
  assert.throws(
    () => a.push(q({ state: QueryState.SUBMIT_COMPLETE, key: ["1"] })),
    isProtocolError("mixed-chunks"),
  );
  assert.equal(a.assembling, false);
  a.push(q({ state: QueryState.REPLY_IN_PROGRESS, key: ["null"], output: ["[1"], split: true }));
  assert.throws(
    () => a.push(q({ state: QueryState.REPLY_COMPLETE, key: [""] })),
    isProtocolError("bad-split"),
  );
  // An UNSPECIFIED message ends an assembly: the peer failed.
  a.push(q({ state: QueryState.REPLY_IN_PROGRESS, output: ["[1"], split: true }));
  const failed = a.push(q({ state: QueryState.UNSPECIFIED, concern: ["boom"] }));
  assert.equal(decodeQuery(failed!).kind, "error");
  assert.equal(a.assembling, false);
});

Deno.test("decoding: placeholders, the compatibility join, invalid JSON", () => {
  const reply = decodeQuery(
    q({ state: QueryState.REPLY_COMPLETE, key: ["null", ""], output: ['"x"'] }),
  );
  assert.deepEqual(reply.keys, [null]);
  assert.deepEqual(reply.outputs, ["x"]);
  // A value cut without a split flag (old peers) is joined.
  const joined = decodeQuery(q({ state: QueryState.REPLY_COMPLETE, output: ['{"a":', "1}"] }));
  assert.deepEqual(joined.outputs, [{ a: 1 }]);
  assert.throws(
    () => decodeQuery(q({ state: QueryState.SUBMIT_COMPLETE, key: ["{nope"] })),
    isProtocolError("invalid-json-key"),
  );
  assert.throws(
    () => decodeQuery(q({ state: QueryState.REPLY_COMPLETE, output: ["nope"] })),
    isProtocolError("invalid-json-output"),
  );
  assert.throws(
    () => decodeQuery(q({ state: QueryState.REPLY_IN_PROGRESS, output: ["1"] })),
    isProtocolError("incomplete"),
  );
  // The Python SDK's reply on an unknown id is UNSPECIFIED with non-JSON text: an error, read.
  const python = decodeQuery(
    q({ state: QueryState.UNSPECIFIED, key: [""], output: ["HcSessionSocket error: "] }),
  );
  assert.equal(python.kind, "error");
});

Deno.test("encoding: any JSON value as key or output; undefined and bigint are typed errors", () => {
  const values = ["text", [1, 2], { a: [null] }, 0, true, null, "é😀"];
  const [chunk] = encodeQuery({
    id: 5,
    kind: "submit",
    publisher: "p",
    plugin: "q",
    query: "",
    keys: values,
    outputs: [],
    concerns: [],
  });
  assert.deepEqual(decodeQuery(chunk).keys, values);
  const message: QueryMessage = {
    id: 5,
    kind: "reply",
    publisher: "p",
    plugin: "q",
    query: "",
    keys: [],
    outputs: [undefined],
    concerns: [],
  };
  assert.throws(() => encodeQuery(message), isProtocolError("not-json"));
  assert.throws(() => encodeQuery({ ...message, outputs: [1n] }), isProtocolError("not-json"));
  // An error is one UNSPECIFIED message, no placeholders, however many concerns.
  const [error, ...rest] = encodeQuery({ ...message, kind: "error", outputs: [], concerns: ["c"] });
  assert.deepEqual(rest, []);
  assert.deepEqual(fields([error]), [
    { state: "UNSPECIFIED", key: [], output: [], concern: ["c"], split: false },
  ]);
});

Deno.test("round trip: random messages and budgets, every chunk within budget", () => {
  let seed = 42;
  const rand = (n: number) => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % n;
  const alphabet = ["a", "é", "こ", "😀", '"', "\\", "\n"];
  const str = () =>
    Array.from({ length: rand(40) }, () => alphabet[rand(alphabet.length)]).join("");
  for (let round = 0; round < 300; round++) {
    const budget = 4 + rand(30);
    const message: QueryMessage = {
      id: 1 + 2 * rand(50),
      kind: rand(2) ? "submit" : "reply",
      publisher: "pub",
      plugin: "plug",
      query: rand(2) ? "" : "name",
      keys: Array.from({ length: rand(4) }, str),
      outputs: Array.from({ length: rand(4) }, () => ({ s: str(), n: rand(1000) })),
      concerns: Array.from({ length: rand(3) }, () => str() || "c"),
    };
    const chunks = encodeQuery(message, budget);
    for (const c of chunks) {
      const used = [...c.key, ...c.output, ...c.concern]
        .filter((t) => t !== "null") // placeholders are outside the budget
        .reduce((n, t) => n + new TextEncoder().encode(t).length, 0);
      assert.ok(used <= budget, `round ${round}: ${used} > ${budget}`);
    }
    const assembler = new ChunkAssembler();
    let whole: Query | undefined;
    for (const c of chunks) whole = assembler.push(c);
    const back = decodeQuery(whole!);
    const relevant = message.kind === "submit" ? "keys" : "outputs";
    if (message[relevant].length > 0) {
      assert.deepEqual(back[relevant], message[relevant], `round ${round}`);
    }
    assert.deepEqual(back.concerns, message.concerns, `round ${round}`);
  }
});

Deno.test("exchange: turns in order on both sides, out-of-turn messages rejected", () => {
  const plugin = new QueryExchange(7, "plugin");
  const core = new QueryExchange(7, "core");
  const base = { publisher: "p", plugin: "x", query: "", keys: [], outputs: [], concerns: [] };
  // The plugin cannot speak first.
  assert.throws(
    () => plugin.send({ ...base, kind: "reply", outputs: [1] }),
    isProtocolError("unexpected-message"),
  );
  assert.equal(plugin.state, "core-submitting");
  for (const c of core.send({ ...base, kind: "submit", keys: [1] })) plugin.receive(c);
  assert.equal(plugin.state, "plugin-working");
  // Core cannot send a REPLY while the plugin works.
  assert.throws(
    () => core.send({ ...base, kind: "reply", outputs: [1] }),
    isProtocolError("unexpected-message"),
  );
  for (const c of plugin.send({ ...base, kind: "submit", keys: [2, 3] })) core.receive(c);
  assert.equal(core.state, "core-answering");
  // A sub-query that failed (core's UNSPECIFIED) hands the turn back to the plugin.
  for (const c of core.send({ ...base, kind: "error", concerns: ["no such plugin"] })) {
    assert.equal(plugin.receive(c)?.kind, "error");
  }
  assert.equal(plugin.state, "plugin-working");
  for (const c of plugin.send({ ...base, kind: "error", concerns: ["failed"] })) core.receive(c);
  assert.equal(plugin.state, "done");
  assert.equal(core.state, "done");
  // Anything after the end is out of turn.
  const late = create(QuerySchema, { id: 7, state: QueryState.REPLY_COMPLETE, output: ["1"] });
  assert.throws(() => plugin.receive(late), isProtocolError("unexpected-message"));
  assert.throws(
    () =>
      new QueryExchange(9, "plugin").receive(create(QuerySchema, { id: 8, state: 1, key: ["1"] })),
    isProtocolError("unexpected-message"),
  );
});

Deno.test("ids: core issues odd ids; id 0 and stray ids are ignored with a reason", () => {
  const ids = new OddIds();
  assert.deepEqual([ids.next(), ids.next(), ids.next()], [1, 3, 5]);
  const running = new Set([3]);
  const submit = (id: number) => create(QuerySchema, { id, state: QueryState.SUBMIT_COMPLETE });
  const reply = (id: number) => create(QuerySchema, { id, state: QueryState.REPLY_COMPLETE });
  assert.deepEqual(routeFromCore(submit(5), running), { action: "new" });
  assert.deepEqual(routeFromCore(reply(3), running), { action: "existing" });
  const stray = routeFromCore(reply(99), running);
  assert.equal(stray.action, "ignore");
  assert.match((stray as { reason: string }).reason, /REPLY_COMPLETE for id 99/);
  assert.equal(routeFromCore(submit(0), running).action, "ignore");
  assert.deepEqual(routeFromPlugin(reply(3), running), { action: "existing" });
  assert.equal(routeFromPlugin(submit(5), running).action, "ignore");
  assert.equal(routeFromPlugin(create(QuerySchema, {}), running).action, "ignore");
});

Deno.test("batches: no group of several keys needs more than one chunk", () => {
  assert.deepEqual(batchSizes(["1", "2", "3"], 10), [3]);
  assert.deepEqual(batchSizes(["12345", "12345", "1"], 10), [2, 1]);
  assert.deepEqual(batchSizes(["123456789012", "1", "2"], 10), [1, 2]);
  assert.deepEqual(batchSizes(["é".repeat(3), "12345"], 10), [1, 1]); // bytes, not characters
  assert.deepEqual(batchSizes([], 10), []);
});

Deno.test("error concerns: written and read back; other text is not one", () => {
  const text = errorConcern("handler", 'bad "thing"\nhappened');
  assert.equal(text, '{"error":{"kind":"handler","message":"bad \\"thing\\"\\nhappened"}}');
  assert.deepEqual(parseErrorConcern(text), { kind: "handler", message: 'bad "thing"\nhappened' });
  assert.equal(parseErrorConcern("sha256 first byte 75"), undefined);
  assert.equal(parseErrorConcern('{"error": 1}'), undefined);
  assert.equal(parseErrorConcern('{"error":{"kind":'), undefined);
});

Deno.test("exchange: the plugin may fail while core submits or answers; bad input keeps the turn", () => {
  const base = { publisher: "p", plugin: "x", query: "", keys: [], outputs: [], concerns: [] };
  const plugin = new QueryExchange(3, "plugin");
  const bad = create(QuerySchema, { id: 3, state: QueryState.SUBMIT_COMPLETE, key: ["{no"] });
  assert.throws(() => plugin.receive(bad), isProtocolError("invalid-json-key"));
  assert.equal(plugin.state, "core-submitting");
  assert.equal(plugin.send({ ...base, kind: "error", concerns: ["bad key"] })[0].state, 0);
  assert.equal(plugin.state, "done");
});

testNoLeftovers();
