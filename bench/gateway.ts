/**
 * `deno task gateway-bench`: requests per second and p50/p99 latency of `proto.KV/Get` on the
 * KV example plugin (examples/kv/plugin.ts, AutoMTLS, unix socket) at 1, 16 and 64 concurrent
 * clients, through the gateway (HTTP + JSON + reflection transcoding) and directly (plugwire's
 * typed gRPC client), and the ratios. The gateway runs as `deno task gateway` does, in its own
 * process with its own KV plugin process; the bench client and the direct client share this
 * process. `BENCH_SECONDS` sets each run's length.
 *
 * @module
 */

import { startPlugin } from "../host.ts";
import { KV } from "../gen/kv/kv_pb.ts";
import { KV_HANDSHAKE } from "../examples/kv/shared.ts";

const SECONDS = Number(Deno.env.get("BENCH_SECONDS") ?? "4");
const CONCURRENCY = [1, 16, 64];
const PLUGIN = new URL("../examples/kv/plugin.ts", import.meta.url).pathname;
const CONFIG_FILE = new URL("../deno.json", import.meta.url).pathname;
const cmd = [Deno.execPath(), "run", "-A", "--quiet", `--config=${CONFIG_FILE}`, PLUGIN];

interface Result {
  rps: number;
  p50: number;
  p99: number;
}

async function measure(concurrency: number, call: () => Promise<void>): Promise<Result> {
  // Warm-up, then the timed run.
  const warmEnd = performance.now() + 500;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (performance.now() < warmEnd) await call();
  }));
  const latencies: number[] = [];
  const start = performance.now();
  const end = start + SECONDS * 1000;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (performance.now() < end) {
      const t = performance.now();
      await call();
      latencies.push(performance.now() - t);
    }
  }));
  const elapsed = (performance.now() - start) / 1000;
  latencies.sort((a, b) => a - b);
  const at = (q: number) =>
    latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))];
  return { rps: latencies.length / elapsed, p50: at(0.5), p99: at(0.99) };
}

/** Runs `deno task gateway`'s program on a config file; resolves with its URL once it listens. */
async function spawnGateway(
  configFile: string,
): Promise<{ url: string; child: Deno.ChildProcess }> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      `--config=${CONFIG_FILE}`,
      new URL("../internal/gateway/main.ts", import.meta.url).pathname,
      "--config",
      configFile,
    ],
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  for (;;) {
    const { done, value } = await reader.read();
    if (done) throw new Error(`the gateway exited: ${text}`);
    text += value;
    const url = /listening on (\S+)/.exec(text)?.[1];
    if (url) {
      void (async () => {
        while (!(await reader.read()).done) { /* drain */ }
      })();
      return { url, child };
    }
  }
}

const dir = await Deno.makeTempDir({ prefix: "plugwire-gw-bench-" });
const value = new TextEncoder().encode("bench value");
let gatewayProcess: Deno.ChildProcess | undefined;
try {
  await Deno.writeTextFile(
    `${dir}/gw.toml`,
    `listen = "127.0.0.1:0"\n[limits]\nconcurrency = 1024\n[plugins.kv]\npublic = true\n` +
      `cmd = ${JSON.stringify(cmd)}\ncwd = "${dir}"\nhandshake = { protocol_version = 1, ` +
      `magic_cookie_key = "${KV_HANDSHAKE.magicCookieKey}", magic_cookie_value = "${KV_HANDSHAKE.magicCookieValue}" }\n`,
  );
  const gateway = await spawnGateway(`${dir}/gw.toml`);
  gatewayProcess = gateway.child;
  await using direct = await startPlugin({
    cmd,
    cwd: dir,
    handshake: KV_HANDSHAKE,
    plugins: { kv: KV },
    autoMtls: true,
    logger: () => {},
  });
  const kv = direct.dispense("kv");
  await kv.put({ key: "bench", value });
  // The gateway's plugin runs in the same directory: it reads the same kv_bench file.

  const url = `${gateway.url}/plugins/kv/proto.KV/Get`;
  const body = JSON.stringify({ key: "bench" });
  const viaGateway = async () => {
    const response = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body,
    });
    if (response.status !== 200) throw new Error(`gateway answered ${response.status}`);
    await response.arrayBuffer();
  };
  const viaClient = async () => {
    await kv.get({ key: "bench" });
  };

  const rows: string[] = [];
  const fmt = (n: number, d = 0) => n.toFixed(d);
  for (const c of CONCURRENCY) {
    const g = await measure(c, viaGateway);
    const d = await measure(c, viaClient);
    rows.push(
      `| ${c} | ${fmt(g.rps)} | ${fmt(g.p50, 2)} | ${fmt(g.p99, 2)} | ${fmt(d.rps)} | ` +
        `${fmt(d.p50, 2)} | ${fmt(d.p99, 2)} | ${fmt(g.rps / d.rps, 2)} | ${
          fmt(g.p50 / d.p50, 2)
        } | ` +
        `${fmt(g.p99 / d.p99, 2)} |`,
    );
  }
  console.log(
    `proto.KV/Get, ${SECONDS} s per run, ${Deno.build.os} ${navigator.hardwareConcurrency} cores\n\n` +
      "| clients | gateway req/s | p50 ms | p99 ms | direct req/s | p50 ms | p99 ms | " +
      "req/s ratio | p50 ratio | p99 ratio |\n" +
      "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n" + rows.join("\n"),
  );
} finally {
  if (gatewayProcess) {
    gatewayProcess.kill("SIGTERM");
    await gatewayProcess.status;
  }
  await Deno.remove(dir, { recursive: true });
}
