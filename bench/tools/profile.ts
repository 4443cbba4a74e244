/**
 * Runs a Deno script under V8's sampling profiler and writes a `.cpuprofile` when the process
 * script's top level has finished (Deno 2.9 has no `--cpu-prof`; `node:inspector` gives the same profile). For the tuning
 * work in bench/README.md:
 *
 *     BENCH_CPU_PROFILE=/tmp/host.cpuprofile deno run -A bench/tools/profile.ts bench/host.ts JOB
 *     deno run -A bench/tools/profile_summary.ts /tmp/host.cpuprofile
 *
 * `BENCH_CPU_PROFILE_MS=<ms>` writes the profile that many ms after the start instead, for a
 * script that does not end by itself (a plugin's start-up: `BASIC_PLUGIN=hello ... plugin.js`).
 *
 * @module
 */

import inspector from "node:inspector";
import { writeFileSync } from "node:fs";

const out = Deno.env.get("BENCH_CPU_PROFILE") ?? "/tmp/plugwire.cpuprofile";
const session = new inspector.Session();
session.connect();
const post = (method: string, params: object = {}) =>
  new Promise<{ profile?: unknown }>((resolve, reject) =>
    session.post(
      method,
      params,
      (err: Error | null, res?: object) =>
        err ? reject(err) : resolve((res ?? {}) as { profile?: unknown }),
    )
  );
await post("Profiler.enable");
await post("Profiler.setSamplingInterval", {
  interval: Number(Deno.env.get("BENCH_CPU_INTERVAL_US") ?? 100),
});
await post("Profiler.start");

let written = false;
async function write(): Promise<void> {
  if (written) return;
  written = true;
  const { profile } = await post("Profiler.stop");
  writeFileSync(out, JSON.stringify(profile));
}
const stopAfter = Number(Deno.env.get("BENCH_CPU_PROFILE_MS") ?? 0);
if (stopAfter) setTimeout(() => void write().then(() => Deno.exit(0)), stopAfter);

const [script, ...args] = Deno.args;
Object.defineProperty(Deno, "args", { value: args });
const url = new URL(script, `file://${Deno.cwd()}/`).href;
try {
  await import(url);
} finally {
  if (!stopAfter) await write();
}
