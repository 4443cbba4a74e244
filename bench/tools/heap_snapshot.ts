/**
 * Runs a Deno script (a bundled plugin, say) and writes V8 heap snapshots of it, after a forced
 * garbage collection so that they show what is retained (Deno 2.9 has no `--heapsnapshot-signal`;
 * `node:inspector` gives the same `.heapsnapshot`). For the memory work in bench/README.md
 * ("Heap after the stream job"):
 *
 *     BENCH_HEAP_SNAPSHOT=/tmp/pw BENCH_HEAP_SNAPSHOT_AT_EXIT=pause-parent \
 *       deno run -A --v8-flags=--max-semi-space-size=1 bench/tools/heap_snapshot.ts pw.js
 *     deno run -A bench/tools/heap_summary.ts /tmp/pw-exit.heapsnapshot
 *
 * When to take one (any combination):
 * - `BENCH_HEAP_SNAPSHOT_MS=<ms>`: that many ms after the start;
 * - SIGUSR2, each time it comes (`kill -USR2 <pid>` right after a job);
 * - `BENCH_HEAP_SNAPSHOT_AT_EXIT=1`: when the script calls `Deno.exit()` or `process.exit()` (a
 *   plugin after its host's Shutdown, the moment `gobench host` has just read the plugin's RSS);
 *   the exit waits until the snapshot is written. `=pause-parent` also stops the parent process
 *   (SIGSTOP … SIGCONT) meanwhile: go-plugin's Kill gives a plugin 2 s to exit before it kills it,
 *   and a snapshot can take longer on a loaded machine.
 *
 * Each snapshot goes to `<BENCH_HEAP_SNAPSHOT>-<trigger>.heapsnapshot` (trigger `timer`,
 * `sigusr2-<n>`, `exit`; default prefix /tmp/plugwire), with `<same>.json` beside it: the
 * process's `Deno.memoryUsage()` and VmRSS/VmHWM (bytes) before and after the forced collection.
 *
 * @module
 */

import inspector from "node:inspector";
import process from "node:process";

const prefix = Deno.env.get("BENCH_HEAP_SNAPSHOT") ?? "/tmp/plugwire";
const session = new inspector.Session();
session.connect();
const post = (method: string, params: object = {}) =>
  new Promise<unknown>((resolve, reject) =>
    session.post(
      method,
      params,
      (err: Error | null, res?: object) => err ? reject(err) : resolve(res),
    )
  );

let sink: Deno.FsFile | undefined;
const encoder = new TextEncoder();
session.on("HeapProfiler.addHeapSnapshotChunk", (msg: { params: { chunk: string } }) => {
  sink?.writeSync(encoder.encode(msg.params.chunk));
});

/** VmRSS and VmHWM of this process, in bytes. */
function procStatus(): { VmRSS: number; VmHWM: number } {
  const status = Deno.readTextFileSync("/proc/self/status");
  const kb = (field: string) => Number(status.match(new RegExp(`^${field}:\\s+(\\d+)`, "m"))?.[1]);
  return { VmRSS: kb("VmRSS") * 1024, VmHWM: kb("VmHWM") * 1024 };
}

const memory = () => ({ ...Deno.memoryUsage(), ...procStatus() });

let queue = Promise.resolve();
/** Takes one snapshot (one at a time: the inspector streams a single snapshot's chunks). */
function snapshot(trigger: string): Promise<void> {
  const run = async () => {
    // The inspector's replies do not keep the event loop alive by themselves.
    const keepAlive = setInterval(() => {}, 1000);
    const start = performance.now();
    try {
      const before = memory();
      await post("HeapProfiler.enable");
      await post("HeapProfiler.collectGarbage");
      const afterGc = memory();
      const path = `${prefix}-${trigger}.heapsnapshot`;
      sink = Deno.openSync(path, { write: true, create: true, truncate: true });
      try {
        await post("HeapProfiler.takeHeapSnapshot", { reportProgress: false });
      } finally {
        sink.close();
        sink = undefined;
      }
      const ms = Math.round(performance.now() - start);
      Deno.writeTextFileSync(
        `${prefix}-${trigger}.json`,
        JSON.stringify({ trigger, ms, before, afterGc }, null, 2) + "\n",
      );
      console.error(`[heap_snapshot] ${path} (${ms} ms)`);
    } finally {
      clearInterval(keepAlive);
    }
  };
  queue = queue.then(run, run);
  return queue;
}

const afterMs = Number(Deno.env.get("BENCH_HEAP_SNAPSHOT_MS") ?? 0);
if (afterMs) {
  const timer = setTimeout(() => void snapshot("timer"), afterMs);
  Deno.unrefTimer(timer);
}

let signals = 0;
Deno.addSignalListener("SIGUSR2", () => void snapshot(`sigusr2-${++signals}`));

const atExit = Deno.env.get("BENCH_HEAP_SNAPSHOT_AT_EXIT");
if (atExit) {
  const realExit = Deno.exit.bind(Deno);
  let exiting = false;
  // Both end the process from the script's side; the script's code after the call does not run
  // on in practice (plugwire and the floors call exit last), and a second call is ignored.
  const exitAfterSnapshot = (code?: number): never => {
    if (!exiting) {
      exiting = true;
      const parent = Deno.ppid;
      const pause = atExit === "pause-parent" && parent > 1;
      if (pause) {
        Deno.kill(parent, "SIGSTOP");
        // Should the script die meanwhile (an uncaught error), the parent must not stay stopped.
        const resume = () => Deno.kill(parent, "SIGCONT");
        for (const event of ["error", "unhandledrejection", "unload"]) {
          globalThis.addEventListener(event, resume);
        }
      }
      void snapshot("exit").finally(() => {
        if (pause) Deno.kill(parent, "SIGCONT");
        realExit(code ?? 0);
      });
    }
    return undefined as never;
  };
  Object.defineProperty(Deno, "exit", { value: exitAfterSnapshot });
  process.exit = exitAfterSnapshot;
}

const [script, ...args] = Deno.args;
Object.defineProperty(Deno, "args", { value: args });
await import(new URL(script, `file://${Deno.cwd()}/`).href);
