// The Hipcheck plugin server as a real process, driven over gRPC by a small core-like driver:
// response headers before any message, the setup RPCs, id 0 and stray ids, a 5 MiB chunked
// output, a failing query, sub-queries and split batches, configuration statuses, and the
// process ending on stream close and on SIGTERM.
import assert from "node:assert/strict";
import { create } from "@bufbuild/protobuf";
import { ConfigurationStatus, QuerySchema, QueryState } from "../gen/hipcheck/v1/hipcheck_pb.ts";
import { errorConcern } from "../internal/hipcheck/query_state_machine.ts";
import { PluginProcess, QueryStream, submit } from "./_hipcheck_driver.ts";
import { denoCommand, eventually, TEST_MARK, testNoLeftovers } from "./_util.ts";

// deno-fmt-ignore
const SHA256_OF_1 = [
  75, 245, 18, 47, 52, 69, 84, 197, 59, 222, 46, 187, 140, 210, 183, 227,
  209, 96, 10, 214, 49, 195, 133, 165, 215, 204, 226, 60, 119, 133, 69, 154,
];

Deno.test("plugin server process: headers first, setup RPCs, queries, chunking, failures, ids", async (t) => {
  const plugin = new PluginProcess("tests/fixtures/hipcheck_plugin.ts", [
    "--log-level",
    "debug",
    "--some-future-flag",
    "value",
  ]);
  try {
    await plugin.ready();
    // The plugin's own measure (no assertion on time): loading and defining, then listening.
    const isListening = (r: { fields: { message: string } }) =>
      r.fields.message.startsWith("listening on");
    await eventually("the listening line", () => plugin.records().some(isListening));
    const listening = plugin.records().find(isListening);
    const { loaded_ms, listened_ms } = listening!.fields as unknown as Record<string, number>;
    console.log(`    loaded in ${loaded_ms} ms, listening ${listened_ms} ms later`);

    await t.step("setup RPCs answer in core's order", async () => {
      const schemas = await Array.fromAsync(plugin.service.getQuerySchemas({ empty: {} }));
      assert.deepEqual(schemas.map((s) => s.queryName), [
        "",
        "echo",
        "big",
        "fail",
        "ask",
        "noisy",
        "both",
      ]);
      for (const s of schemas) {
        JSON.parse(s.keySchema);
        JSON.parse(s.outputSchema);
      }
      const configured = await plugin.service.setConfiguration({
        configuration: JSON.stringify({ mode: "a", limit: 7 }),
      });
      assert.equal(configured.status, ConfigurationStatus.NONE);
      assert.equal(configured.message, "");
      const policy = await plugin.service.getDefaultPolicyExpression({ empty: {} });
      assert.equal(policy.policyExpression, "(lte $ 7)");
      const explanation = await plugin.service.explainDefaultQuery({ empty: {} });
      assert.equal(explanation.explanation, "whatever the key was");
    });

    const stream = new QueryStream(plugin.client);

    await t.step("response headers arrive as the stream opens, before any message", async () => {
      // Without sendMetadata grpc-js would hold the headers until the first message, and core
      // (like this driver) sends nothing before it has them: it would wait forever.
      let timer: ReturnType<typeof setTimeout> | undefined;
      const noHeaders = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error("no response headers within 20 s")), 20_000);
      });
      await Promise.race([stream.headers, noHeaders]).finally(() => clearTimeout(timer));
      assert.equal(stream.messagesBeforeHeaders, 0);
    });

    await t.step("a query on the default endpoint, wire placeholders as Hipcheck", async () => {
      const { exchange, chunks } = submit(1, "", ["a string key"]);
      stream.send(...chunks);
      const reply = await stream.next();
      assert.equal(reply.id, 1);
      assert.equal(reply.state, QueryState.REPLY_COMPLETE);
      assert.deepEqual(reply.key, ["null"]);
      assert.deepEqual(reply.output, ['"a string key"']);
      assert.equal(reply.publisherName, "test");
      assert.equal(reply.pluginName, "fixture");
      assert.equal(exchange.receive(reply)?.outputs[0], "a string key");
    });

    await t.step(
      "several keys in one submit (a plugwire core's batch): one output each",
      async () => {
        const { exchange, chunks } = submit(21, "echo", ["x", [1], { y: null }]);
        stream.send(...chunks);
        assert.deepEqual((await stream.nextMessage(exchange)).outputs, ["x", [1], { y: null }]);
      },
    );

    await t.step("id 0 and stray ids are ignored with a log line; the stream goes on", async () => {
      stream.send(create(QuerySchema, {})); // the Python SDK's id-0 message, as core would see it
      stream.send(create(QuerySchema, { id: 99, state: QueryState.REPLY_COMPLETE, output: ["1"] }));
      stream.send(create(QuerySchema, { id: 1, state: QueryState.REPLY_COMPLETE, output: ["1"] }));
      const { exchange, chunks } = submit(3, "echo", [[1, 2, 3]]);
      stream.send(...chunks);
      const reply = await stream.nextMessage(exchange);
      assert.equal(reply.id, 3);
      assert.deepEqual(reply.outputs, [[1, 2, 3]]);
      const warnings = plugin.records().filter((r) => r.level === "WARN").map((r) =>
        r.fields.message
      );
      assert.ok(warnings.some((m) => m.startsWith("id 0 is not a query")), warnings.join("|"));
      assert.ok(warnings.some((m) => m.includes("id 99")), warnings.join("|"));
      assert.ok(warnings.some((m) => m.includes("REPLY_COMPLETE for id 1,")), warnings.join("|"));
    });

    await t.step("a 5 MiB output travels as two chunks, split inside the output", async () => {
      const size = 5 * 1024 * 1024 + 7;
      const { exchange, chunks } = submit(5, "big", [size]);
      stream.send(...chunks);
      const first = await stream.next();
      assert.equal(first.state, QueryState.REPLY_IN_PROGRESS);
      assert.equal(first.split, true);
      assert.deepEqual(first.key, ["null"]);
      assert.equal(first.output[0].length, 4_193_280);
      assert.deepEqual(first.concern, []);
      const second = await stream.next();
      assert.equal(second.state, QueryState.REPLY_COMPLETE);
      assert.deepEqual(second.key, [""]);
      assert.deepEqual(second.concern, ["big output"]);
      assert.equal(exchange.receive(first), undefined);
      const whole = exchange.receive(second)!;
      assert.equal((whole.outputs[0] as string).length, size);
      assert.deepEqual(whole.concerns, ["big output"]);
    });

    await t.step(
      "a failing query: UNSPECIFIED with the concerns and the error, an ERROR line",
      async () => {
        const { chunks } = submit(7, "fail", [null]);
        stream.send(...chunks);
        const reply = await stream.next();
        assert.equal(reply.id, 7);
        assert.equal(reply.state, QueryState.UNSPECIFIED);
        assert.deepEqual(reply.key, []);
        assert.deepEqual(reply.output, []);
        const message = 'test/fixture/fail failed: Error: forced "failure"\nsecond line';
        assert.deepEqual(reply.concern, [
          "recorded before the failure",
          errorConcern("handler", message),
        ]);
        await eventually(
          "the ERROR log line",
          () => plugin.records().some((r) => r.level === "ERROR" && r.fields.message === message),
        );
        const line = plugin.stderrLines.find((l) => l.includes('"level":"ERROR"'))!;
        assert.equal(JSON.parse(line).target, "fixture");
      },
    );

    await t.step("a bad key and an unknown query fail the same way, never the stream", async () => {
      stream.send(...submit(9, "big", ["not a number"]).chunks);
      const bad = await stream.next();
      assert.equal(bad.state, QueryState.UNSPECIFIED);
      assert.match(bad.concern[0], /"kind":"invalid-key"/);
      stream.send(...submit(11, "nope", [1]).chunks);
      const unknown = await stream.next();
      assert.equal(unknown.state, QueryState.UNSPECIFIED);
      assert.match(unknown.concern[0], /"kind":"unknown-query"/);
      stream.send(create(QuerySchema, { id: 13, state: QueryState.SUBMIT_COMPLETE, key: ["{no"] }));
      const notJson = await stream.next();
      assert.equal(notJson.state, QueryState.UNSPECIFIED);
      assert.match(notJson.concern[0], /invalid JSON in query key/);
    });

    await t.step(
      "sub-queries go out one at a time on the session's id, then the reply",
      async () => {
        const { exchange, chunks } = submit(15, "both", [1]);
        stream.send(...chunks);
        const firstAsk = await stream.nextMessage(exchange);
        assert.deepEqual(
          [
            firstAsk.id,
            firstAsk.kind,
            firstAsk.publisher,
            firstAsk.plugin,
            firstAsk.query,
            firstAsk.keys,
          ],
          [15, "submit", "a", "b", "", [1]],
        );
        // A message out of turn on this id (core submitting while it should answer) is stray:
        // logged and ignored, the query goes on.
        stream.send(create(QuerySchema, {
          id: 15,
          state: QueryState.SUBMIT_COMPLETE,
          key: ["1"],
          output: ["null"],
        }));
        stream.send(...exchange.send({
          kind: "reply",
          publisher: "a",
          plugin: "b",
          query: "",
          keys: [],
          outputs: ["answer 1"],
          concerns: [],
        }));
        const secondAsk = await stream.nextMessage(exchange);
        assert.deepEqual([secondAsk.publisher, secondAsk.plugin, secondAsk.query, secondAsk.keys], [
          "c",
          "d",
          "e",
          [2],
        ]);
        stream.send(...exchange.send({
          kind: "reply",
          publisher: "c",
          plugin: "d",
          query: "e",
          keys: [],
          outputs: [{ answer: 2 }],
          concerns: [],
        }));
        const reply = await stream.nextMessage(exchange);
        assert.equal(reply.kind, "reply");
        assert.deepEqual(reply.outputs, [["answer 1", { answer: 2 }]]);
        await eventually(
          "the warning about the message out of turn",
          () =>
            plugin.records().some((r) =>
              r.level === "WARN" &&
              /exchange 15: a submit from the core is not allowed in state core-answering; ignored/
                .test(r.fields.message)
            ),
        );
      },
    );

    await t.step("a sub-query that core fails makes the query fail", async () => {
      const { exchange, chunks } = submit(17, "both", [1]);
      stream.send(...chunks);
      await stream.nextMessage(exchange);
      stream.send(...exchange.send({
        kind: "error",
        publisher: "a",
        plugin: "b",
        query: "",
        keys: [],
        outputs: [],
        concerns: ["no such plugin a/b"],
      }));
      // Promise.all in the handler rejects at once; its other query, already queued behind
      // the first, may still go out before the failure does. Core answers neither.
      let reply = await stream.nextMessage(exchange);
      if (reply.kind === "submit") {
        assert.deepEqual([reply.publisher, reply.plugin, reply.query], ["c", "d", "e"]);
        reply = await stream.nextMessage(exchange);
      }
      assert.equal(reply.kind, "error");
      assert.match(reply.concerns.at(-1)!, /"kind":"sub-query-failed".*no such plugin a\/b/);
    });

    await t.step(
      "configuration mistakes are statuses with messages, never gRPC errors",
      async () => {
        const statusOf = async (configuration: string) => {
          const { status, message } = await plugin.service.setConfiguration({ configuration });
          return [status, message];
        };
        assert.deepEqual(await statusOf("not json"), [
          ConfigurationStatus.PARSE_ERROR,
          `configuration could not be parsed correctly: ${errorText(() => JSON.parse("not json"))}`,
        ]);
        assert.deepEqual(await statusOf("{}"), [
          ConfigurationStatus.MISSING_REQUIRED_CONFIGURATION,
          "'mode' of type 'string'; possible values: a, b",
        ]);
        assert.deepEqual(await statusOf('{"mode":"a","limitt":1}'), [
          ConfigurationStatus.UNRECOGNIZED_CONFIGURATION,
          "'limitt' with value '1'; did you mean 'limit'?",
        ]);
        assert.equal(
          (await statusOf('{"mode":"a","limit":"x"}'))[0],
          ConfigurationStatus.INVALID_CONFIGURATION_VALUE,
        );
        assert.equal(
          (await statusOf('{"mode":"a","rules-file":"crash"}'))[0],
          ConfigurationStatus.INTERNAL_ERROR,
        );
        assert.deepEqual(await statusOf('{"mode":"a","rules-file":"/no/such/file"}'), [
          ConfigurationStatus.FILE_NOT_FOUND,
          "/no/such/file",
        ]);
        assert.equal(
          (await statusOf('{"mode":"a","rules-file":"parse"}'))[0],
          ConfigurationStatus.PARSE_ERROR,
        );
        assert.equal(
          (await statusOf('{"mode":"a","rules-file":"env"}'))[0],
          ConfigurationStatus.ENV_VAR_NOT_SET,
        );
        assert.equal(
          (await statusOf('{"mode":"a","rules-file":"program"}'))[0],
          ConfigurationStatus.MISSING_PROGRAM,
        );
        assert.equal(
          (await statusOf('{"mode":"a","rules-file":"unspecified"}'))[0],
          ConfigurationStatus.UNSPECIFIED,
        );
        assert.deepEqual(await statusOf('{"mode":"b"}'), [ConfigurationStatus.NONE, ""]);
        assert.equal(
          (await plugin.service.getDefaultPolicyExpression({ empty: {} })).policyExpression,
          "",
        );
      },
    );

    await t.step("console output becomes log records; nothing reaches stdout", async () => {
      const { exchange, chunks } = submit(23, "noisy", ['hi "there"']);
      stream.send(...chunks);
      assert.deepEqual((await stream.nextMessage(exchange)).outputs, ['hi "there"']);
      await eventually(
        "the captured lines",
        () => plugin.records().some((r) => r.fields.message === 'to stderr: hi "there"'),
      );
      const captured = plugin.records().filter((r) => r.fields.message.startsWith("to std"));
      assert.deepEqual(captured.map((r) => [r.level, r.fields.message]), [
        ["INFO", 'to stdout: hi "there"'],
        ["ERROR", 'to stderr: hi "there"'],
      ]);
    });

    await t.step("core closing the stream ends the process, status 0", async () => {
      stream.close();
      await stream.ended;
      const status = await plugin.exited();
      assert.equal(status.code, 0);
      assert.equal(status.signal, null);
      assert.equal(plugin.stdout, "");
    });
  } finally {
    await plugin.stop();
  }
});

