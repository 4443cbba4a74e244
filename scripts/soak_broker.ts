/**
 * `deno task soak-broker`: the broker pattern that aborts Deno 2.9.6 inside nghttp2
 * (denoland/deno#36788, README "Known issues"), run long. Each run is a host process
 * (tests/fixtures/broker_loop_host.ts) that serves a fresh callback id per round to the counter
 * example plugin, which dials it, calls it once and closes it. A run survives when it completes
 * every round and exits 0; a run the runtime kills shows its signal and how far it got.
 *
 * Usage: `deno run -A scripts/soak_broker.ts [--runs 5] [--rounds 1000]`
 * (each run of each variant: close-servers and keep-servers, unix, tcp and unix + mTLS).
 *
 * @module
 */

import { parseArgs } from "node:util";

const { values } = parseArgs({
  options: {
    runs: { type: "string", default: "5" },
    rounds: { type: "string", default: "1000" },
  },
});
const runs = Number(values.runs);
const rounds = Number(values.rounds);
const root = new URL("../", import.meta.url);
const variants = [
  ["close-servers", "unix"],
  ["keep-servers", "unix"],
  ["close-servers", "tcp"],
  ["keep-servers", "unix", "mtls"],
];

let failed = 0;
let total = 0;
for (const variant of variants) {
  for (let run = 1; run <= runs; run++) {
    total++;
    const started = performance.now();
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        "--quiet",
        `--config=${new URL("deno.json", root).pathname}`,
        new URL("tests/fixtures/broker_loop_host.ts", root).pathname,
        String(rounds),
        ...variant,
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    const stderr = new TextDecoder().decode(out.stderr);
    const reached = [...stderr.matchAll(/^round (\d+)$/gm)].at(-1)?.[1] ?? "0";
    const ok = out.success && new TextDecoder().decode(out.stdout).includes(`"rounds":${rounds}`);
    if (!ok) failed++;
    const how = out.signal ? `killed by ${out.signal}` : `exit ${out.code}`;
    const abort = /Assertion .*failed|Segmentation/.exec(stderr)?.[0] ?? "";
    console.log(
      `${variant.join(" ")} run ${run}: ${ok ? "survived" : "DIED"} (${how}, ` +
        `${ok ? rounds : `after round ~${reached}`}, ${seconds} s)${abort ? ` ${abort}` : ""}`,
    );
  }
}
console.log(`soak-broker: ${total - failed} of ${total} runs survived ${rounds} rounds`);
if (failed > 0) Deno.exit(1);
