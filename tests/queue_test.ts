// Tests for internal/queue.ts: the unbounded async queue that feeds streaming calls.
import assert from "node:assert/strict";
import { AsyncQueue } from "../internal/queue.ts";

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
