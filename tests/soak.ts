/**
 * `deno task soak`: start/call/kill cycles (half of them with AutoMTLS) and a 64-caller load run
 * against the helper plugin, with what a leak would leave counted before and after: plugin
 * processes, sockets and temp dirs, the host's open file descriptors. Every leftover count must
 * be 0 (exit status 1 otherwise); the host's RSS growth is reported.
 *
 * Environment: `SOAK_CYCLES` (default 1000), `SOAK_PARALLEL` cycles at a time (default 4),
 * `SOAK_CALLERS` (default 64) and `SOAK_CALLS` per caller (default 200).
 *
 * @module
 */

import { startPlugin } from "../host.ts";
import { KV } from "../gen/kv/kv_pb.ts";
import { helperPlugin, leftovers, processesWithMark, testRoot } from "./_util.ts";

const CYCLES = Number(Deno.env.get("SOAK_CYCLES") ?? "1000");
const PARALLEL = Number(Deno.env.get("SOAK_PARALLEL") ?? "4");
const CALLERS = Number(Deno.env.get("SOAK_CALLERS") ?? "64");
const CALLS = Number(Deno.env.get("SOAK_CALLS") ?? "200");

const encode = (s: string) => new TextEncoder().encode(s);
const decode = (b: Uint8Array) => new TextDecoder().decode(b);
const mib = (bytes: number) => (bytes / 1024 / 1024).toFixed(1);

/** Memory after a full GC (the task runs with --expose-gc), so garbage is not counted. */
function memory(): { rss: number; heap: number } {
  (globalThis as { gc?: () => void }).gc?.();
  const { rss, heapUsed } = Deno.memoryUsage();
  return { rss, heap: heapUsed };
}

function openFds(): number {
  return [...Deno.readDirSync("/proc/self/fd")].length;
}

/** Everything a leak leaves, counted now. */
function census() {
  const files = leftovers();
  return {
    processes: processesWithMark().length,
    sockets: files.filter((f) => /plugin\d+$/.test(f)).length,
    tempDirs: files.filter((f) => !/plugin\d+$/.test(f)).length,
    fds: openFds(),
  };
}

/** Waits until exited plugins are reaped (a killed process lingers for a moment). */
async function settle(): Promise<void> {
  for (let i = 0; i < 50 && processesWithMark().length > 0; i++) {
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function cycle(i: number): Promise<void> {
  const autoMtls = i % 2 === 1;
  const plugin = await startPlugin({ ...helperPlugin("serve"), plugins: { kv: KV }, autoMtls });
  try {
    const kv = plugin.dispense("kv");
    await kv.put({ key: "cycle", value: encode(String(i)) });
    const { value } = await kv.get({ key: "cycle" });
    if (decode(value) !== String(i)) throw new Error(`cycle ${i}: read ${decode(value)}`);
  } finally {
    await plugin.kill();
  }
}

async function cycles(): Promise<{ seconds: number; failures: string[] }> {
  const failures: string[] = [];
  let next = 0;
  const started = performance.now();
  const worker = async () => {
    for (let i = next++; i < CYCLES; i = next++) {
      try {
        await cycle(i);
      } catch (err) {
        failures.push(`cycle ${i}: ${(err as Error).message}`);
      }
      if ((i + 1) % 100 === 0) console.error(`soak: ${i + 1}/${CYCLES} cycles`);
    }
  };
  await Promise.all(Array.from({ length: PARALLEL }, worker));
  return { seconds: (performance.now() - started) / 1000, failures };
}

async function load(): Promise<{ seconds: number; calls: number; failures: string[] }> {
  const failures: string[] = [];
  const plugin = await startPlugin({ ...helperPlugin("serve"), plugins: { kv: KV } });
  const started = performance.now();
  try {
    const kv = plugin.dispense("kv");
    await Promise.all(
      Array.from({ length: CALLERS }, async (_, caller) => {
        for (let n = 0; n < CALLS; n++) {
          const key = `caller-${caller}`;
          try {
            await kv.put({ key, value: encode(String(n)) });
            const { value } = await kv.get({ key });
            if (decode(value) !== String(n)) throw new Error(`read ${decode(value)}, wrote ${n}`);
          } catch (err) {
            failures.push(`caller ${caller} call ${n}: ${(err as Error).message}`);
          }
        }
      }),
    );
  } finally {
    await plugin.kill();
  }
  return { seconds: (performance.now() - started) / 1000, calls: CALLERS * CALLS * 2, failures };
}

testRoot();
// One plugin before counting, so that what a first start loads for good (modules, grpc-js
// state) is not counted as a leak.
await cycle(-2);
await cycle(-1);
await settle();
const before = census();
const memBefore = memory();

const c = await cycles();
const l = await load();
await settle();
const after = census();
const memAfter = memory();
const rssBefore = memBefore.rss;
const rssAfter = memAfter.rss;

const leftover = {
  processes: after.processes,
  sockets: after.sockets,
  tempDirs: after.tempDirs,
  fds: after.fds - before.fds,
};
const report = {
  cycles: CYCLES,
  autoMtlsCycles: Math.floor(CYCLES / 2),
  cycleSeconds: Number(c.seconds.toFixed(1)),
  cycleFailures: c.failures.length,
  loadCallers: CALLERS,
  loadCalls: l.calls,
  loadSeconds: Number(l.seconds.toFixed(1)),
  loadCallsPerSecond: Math.round(l.calls / l.seconds),
  loadFailures: l.failures.length,
  leftover,
  hostRssMiB: { before: Number(mib(rssBefore)), after: Number(mib(rssAfter)) },
  hostHeapMiB: { before: Number(mib(memBefore.heap)), after: Number(mib(memAfter.heap)) },
};
console.log(JSON.stringify(report, null, 1));
for (const failure of [...c.failures, ...l.failures].slice(0, 10)) console.error(failure);
console.log(
  `soak: ${CYCLES} cycles (${report.autoMtlsCycles} AutoMTLS) in ${report.cycleSeconds} s, ` +
    `${c.failures.length} failed; load ${l.calls} calls from ${CALLERS} callers in ` +
    `${report.loadSeconds} s, ${l.failures.length} failed; leftover processes ` +
    `${leftover.processes}, sockets ${leftover.sockets}, temp dirs ${leftover.tempDirs}, host fds ` +
    `${leftover.fds}; host RSS ${mib(rssBefore)} -> ${mib(rssAfter)} MiB (+${
      mib(rssAfter - rssBefore)
    }), heap ${mib(memBefore.heap)} -> ${mib(memAfter.heap)} MiB`,
);
try {
  Deno.removeSync(testRoot(), { recursive: true });
} catch {
  // Already gone.
}
const clean = Object.values(leftover).every((n) => n === 0) && c.failures.length === 0 &&
  l.failures.length === 0;
Deno.exit(clean ? 0 : 1);