function errorText(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    return (err as Error).message;
  }
  return "";
}

Deno.test("plugin server process: batches are split so no multi-key message needs two chunks", async () => {
  const plugin = new PluginProcess("tests/fixtures/hipcheck_plugin.ts", [], {
    HC_TEST_CHUNK: "64",
  });
  try {
    await plugin.ready();
    await plugin.service.setConfiguration({ configuration: '{"mode":"a"}' });
    const stream = new QueryStream(plugin.client);
    await stream.headers;
    const keys = ["a", "b", "c", "d", "e"].map((c) => c.repeat(20)); // 22 bytes of JSON each
    const big = "z".repeat(100); // one key over the budget: chunked, alone
    const { exchange, chunks } = submit(1, "ask", [[...keys, big]], undefined, 64);
    // The driver's own submit is chunked too (key over 64 bytes).
    assert.ok(chunks.length > 1);
    stream.send(...chunks);
    const seen: unknown[][] = [];
    for (;;) {
      const asked = await stream.nextMessage(exchange);
      if (asked.kind !== "submit") {
        assert.equal(asked.kind, "reply");
        assert.deepEqual(asked.outputs, [[...keys, big].map((k) => k.length)]);
        break;
      }
      seen.push(asked.keys);
      stream.send(...exchange.send({
        kind: "reply",
        publisher: "dummy",
        plugin: "sha256",
        query: "sha256",
        keys: [],
        outputs: asked.keys.map((k) => (k as string).length),
        concerns: [],
      }));
    }
    assert.deepEqual(seen, [[keys[0], keys[1]], [keys[2], keys[3]], [keys[4]], [big]]);
    stream.close();
    assert.equal((await plugin.exited()).code, 0);
  } finally {
    await plugin.stop();
  }
});

