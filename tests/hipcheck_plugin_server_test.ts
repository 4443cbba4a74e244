// The Hipcheck plugin server as a real process, driven over gRPC by a small core-like driver:
// response headers before any message, the setup RPCs, id 0 and stray ids, a 5 MiB chunked
// output, a failing query, sub-queries and split batches, configuration statuses, and the
// process ending on stream close and on SIGTERM.
import assert from "node:assert/strict";
import { create } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import {
  ConfigurationStatus,
  type InitiateQueryProtocolResponse,
  PluginService,
  type Query,
  QuerySchema,
  QueryState,
} from "../gen/hipcheck/v1/hipcheck_pb.ts";
import { type ServiceClient, serviceDefinition } from "../internal/grpc.ts";
import { createServiceClient } from "../internal/grpc_client.ts";
import {
  errorConcern,
  QueryExchange,
  type QueryMessage,
} from "../internal/hipcheck/query_state_machine.ts";
import { AsyncQueue } from "../internal/queue.ts";
import { denoCommand, eventually, TEST_MARK, testNoLeftovers } from "./_util.ts";

const SHA256_OF_1 = [
  75,
  245,
  18,
  47,
  52,
  69,
  84,
  197,
  59,
  222,
  46,
  187,
  140,
  210,
  183,
  227,
  209,
  96,
  10,
  214,
  49,
  195,
  133,
  165,
  215,
  204,
  226,
  60,
  119,
  133,
  69,
  154,
];

/** A port that was free a moment ago, found the way core finds one (bind 0, close). */
function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

/** The open query stream, from the driver's (core's) side. */
class QueryStream {
  readonly headers: Promise<void>;
  readonly received = new AsyncQueue<Query>();
  readonly ended: Promise<void>;
  readonly #call: grpc.ClientDuplexStream<unknown, InitiateQueryProtocolResponse>;
  readonly #iterator: AsyncIterator<Query>;
  messagesBeforeHeaders = 0;

  constructor(client: grpc.Client) {
    const def = serviceDefinition(PluginService).initiateQueryProtocol;
    this.#call = client.makeBidiStreamRequest(
      def.path,
      def.requestSerialize,
      def.responseDeserialize as (b: Buffer) => InitiateQueryProtocolResponse,
    );
    let gotHeaders = false;
    this.headers = new Promise((resolve) =>
      this.#call.on("metadata", () => {
        gotHeaders = true;
        resolve();
      })
    );
    this.#call.on("data", (response: InitiateQueryProtocolResponse) => {
      if (!gotHeaders) this.messagesBeforeHeaders++;
      this.received.push(response.query!);
    });
    this.ended = new Promise((resolve) => {
      this.#call.on("end", () => {
        this.received.end();
        resolve();
      });
      this.#call.on("error", () => {
        this.received.end();
        resolve();
      });
    });
    this.#iterator = this.received[Symbol.asyncIterator]();
  }

  send(...chunks: Query[]): void {
    for (const query of chunks) this.#call.write({ query });
  }

  async next(): Promise<Query> {
    const { value, done } = await this.#iterator.next();
    if (done) throw new Error("the plugin ended the stream");
    return value;
  }

  /** Reads chunks into `exchange` until it yields a whole message. */
  async nextMessage(exchange: QueryExchange): Promise<QueryMessage> {
    for (;;) {
      const message = exchange.receive(await this.next());
      if (message) return message;
    }
  }

  close(): void {
    this.#call.end();
  }
}

/** A plugin process started as Hipcheck core starts one. */
class PluginProcess {
  readonly stderrLines: string[] = [];
  readonly status: Promise<Deno.CommandStatus>;
  readonly client: grpc.Client;
  readonly service: ServiceClient<typeof PluginService>;
  readonly #child: Deno.ChildProcess;
  readonly #stderrDone: Promise<void>;

  constructor(script: string, args: string[], env: Record<string, string> = {}) {
    const port = freePort();
    const [cmd, ...rest] = denoCommand(script, "--port", String(port), ...args);
    const child = this.#child = new Deno.Command(cmd, {
      args: rest,
      env: { PLUGWIRE_TEST_MARK: TEST_MARK, NO_COLOR: "1", ...env },
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    this.status = this.#child.status;
    this.#stderrDone = (async () => {
      let rest = "";
      for await (const text of child.stderr.pipeThrough(new TextDecoderStream())) {
        const lines = (rest + text).split("\n");
        rest = lines.pop()!;
        this.stderrLines.push(...lines);
      }
      if (rest) this.stderrLines.push(rest);
    })();
    this.client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
    this.service = createServiceClient(PluginService, this.client);
  }

  /** The plugin's pid. */
  get pid(): number {
    return this.#child.pid;
  }

  /** Waits until the plugin accepts connections (core retries its connect the same way). */
  ready(): Promise<void> {
    return new Promise((resolve, reject) =>
      this.client.waitForReady(Date.now() + 30_000, (err) => err ? reject(err) : resolve())
    );
  }

  /** Log records (Hipcheck's JSON lines) on stderr. */
  records(): { level: string; fields: { message: string }; target: string }[] {
    return this.stderrLines.filter((l) => l.startsWith("{")).map((l) => JSON.parse(l));
  }

  async stop(): Promise<void> {
    this.client.close();
    try {
      this.#child.kill("SIGKILL");
    } catch {
      // already gone
    }
    await this.status;
    await this.#stderrDone;
  }

  async exited(): Promise<Deno.CommandStatus> {
    const status = await this.status;
    await this.#stderrDone;
    this.client.close();
    return status;
  }
}

const submit = (
  id: number,
  query: string,
  keys: unknown[],
  target = { publisher: "test", plugin: "fixture" },
  maxBytes?: number,
) => {
  const exchange = new QueryExchange(id, "core", maxBytes);
  const chunks = exchange.send({
    kind: "submit",
    ...target,
    query,
    keys,
    outputs: [],
    concerns: [],
  });
  return { exchange, chunks };
};

Deno.test("plugin server process: headers first, setup RPCs, queries, chunking, failures, ids", async (t) => {
  const started = performance.now();
  const plugin = new PluginProcess("tests/fixtures/hipcheck_plugin.ts", [
    "--log-level",
    "debug",
    "--some-future-flag",
    "value",
  ]);
  try {
    await plugin.ready();
    console.log(`    listening after ${(performance.now() - started).toFixed(0)} ms`);

    await t.step("setup RPCs answer in core's order", async () => {
      const schemas = await Array.fromAsync(plugin.service.getQuerySchemas({ empty: {} }));
      assert.deepEqual(schemas.map((s) => s.queryName), ["", "echo", "big", "fail", "ask", "both"]);
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
      await stream.headers; // would hang (as Hipcheck core does) without sendMetadata
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

    await t.step("core closing the stream ends the process, status 0", async () => {
      stream.close();
      await stream.ended;
      const status = await plugin.exited();
      assert.equal(status.code, 0);
      assert.equal(status.signal, null);
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
