// Tests for internal/queue.ts: the unbounded async queue that feeds streaming calls.
import assert from "node:assert/strict";
import { AsyncQueue, Rendezvous, Wakeup } from "../internal/queue.ts";

async function collect<T>(queue: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of queue) out.push(item);
  return out;
}

const tick = () => new Promise<void>((resolve) => setTimeout(resolve, 0));

Deno.test("AsyncQueue preserves the order of items pushed before iteration", async () => {
  const queue = new AsyncQueue<number>();
  for (let i = 0; i < 100; i++) queue.push(i);
  queue.end();
  assert.deepEqual(await collect(queue), Array.from({ length: 100 }, (_, i) => i));
});

Deno.test("AsyncQueue delivers items pushed while the consumer waits, in order", async () => {
  const queue = new AsyncQueue<string>();
  const result = collect(queue);
  await tick();
  queue.push("a");
  await tick();
  queue.push("b");
  queue.push("c");
  await tick();
  queue.push("d");
  queue.end();
  assert.deepEqual(await result, ["a", "b", "c", "d"]);
});

Deno.test("AsyncQueue.end() finishes iteration after the queued items", async () => {
  const queue = new AsyncQueue<number>();
  queue.push(1);
  queue.push(2);
  queue.end();
  assert.equal(queue.ended, true);
  assert.deepEqual(await collect(queue), [1, 2]);
});

Deno.test("AsyncQueue.end() wakes a waiting consumer with nothing queued", async () => {
  const queue = new AsyncQueue<number>();
  const result = collect(queue);
  await tick();
  queue.end();
  assert.deepEqual(await result, []);
});

Deno.test("AsyncQueue.push() after end() is ignored", async () => {
  const queue = new AsyncQueue<number>();
  assert.equal(queue.ended, false);
  queue.push(1);
  queue.end();
  queue.push(2);
  queue.push(3);
  assert.deepEqual(await collect(queue), [1]);
});

Deno.test("AsyncQueue.end() twice is harmless", async () => {
  const queue = new AsyncQueue<number>();
  queue.push(7);
  queue.end();
  queue.end();
  assert.deepEqual(await collect(queue), [7]);
});

Deno.test("AsyncQueue lets a consumer stop early and keep the rest queued", async () => {
  const queue = new AsyncQueue<number>();
  for (const n of [1, 2, 3]) queue.push(n);
  const first: number[] = [];
  for await (const n of queue) {
    first.push(n);
    if (n === 1) break;
  }
  assert.deepEqual(first, [1]);
  queue.end();
  assert.deepEqual(await collect(queue), [2, 3]);
});

Deno.test("Wakeup.wake() wakes every waiting consumer, and an aborted signal ends a wait", async () => {
  const wakeup = new Wakeup();
  const woken: string[] = [];
  const a = wakeup.wait().then(() => woken.push("a"));
  const b = wakeup.wait().then(() => woken.push("b"));
  await tick();
  assert.deepEqual(woken, []);
  wakeup.wake();
  await Promise.all([a, b]);
  assert.deepEqual(woken.sort(), ["a", "b"]);
  const controller = new AbortController();
  const c = wakeup.wait(controller.signal);
  controller.abort();
  await c; // resolves without a wake()
  await wakeup.wait(controller.signal); // already aborted: at once
});

Deno.test("Rendezvous hands a value to its taker, keeps an early one, times out and closes", async () => {
  const values = new Rendezvous<number, string>(50);
  const waiting = values.take(1, 1000, () => new Error("timeout 1"));
  values.deliver(1, "one");
  assert.equal(await waiting, "one");

  values.deliver(2, "two");
  values.deliver(2, "second two"); // the first one is kept
  assert.equal(await values.take(2, 1000, () => new Error("timeout 2")), "two");

  await assert.rejects(values.take(3, 10, () => new Error("timeout 3")), /timeout 3/);

  const closed = values.take(4, 1000, () => new Error("timeout 4"));
  values.close((key) => new Error(`closed ${key}`));
  await assert.rejects(closed, /closed 4/);
});

Deno.test("Rendezvous drops a value nobody takes within keepMs", async () => {
  const values = new Rendezvous<number, string>(10);
  values.deliver(5, "five");
  await new Promise((resolve) => setTimeout(resolve, 30));
  await assert.rejects(values.take(5, 10, () => new Error("gone")), /gone/);
});
