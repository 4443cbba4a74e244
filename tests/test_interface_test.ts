/**
 * go-plugin's test interface (Double, PrintKV, Bidirectional, PrintStdio, Stream, Panic), TS
 * host against TS plugin, plaintext and mTLS: the same checks the interop suite makes with Go
 * on the other end.
 */
import assert from "node:assert/strict";
import { type PluginLogRecord, RpcError, startPlugin, Status } from "../host.ts";
import { PingPong, Test } from "../gen/grpctest/grpctest_pb.ts";
import { eventually, helperPlugin, testNoLeftovers } from "./_util.ts";

const text = (chunks: Uint8Array[]) =>
  new TextDecoder().decode(new Uint8Array(chunks.flatMap((c) => [...c])));

for (const autoMtls of [false, true]) {
  Deno.test(`test interface: all six calls${autoMtls ? " over mTLS" : ""}`, async () => {
    const records: PluginLogRecord[] = [];
    const stdout: Uint8Array[] = [];
    const stderr: Uint8Array[] = [];
    await using plugin = await startPlugin({
      ...helperPlugin("serve"),
      name: "helper",
      plugins: { test: Test },
      autoMtls,
      logger: (r) => records.push(r),
      syncStdout: (b) => stdout.push(b.slice()),
      syncStderr: (b) => stderr.push(b.slice()),
    });
    const test = plugin.dispense("test");

    assert.equal((await test.double({ input: 21 })).output, 42);

    await test.printKV({ key: "foo", value: { case: "valueString", value: "bar" } });
    await test.printKV({ key: "foo", value: { case: "valueInt", value: 12 } });
    await eventually(
      "PrintKV logs",
      () => records.filter((r) => r.message === "PrintKV called").length === 2,
    );
    const kv = records.filter((r) => r.message === "PrintKV called");
    assert.deepEqual(kv.map((r) => [r.level, r.plugin, r.fields.foo]), [
      ["info", "helper", "bar"],
      ["info", "helper", 12],
    ]);

    const { id } = await plugin.broker.serve((s) =>
      s.add(PingPong, { ping: () => ({ msg: "pong" }) })
    );
    assert.equal((await test.bidirectional({ id })).id, id);

    await test.printStdio({
      stdout: new TextEncoder().encode("hello\nworld!"),
      stderr: new TextEncoder().encode("and some error\n messages!"),
    });
    await eventually(
      "stdio",
      () => text(stdout) === "hello\nworld!" && text(stderr) === "and some error\n messages!",
    );

    async function* inputs() {
      for (const input of [1, 2, 3, 4, 5]) yield { input };
    }
    const outputs: number[] = [];
    for await (const { output } of test.stream(inputs())) outputs.push(output);
    assert.deepEqual(outputs, [2, 4, 6, 8, 10]);

    await assert.rejects(
      test.panic({ message: "boom" }),
      (err) => err instanceof RpcError && err.code === Status.UNAVAILABLE,
    );
    const status = await plugin.exited;
    assert.notEqual(status.code, 0, "a panic ends the plugin with a failure status");
  });
}

testNoLeftovers();
