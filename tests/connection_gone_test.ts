/**
 * Every call on a connection that is gone fails with an RpcError, whatever the call and however
 * the connection went: CANCELLED after the host's own kill() or close(), UNAVAILABLE when the
 * plugin crashed or was killed from outside. grpc-js throws a plain `Error: Channel has been
 * shut down` from calls on a closed channel; callers must never see it.
 */

import assert from "node:assert/strict";
import { type PluginClient, RpcError, startPlugin, Status } from "../host.ts";
import { Streams } from "../gen/streams/streams_pb.ts";
import { Test } from "../gen/grpctest/grpctest_pb.ts";
import { eventually, helperPlugin, testNoLeftovers } from "./_util.ts";

type Code = typeof Status[keyof typeof Status];

async function* numbers(...values: bigint[]) {
  for (const value of values) yield { value };
}

/** Asserts that `run` rejects (or throws) an RpcError with `code`; returns it. */
async function rejectsWith(
  what: string,
  code: Code,
  run: () => Promise<unknown>,
): Promise<RpcError> {
  let thrown: unknown;
  try {
    await run();
  } catch (err) {
    thrown = err;
  }
  assert.ok(thrown instanceof RpcError, `${what}: expected an RpcError, got ${thrown}`);
  assert.equal(thrown.code, code, `${what}: ${thrown.message}`);
  return thrown;
}

/** Every kind of call, ping() and a broker dial, on a client whose connection is gone. */
async function everyCallFails(plugin: PluginClient, code: Code): Promise<RpcError[]> {
  const streams = plugin.client(Streams);
  return [
    await rejectsWith("unary", code, () => streams.next({ value: 1n })),
    await rejectsWith(
      "server streaming",
      code,
      () => Array.fromAsync(streams.count({ value: 3n })),
    ),
    await rejectsWith("client streaming", code, () => streams.sum(numbers(1n, 2n))),
    await rejectsWith("bidi streaming", code, () => Array.fromAsync(streams.double(numbers(1n)))),
    await rejectsWith("ping()", code, () => plugin.ping()),
    await rejectsWith("broker dial()", code, () => plugin.broker.dial(1, { timeoutMs: 200 })),
  ];
}

const options = { ...helperPlugin("serve"), plugins: { test: Test } };

Deno.test("after kill(): every call is CANCELLED", async () => {
  const plugin = await startPlugin(options);
  assert.equal((await plugin.client(Streams).next({ value: 1n })).value, 2n);
  await plugin.kill();
  for (const err of await everyCallFails(plugin, Status.CANCELLED)) {
    assert.match(err.details, /the client was closed/);
  }
});

Deno.test("after close(): every call is CANCELLED, and the plugin still runs", async () => {
  const plugin = await startPlugin(options);
  const config = plugin.reattachConfig();
  await plugin.close();
  await everyCallFails(plugin, Status.CANCELLED);
  // Hand it over to a second client, which kills it.
  const again = await startPlugin({ ...options, cmd: undefined, reattach: config });
  assert.equal((await again.client(Streams).next({ value: 2n })).value, 3n);
  await again.kill();
});

Deno.test("a plugin that crashed: every call is UNAVAILABLE, naming how it ended", async () => {
  const plugin = await startPlugin(options);
  plugin.dispense("test").panic({ message: "boom" }).catch(() => {});
  const status = await plugin.exited;
  assert.equal(status.code, 1);
  for (const err of await everyCallFails(plugin, Status.UNAVAILABLE)) {
    assert.match(err.details, /exited with status 1/);
  }
  await plugin.kill();
});

Deno.test("a plugin SIGKILLed from outside: calls are UNAVAILABLE before and after the host notices", async () => {
  const plugin = await startPlugin(options);
  const streams = plugin.client(Streams);
  const open = Array.fromAsync(streams.count({ value: 1_000_000n }));
  Deno.kill(plugin.pid, "SIGKILL");
  // Whether the host has seen the exit yet or not, the answer is the same.
  await rejectsWith(
    "unary, right after the kill",
    Status.UNAVAILABLE,
    () => streams.next({ value: 1n }),
  );
  await rejectsWith("a server stream open at the kill", Status.UNAVAILABLE, () => open);
  await eventually("the host to see the exit", () => plugin.hasExited);
  for (const err of await everyCallFails(plugin, Status.UNAVAILABLE)) {
    assert.match(err.details, /killed by SIGKILL/);
  }
  await plugin.kill();
});

testNoLeftovers();
