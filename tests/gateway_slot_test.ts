/**
 * The supervision of one plugin id (internal/gateway/slot.ts) with instances made in the test:
 * exponential backoff between restarts, the backoff reset, and reload's rollback. The real
 * processes are covered by tests/gateway_grpc_test.ts; here the schedule itself is checked.
 */

import assert from "node:assert/strict";
import { type Instance, PluginSlot } from "../internal/gateway/slot.ts";
import { eventually, testNoLeftovers } from "./_util.ts";

function instance(): Instance & { die(reason: string): void; stopped: boolean } {
  let die!: (reason: string) => void;
  const died = new Promise<string>((resolve) => die = resolve);
  const self = {
    tls: false,
    methods: ["*"],
    died,
    stopped: false,
    die,
    stop() {
      self.stopped = true;
      return Promise.resolve();
    },
  };
  return self;
}

Deno.test("slot: restarts double their delay while starts keep failing, up to the maximum", async () => {
  const events: string[] = [];
  let failures = 4;
  const started: ReturnType<typeof instance>[] = [];
  const slot = new PluginSlot({
    id: "p",
    kind: "grpc",
    concurrency: 1,
    drainMs: 100,
    backoffInitialMs: 5,
    backoffMaxMs: 20,
    onEvent: (line) => events.push(line),
    start: () => {
      if (failures-- > 0) return Promise.reject(new Error(`attempt failed`));
      const i = instance();
      started.push(i);
      return Promise.resolve(i);
    },
  });
  await slot.start();
  assert.equal(slot.state, "restarting");
  await eventually("the fifth attempt", () => slot.state === "ready");
  const delays = events.filter((e) => /restarting in/.test(e)).map((e) =>
    Number(/restarting in (\d+) ms/.exec(e)![1])
  );
  assert.deepEqual(delays, [5, 10, 20, 20]);
  assert.equal(slot.restarts, 1);
  assert.match(slot.status().lastError ?? "", /restart failed: attempt failed/);

  // A crash: restarted, the number counted, the reason kept.
  started[0].die("pid 1 exited (code 2)");
  await eventually("the restart after the crash", () => slot.restarts === 2);
  assert.equal(slot.status().lastError, "pid 1 exited (code 2)");
  assert.notEqual(slot.current, started[0]);
  await slot.stop();
  assert.ok(started.every((i) => i === started[0] || i.stopped));
  assert.equal(slot.state, "stopped");
  assert.equal(slot.acquire(), "unavailable");
});

Deno.test("slot: a failed reload keeps the old instance; a good one swaps and stops the old", async () => {
  const first = instance();
  const slot = new PluginSlot({
    id: "p",
    kind: "module",
    concurrency: 2,
    drainMs: 100,
    start: () => Promise.resolve(first),
  });
  await slot.start();
  await assert.rejects(slot.reload({ start: () => Promise.reject(new Error("no")) }), /no/);
  assert.equal(slot.current, first);
  assert.equal(slot.status().lastError, "reload failed: no");
  const second = instance();
  const lease = slot.acquire();
  assert.ok(typeof lease === "object");
  const reloading = slot.reload({ start: () => Promise.resolve(second) });
  await eventually("the switch", () => slot.current === second);
  assert.equal(first.stopped, false, "stopped while a request was in flight");
  lease.release(true);
  await reloading;
  assert.equal(first.stopped, true);
  await slot.stop();
});

testNoLeftovers();
