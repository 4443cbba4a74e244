// Golden tests: the wire bytes of the exchanges captured in hipcheck.md §1.8 (the Python SDK's
// example plugin under a stand-in of Hipcheck core 3.15), produced and read by the shared query
// state machine on both sides.
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import {
  InitiateQueryProtocolRequestSchema,
  InitiateQueryProtocolResponseSchema,
  type Query,
  QueryState,
} from "../gen/hipcheck/v1/hipcheck_pb.ts";
import {
  QueryExchange,
  routeFromCore,
  routeFromPlugin,
} from "../internal/hipcheck/query_state_machine.ts";
import { testNoLeftovers } from "./_util.ts";

const b64 = (bytes: Uint8Array) => Buffer.from(bytes).toString("base64");
const fromB64 = (text: string) => new Uint8Array(Buffer.from(text, "base64"));
const request = (query: Query) =>
  b64(
    toBinary(
      InitiateQueryProtocolRequestSchema,
      create(InitiateQueryProtocolRequestSchema, { query }),
    ),
  );
const response = (query: Query) =>
  b64(
    toBinary(
      InitiateQueryProtocolResponseSchema,
      create(InitiateQueryProtocolResponseSchema, { query }),
    ),
  );
const readRequest = (text: string) =>
  fromBinary(InitiateQueryProtocolRequestSchema, fromB64(text)).query!;
const readResponse = (text: string) =>
  fromBinary(InitiateQueryProtocolResponseSchema, fromB64(text)).query!;

const GOLDEN = {
  dummy: "CgA=",
  scenario2Submit: "Ci4IAxABGgVtaXRyZSIHZXhhbXBsZSoPZHVtbXlfcmFuZF9kYXRhMgE4OgRudWxs",
  scenario2SubQuery: "CiYIAxABGgVkdW1teSIGc2hhMjU2KgZzaGEyNTYyA1sxXToEbnVsbA==",
  scenario2Final:
    "ClAIAxADGgVtaXRyZSIHZXhhbXBsZSoPZHVtbXlfcmFuZF9kYXRhMgRudWxsOgI3NUIOVGhpcyBpcyBhIHRlc3RCD1RoaXMgaXMgYSB0ZXN0Mg==",
  scenario1Reply: "Ch0IARADGgVtaXRyZSIHZXhhbXBsZTIEbnVsbDoBOQ==",
};

// deno-fmt-ignore
const SHA256_OF_1 = [
  75, 245, 18, 47, 52, 69, 84, 197, 59, 222, 46, 187, 140, 210, 183, 227,
  209, 96, 10, 214, 49, 195, 133, 165, 215, 204, 226, 60, 119, 133, 69, 154,
];

Deno.test("golden: scenario 2, a query that asks another plugin, byte for byte on both sides", () => {
  // Core's side writes the submit; the plugin's side reads it.
  const core = new QueryExchange(3, "core");
  const submit = core.send({
    kind: "submit",
    publisher: "mitre",
    plugin: "example",
    query: "dummy_rand_data",
    keys: [8],
    outputs: [],
    concerns: [],
  });
  assert.deepEqual(submit.map(request), [GOLDEN.scenario2Submit]);
  const plugin = new QueryExchange(3, "plugin");
  const received = plugin.receive(readRequest(GOLDEN.scenario2Submit));
  assert.deepEqual(received, {
    id: 3,
    kind: "submit",
    publisher: "mitre",
    plugin: "example",
    query: "dummy_rand_data",
    keys: [8],
    outputs: [null], // the rfd9 placeholder
    concerns: [],
  });
  assert.equal(plugin.state, "plugin-working");

  // The plugin asks dummy/sha256/sha256 for [1] on the same id.
  const sub = plugin.send({
    kind: "submit",
    publisher: "dummy",
    plugin: "sha256",
    query: "sha256",
    keys: [[1]],
    outputs: [],
    concerns: [],
  });
  assert.deepEqual(sub.map(response), [GOLDEN.scenario2SubQuery]);
  assert.equal(plugin.state, "core-answering");
  const asked = core.receive(readResponse(GOLDEN.scenario2SubQuery));
  assert.equal(asked?.kind, "submit");
  assert.deepEqual(asked?.keys, [[1]]);
  assert.equal(core.state, "core-answering");

  // Core answers from the target, compactly; the plugin resumes.
  const answer = core.send({
    kind: "reply",
    publisher: "dummy",
    plugin: "sha256",
    query: "sha256",
    keys: [],
    outputs: [SHA256_OF_1],
    concerns: [],
  });
  assert.equal(answer.length, 1);
  assert.deepEqual(answer[0].key, ["null"]);
  assert.deepEqual(answer[0].output, [JSON.stringify(SHA256_OF_1)]);
  const resumed = plugin.receive(readRequest(request(answer[0])));
  assert.deepEqual(resumed?.outputs, [SHA256_OF_1]);

  // The final reply, with its concerns.
  const final = plugin.send({
    kind: "reply",
    publisher: "mitre",
    plugin: "example",
    query: "dummy_rand_data",
    keys: [],
    outputs: [75],
    concerns: ["This is a test", "This is a test2"],
  });
  assert.deepEqual(final.map(response), [GOLDEN.scenario2Final]);
  assert.equal(plugin.state, "done");
  const done = core.receive(readResponse(GOLDEN.scenario2Final));
  assert.deepEqual(done?.outputs, [75]);
  assert.deepEqual(done?.concerns, ["This is a test", "This is a test2"]);
  assert.equal(core.state, "done");
});