Deno.test("example dummy/sha256 as a process: [1] gives 75, 245, …; SIGTERM ends it, status 0", async () => {
  const plugin = new PluginProcess("examples/hipcheck/sha256.ts", ["--log-level", "error"]);
  try {
    await plugin.ready();
    const schemas = await Array.fromAsync(plugin.service.getQuerySchemas({ empty: {} }));
    assert.deepEqual(schemas.map((s) => s.queryName), ["", "sha256"]);
    assert.equal(
      (await plugin.service.setConfiguration({ configuration: "{}" })).status,
      ConfigurationStatus.NONE,
    );
    const stream = new QueryStream(plugin.client);
    await stream.headers;
    const { exchange, chunks } = submit(1, "sha256", [[1]], {
      publisher: "dummy",
      plugin: "sha256",
    });
    stream.send(...chunks);
    assert.deepEqual((await stream.nextMessage(exchange)).outputs, [SHA256_OF_1]);
    Deno.kill(plugin.pid, "SIGTERM"); // denoCommand runs deno itself: this is the plugin

    const status = await plugin.exited();
    assert.equal(status.code, 0);
    assert.deepEqual(plugin.records().filter((r) => r.level === "ERROR"), []);
  } finally {
    await plugin.stop();
  }
});

Deno.test("a plugin started without --port says so and exits non-zero", async () => {
  const [cmd, ...args] = denoCommand("examples/hipcheck/sha256.ts", "--log-level", "info");
  const out = await new Deno.Command(cmd, {
    args,
    env: { PLUGWIRE_TEST_MARK: TEST_MARK, NO_COLOR: "1" },
    stdout: "null",
    stderr: "piped",
  }).output();
  assert.notEqual(out.code, 0);
  assert.match(new TextDecoder().decode(out.stderr), /missing --port/);
});

testNoLeftovers();
