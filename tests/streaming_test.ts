import assert from "node:assert/strict";
import { RpcError, startPlugin, Status } from "../host.ts";
import { Streams } from "../gen/streams/streams_pb.ts";
import { Test } from "../gen/grpctest/grpctest_pb.ts";
import { helperPlugin, testNoLeftovers } from "./_util.ts";

async function* numbers(...values: bigint[]) {
  for (const value of values) yield { value };
}

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

for (const autoMtls of [false, true]) {
  Deno.test(`streaming: all four kinds of RPC through a dispensed client${autoMtls ? " (mTLS)" : ""}`, async () => {
    await using plugin = await startPlugin({
      ...helperPlugin("serve"),
      plugins: { streams: Streams },
      autoMtls,
    });
    const streams = plugin.dispense("streams");
    assert.equal((await streams.next({ value: 41n })).value, 42n);
    assert.deepEqual((await collect(streams.count({ value: 4n }))).map((n) => n.value), [
      0n,
      1n,
      2n,
      3n,
    ]);
    assert.equal((await streams.sum(numbers(1n, 2n, 3n, 4n))).value, 10n);
    assert.deepEqual((await collect(streams.double(numbers(1n, 2n, 3n)))).map((n) => n.value), [
      2n,
      4n,
      6n,
    ]);
  });
}

Deno.test("streaming: an AbortSignal cancels a server stream", async () => {
  await using plugin = await startPlugin({
    ...helperPlugin("serve"),
    plugins: { streams: Streams },
  });
  const abort = new AbortController();
  const seen: bigint[] = [];
  await assert.rejects(
    (async () => {
      for await (
        const { value } of plugin.dispense("streams").count({ value: 1000n }, {
          signal: abort.signal,
        })
      ) {
        seen.push(value);
        if (value === 2n) abort.abort();
      }
    })(),
    (err) => err instanceof RpcError && err.code === Status.CANCELLED,
  );
  assert.deepEqual(seen, [0n, 1n, 2n]);
});

Deno.test("streaming: a deadline ends a call with DEADLINE_EXCEEDED", async () => {
  await using plugin = await startPlugin({
    ...helperPlugin("serve"),
    plugins: { streams: Streams },
  });
  await assert.rejects(
    collect(plugin.dispense("streams").count({ value: 1000n }, { timeoutMs: 50 })),
    (err) => err instanceof RpcError && err.code === Status.DEADLINE_EXCEEDED,
  );
});

Deno.test("streaming: a plugin that panics mid-stream ends the host's call and exits", async () => {
  await using plugin = await startPlugin({
    ...helperPlugin("serve"),
    plugins: { streams: Streams, test: Test },
  });
  const started = Date.now();
  const stream = collect(plugin.dispense("streams").count({ value: 100_000n }));
  await new Promise((r) => setTimeout(r, 50));
  void plugin.dispense("test").panic({ message: "boom" }).catch(() => {});
  await assert.rejects(stream, (err) => err instanceof RpcError && err.code === Status.UNAVAILABLE);
  const status = await plugin.exited;
  assert.notEqual(status.code, 0);
  console.log(`stream failed and exited resolved ${Date.now() - started} ms after the panic`);
});

Deno.test("streaming: a plugin killed mid-stream ends the host's call and exits", async () => {
  await using plugin = await startPlugin({
    ...helperPlugin("serve"),
    plugins: { streams: Streams },
  });
  const stream = collect(plugin.dispense("streams").count({ value: 100_000n }));
  await new Promise((r) => setTimeout(r, 50));
  Deno.kill(plugin.pid, "SIGKILL");
  await assert.rejects(stream, (err) => err instanceof RpcError && err.code === Status.UNAVAILABLE);
  assert.equal((await plugin.exited).signal, "SIGKILL");
});

testNoLeftovers();