Deno.test("golden: scenario 1, a reply on the default endpoint (query_name absent on the wire)", () => {
  const plugin = new QueryExchange(1, "plugin");
  plugin.receive(readRequest(request(
    new QueryExchange(1, "core").send({
      kind: "submit",
      publisher: "mitre",
      plugin: "example",
      query: "",
      keys: [{ specifier: "repo", local: { path: "/tmp/repo", git_ref: "main" } }],
      outputs: [],
      concerns: [],
    })[0],
  )));
  const reply = plugin.send({
    kind: "reply",
    publisher: "mitre",
    plugin: "example",
    query: "",
    keys: [],
    outputs: [9],
    concerns: [],
  });
  assert.deepEqual(reply.map(response), [GOLDEN.scenario1Reply]);
});

Deno.test("golden: the Python SDK's id-0 message is an empty Query, which both sides ignore", () => {
  const dummy = readResponse(GOLDEN.dummy);
  assert.equal(dummy.id, 0);
  assert.equal(dummy.state, QueryState.UNSPECIFIED);
  assert.equal(routeFromPlugin(dummy, new Set([1])).action, "ignore");
  assert.equal(routeFromCore(dummy, new Set()).action, "ignore");
  // And what it is made of: an InitiateQueryProtocolResponse holding an empty Query.
  assert.equal(response(dummy), GOLDEN.dummy);
});

Deno.test("golden: scenario 9, a 5 MiB string output is two chunks split inside the output", () => {
  const big = "x".repeat(5 * 1024 * 1024 + 7);
  const plugin = new QueryExchange(13, "plugin");
  plugin.receive(
    new QueryExchange(13, "core").send({
      kind: "submit",
      publisher: "dummy",
      plugin: "sha256",
      query: "big",
      keys: [1],
      outputs: [],
      concerns: [],
    })[0],
  );
  const chunks = plugin.send({
    kind: "reply",
    publisher: "dummy",
    plugin: "sha256",
    query: "big",
    keys: [],
    outputs: [big],
    concerns: ["big output"],
  });
  assert.equal(chunks.length, 2);
  const [first, second] = chunks;
  assert.equal(first.state, QueryState.REPLY_IN_PROGRESS);
  assert.deepEqual(first.key, ["null"]);
  assert.equal(first.output.length, 1);
  assert.equal(first.output[0].length, 4_193_280);
  assert.equal(first.output[0], `"${"x".repeat(4_193_279)}`);
  assert.deepEqual(first.concern, []);
  assert.equal(first.split, true);
  assert.equal(second.state, QueryState.REPLY_COMPLETE);
  assert.deepEqual(second.key, [""]);
  assert.equal(second.output[0].length, 1_049_609);
  assert.ok(second.output[0].endsWith(`x"`));
  assert.deepEqual(second.concern, ["big output"]);
  assert.equal(second.split, false);
  // Core's side puts them back together, one read at a time.
  const core = new QueryExchange(13, "core");
  core.send({
    kind: "submit",
    publisher: "dummy",
    plugin: "sha256",
    query: "big",
    keys: [1],
    outputs: [],
    concerns: [],
  });
  assert.equal(core.receive(first), undefined);
  const whole = core.receive(second);
  assert.equal(whole?.kind, "reply");
  assert.equal(whole?.outputs[0], big);
  assert.deepEqual(whole?.concerns, ["big output"]);
});

testNoLeftovers();
