/**
 * `deno task bench`: plugwire against go-plugin v1.8.0 (Go) and python-plugin 0.1.0, in one run
 * on one machine. Builds the Go and Python sides (tests/interop/peers.sh), runs every job through
 * the three bench hosts (bench/host.ts, `gobench host`, bench/python/bench_host.py), and writes
 * bench/RESULTS.md, bench/chart.svg and bench/results.json. See bench/README.md.
 *
 * Environment:
 * - `BENCH_QUICK=1`: a smoke run (few repetitions, about a minute); writes to bench/.quick/.
 * - `BENCH_OUT_DIR`: where to write the results (default bench/, or bench/.quick/).
 * - `BENCH_PIN=0`: do not pin host and plugin to separate CPUs for the steady-state jobs.
 * - `BENCH_ONLY=cold,session,cycle,scale`: run only these sections.
 * - `BENCH_BEFORE=<git revision>`: also run every plugwire pair on the library as it was at that
 *   revision (checked out with `git archive`, the same bench code), interleaved job by job with
 *   the current tree so that both see the same machine load, and report before → after.
 *
 * @module
 */

import { bundlePlugin } from "../scripts/ship.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const QUICK = Deno.env.get("BENCH_QUICK") === "1";
const OUT_DIR = Deno.env.get("BENCH_OUT_DIR") ?? `${ROOT}bench/${QUICK ? ".quick/" : ""}`;
const ONLY = new Set((Deno.env.get("BENCH_ONLY") ?? "cold,session,cycle,scale").split(","));
const DENO = Deno.execPath();
const MARK = crypto.randomUUID();

/** Repetition counts: full run (about 3 minutes on 2 cores) and BENCH_QUICK (under 1). */
const CFG = QUICK
  ? {
    coldRounds: 1,
    coldReps: 3,
    unary: { warmup: 100, calls: 300, rounds: 1 },
    throughput: { concurrency: [1, 16, 64], calls: 300, rounds: 1 },
    stream: { msg_bytes: 16384, total_bytes: 4 << 20, rounds: 1 },
    stdio: { chunk_bytes: 65536, total_bytes: 2 << 20, rounds: 1 },
    broker: { calls: 20, warmup: 5 },
    scale: [1, 5, 10],
    scaleReps: 1,
    cycleReps: 1,
    cycleRounds: 1,
    jobTimeoutMs: 120_000,
  }
  : {
    coldRounds: 4,
    coldReps: 5,
    unary: { warmup: 1000, calls: 3000, rounds: 3 },
    throughput: { concurrency: [1, 16, 64], calls: 5000, rounds: 3 },
    stream: { msg_bytes: 16384, total_bytes: 32 << 20, rounds: 3 },
    stdio: { chunk_bytes: 65536, total_bytes: 16 << 20, rounds: 3 },
    broker: { calls: 200, warmup: 20 },
    scale: [1, 10, 25, 50],
    scaleReps: 2,
    cycleReps: 2,
    cycleRounds: 4,
    jobTimeoutMs: 300_000,
  };

// ---------------------------------------------------------------------------------------------
// Processes

function log(msg: string): void {
  console.error(`[bench ${((performance.now()) / 1000).toFixed(1).padStart(6)}s] ${msg}`);
}

async function output(cmd: string[], env?: Record<string, string>): Promise<string> {
  const out = await new Deno.Command(cmd[0], { args: cmd.slice(1), env, stderr: "inherit" })
    .output();
  if (!out.success) throw new Error(`${cmd.join(" ")} failed with status ${out.code}`);
  return new TextDecoder().decode(out.stdout);
}

/** Pids of processes (not us) whose environment carries this run's mark. */
function marked(): number[] {
  const pids: number[] = [];
  for (const entry of Deno.readDirSync("/proc")) {
    const pid = Number(entry.name);
    if (!pid || pid === Deno.pid) continue;
    try {
      if (Deno.readTextFileSync(`/proc/${pid}/environ`).includes(`BENCH_MARK=${MARK}`)) {
        pids.push(pid);
      }
    } catch {
      // Gone, or not ours to read.
    }
  }
  return pids;
}

/** Kills what this run started and left behind (found by the mark in their environment). */
function killLeftovers(): number {
  const pids = marked();
  for (const pid of pids) {
    try {
      Deno.kill(pid, "SIGKILL");
    } catch {
      // Already gone.
    }
  }
  return pids.length;
}

type HostKind = "ts" | "go" | "py";
type Tree = "now" | "before";
type PluginKind = "ts" | "tsb" | "go" | "py" | "floor" | "gfloor";

interface Peers {
  GO_BENCH: string;
  PY_VENV_PYTHON: string;
  PY_PLUGIN_SDIST: string;
}

let peers: Peers;
/** Roots of the library trees: the current one and, with BENCH_BEFORE, the old one. */
const roots: Record<Tree, string> = { now: ROOT, before: "" };
const bundles: Record<Tree, string> = { now: "", before: "" };
/** bench/floor_plugin.ts, bundled like the plugwire plugin. */
let floorBundle = "";
/** bench/grpcjs_floor_plugin.ts, bundled the same way. */
let gfloorBundle = "";
let pin = false;
let jobDir = "";

function hostCmd(host: HostKind, job: unknown, tree: Tree = "now"): string[] {
  const json = JSON.stringify(job);
  const root = roots[tree];
  switch (host) {
    case "ts":
      return [
        DENO,
        "run",
        "-A",
        "--quiet",
        `--config=${root}deno.json`,
        `${root}bench/host.ts`,
        json,
      ];
    case "go":
      return [peers.GO_BENCH, "host", json];
    case "py":
      return [
        peers.PY_VENV_PYTHON,
        `${ROOT}bench/python/bench_host.py`,
        peers.PY_PLUGIN_SDIST,
        json,
      ];
  }
}

function pluginCmd(plugin: PluginKind, tree: Tree = "now"): string[] {
  const root = roots[tree];
  switch (plugin) {
    case "ts":
      return [DENO, "run", "-A", "--quiet", `--config=${root}deno.json`, `${root}bench/plugin.ts`];
    case "tsb":
      return [DENO, ...shebangArgs(bundles[tree]), bundles[tree]];
    case "go":
      return [peers.GO_BENCH, "plugin"];
    case "py":
      return [peers.PY_VENV_PYTHON, `${ROOT}bench/python/greeter_plugin.py`, peers.PY_PLUGIN_SDIST];
    case "floor":
      return [DENO, ...shebangArgs(floorBundle), floorBundle];
    case "gfloor":
      return [DENO, ...shebangArgs(gfloorBundle), gfloorBundle];
  }
}

type Json = Record<string, unknown>;

/** What a bundle's own `#!/usr/bin/env -S deno run ...` line runs, after `deno`. */
function shebangArgs(bundle: string): string[] {
  const line = Deno.readTextFileSync(bundle).slice(0, 500).split("\n")[0];
  const words = line.split(/\s+/);
  return words.slice(words.indexOf("deno") + 1);
}

/**
 * Runs one job in a host and returns its JSON result. `pinned`: host on CPU 0 and plugin on
 * CPU 1 (when pinning is on), so each side has a core of its own, whatever the runtime.
 */
async function runJob(
  host: HostKind,
  job: Json & { cmd?: string[] },
  opts: { network?: "unix" | "tcp"; pinned?: boolean; partial?: boolean; tree?: Tree } = {},
): Promise<Json> {
  const pinned = pin && opts.pinned;
  if (pinned && job.cmd) job = { ...job, cmd: ["taskset", "-c", "1", ...job.cmd] };
  let cmd = hostCmd(host, job, opts.tree);
  if (pinned) cmd = ["taskset", "-c", "0", ...cmd];
  const tmp = await Deno.makeTempDir({ dir: jobDir, prefix: "job-" });
  const env: Record<string, string> = {
    BENCH_MARK: MARK,
    TMPDIR: tmp,
    BENCH_NETWORK: opts.network ?? "unix",
  };
  const child = new Deno.Command(cmd[0], {
    args: cmd.slice(1),
    env,
    stdout: "piped",
    stderr: "piped",
    // Like an ordinary Python install: let the venv and the sdist keep their bytecode caches
    // (this machine's environment sets PYTHONDONTWRITEBYTECODE).
  }).spawn();
  const timer = setTimeout(() => {
    log(`job timed out after ${CFG.jobTimeoutMs} ms; killing it`);
    child.kill("SIGKILL");
    killLeftovers();
  }, CFG.jobTimeoutMs);
  const out = await child.output();
  clearTimeout(timer);
  const leftovers = killLeftovers();
  if (leftovers) log(`killed ${leftovers} leftover process(es) of the job`);
  await Deno.remove(tmp, { recursive: true }).catch(() => {});
  const stdout = new TextDecoder().decode(out.stdout).trim().split("\n");
  const last = stdout[stdout.length - 1];
  const how = out.signal ? `killed by ${out.signal}` : `exit status ${out.code}`;
  if (opts.partial && !last.includes('"ok":true')) {
    // The host died: take what it reported before (`{"partial": [...]}` lines).
    const partial = stdout.filter((l) => l.startsWith('{"partial"')).at(-1);
    const stderr = new TextDecoder().decode(out.stderr).trim().split("\n").slice(-1)[0];
    if (partial) return { ...JSON.parse(partial), crashed: `${how}: ${stderr}` };
  }
  try {
    const res = JSON.parse(last) as Json;
    if (res.ok) return res;
    throw new Error(String(res.error));
  } catch (err) {
    const stderr = new TextDecoder().decode(out.stderr).trim().split("\n").slice(-8).join("\n");
    throw new Error(
      `${host} host job ${job.kind} failed (${how}): ${(err as Error).message}\n${stderr}`,
    );
  }
}

// ---------------------------------------------------------------------------------------------
// Statistics

function sorted(v: number[]): number[] {
  return [...v].sort((a, b) => a - b);
}

/** Nearest-rank percentile. */
function pct(v: number[], p: number): number {
  const s = sorted(v);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}

const median = (v: number[]) => pct(v, 50);

interface Stat {
  median: number;
  p99: number;
  n: number;
}

function stat(v: number[]): Stat {
  return { median: median(v), p99: pct(v, 99), n: v.length };
}

// ---------------------------------------------------------------------------------------------
// Pairs

interface Pair {
  id: string;
  label: string;
  host: HostKind;
  plugin: PluginKind;
  ref?: boolean;
  /** Which library tree its plugwire side runs (BENCH_BEFORE). */
  tree?: Tree;
}

const PAIRS: Pair[] = [
  { id: "pw-go", label: "plugwire → Go", host: "ts", plugin: "go" },
  { id: "go-pw", label: "Go → plugwire", host: "go", plugin: "ts" },
  { id: "pw-pw", label: "plugwire → plugwire", host: "ts", plugin: "ts" },
  { id: "go-go", label: "Go → Go", host: "go", plugin: "go", ref: true },
  { id: "py-py", label: "python-plugin → python-plugin", host: "py", plugin: "py", ref: true },
];
/** Cold start only: the plugwire plugin shipped as one file (`deno task bundle`). */
const BUNDLED: Pair[] = [
  { id: "go-pwb", label: "Go → plugwire (bundled)", host: "go", plugin: "tsb" },
  { id: "pw-pwb", label: "plugwire → plugwire (bundled)", host: "ts", plugin: "tsb" },
];

/**
 * The runtime's floor (bench/floor_plugin.ts: node:http2 alone, framed by hand), started by the
 * Go host like any plugin, bundled and run with the same flags as the bundled plugwire plugin.
 */
const FLOOR: Pair = {
  id: "go-floor",
  label: "Go → node:http2 floor (bundled)",
  host: "go",
  plugin: "floor",
  ref: true,
};
/**
 * The grpc-js floor (bench/grpcjs_floor_plugin.ts: the same plugin on @grpc/grpc-js alone, no
 * protobuf-es, no plugwire): what grpc-js costs by itself, between the floor and plugwire.
 */
const GFLOOR: Pair = {
  id: "go-gfloor",
  label: "Go → grpc-js floor (bundled)",
  host: "go",
  plugin: "gfloor",
  ref: true,
};
/**
 * The host side of the broker on grpc-js alone (bench/host.ts, job "gbroker"): the plugwire host
 * process serving go-plugin's callback pattern with a bare grpc-js Client and Server, no
 * protobuf-es, no plugwire client or broker, to the Go plugin; beside plugwire → Go's broker.
 */
const GBROKER: Pair = {
  id: "gbroker-go",
  label: "grpc-js floor host → Go",
  host: "ts",
  plugin: "go",
  ref: true,
};
/** The Terraform-like cycle: Go hosts only (Terraform is one). */
const CYCLE: Pair[] = [BUNDLED[0], PAIRS[1], PAIRS[3], FLOOR, GFLOOR];

/** Each pair, followed by its twin on the old library tree when BENCH_BEFORE is set. */
function withBefore(pairs: Pair[]): Pair[] {
  if (!roots.before) return pairs;
  return pairs.flatMap((p) =>
    p.host === "ts" || p.plugin === "ts" || p.plugin === "tsb"
      ? [p, { ...p, id: `${p.id}@before`, label: `${p.label} (before)`, tree: "before" as Tree }]
      : [p]
  );
}

/** Why a pair has no figure for something. */
const NA = {
  goTcp: "go-plugin v1.8.0's plugin.Serve listens only on unix sockets except on Windows",
  pyFeature:
    "python-plugin's greeter example has no streaming method, no broker callback and no output",
};

// ---------------------------------------------------------------------------------------------
// Results

interface Results {
  meta: Json;
  baselines: Record<string, Stat>;
  cold: Record<string, Record<string, { total: Stat; connect: Stat; cpu: Stat }>>;
  unary: Record<string, Record<string, Stat | string>>;
  /** CPU time per unary call (µs), host and plugin process, by pair and variant. */
  unaryCpu: Record<string, Record<string, { host: number; plugin: number }>>;
  /** The same calls over Deno's node:http2 without grpc-js (plugwire host side only). */
  floor: { stat?: Stat; hostCpu?: number };
  /** The same calls through a bare grpc-js Client (identity serializers), without plugwire. */
  gfloor: { stat?: Stat; hostCpu?: number };
  throughput: Record<string, Record<string, number> | string>;
  stream: Record<string, number | string>;
  stdio: Record<string, number | string>;
  broker: Record<string, Stat | string>;
  /** The broker round trip of {@link GBROKER} (host side on grpc-js alone → Go plugin). */
  gbrokerHost?: Stat | string;
  /** Failed attempts of the broker job, by pair (the host's last words). */
  brokerFailures: Record<string, string[]>;
  memory: Record<string, { idle?: number; peak?: number }>;
  /** Go host → the floor plugin and → the bundled plugwire plugin: unary, stream, stdio, RSS. */
  floorSession: Record<
    string,
    { unary?: Stat; pluginCpu?: number; stream?: number; stdio?: number }
  >;
  /** The Terraform-like cycle (ms per 3 × (start, 3 calls, Kill)) and Kill alone (ms). */
  cycle: Record<string, { cycle: Stat; kill: Stat }>;
  scale: Record<string, Record<string, { ms: number; hostRssKb: number; pluginsRssKb: number }>>;
  errors: string[];
}

const results: Results = {
  meta: {},
  baselines: {},
  cold: {},
  unary: {},
  unaryCpu: {},
  floor: {},
  gfloor: {},
  throughput: {},
  stream: {},
  stdio: {},
  broker: {},
  brokerFailures: {},
  memory: {},
  floorSession: {},
  cycle: {},
  scale: {},
  errors: [],
};

async function attempt<T>(what: string, fn: () => Promise<T>): Promise<T | undefined> {
  try {
    return await fn();
  } catch (err) {
    const msg = `${what}: ${(err as Error).message}`;
    log(`ERROR ${msg}`);
    results.errors.push(msg);
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// Sections

async function baselines(): Promise<void> {
  const hello = `${jobDir}/hello.ts`;
  await Deno.writeTextFile(hello, 'console.log("ready");\n');
  const reps = CFG.coldRounds * CFG.coldReps;
  const spawn = async (id: string, cmd: string[]) => {
    const res = await attempt(`spawn ${id}`, () => runJob("go", { kind: "spawn", cmd, reps }));
    if (res) results.baselines[id] = stat(res.spawn_ms as number[]);
  };
  await spawn("deno", [DENO, "run", "-A", "--quiet", `--config=${ROOT}deno.json`, hello]);
  await spawn("python", [peers.PY_VENV_PYTHON, "-c", "print('ready')"]);
}

async function cold(): Promise<void> {
  const all = [...withBefore([...PAIRS, ...BUNDLED]), FLOOR, GFLOOR];
  const samples: Record<
    string,
    Record<string, { total: number[]; connect: number[]; cpu: number[] }>
  > = {};
  for (let round = 0; round < CFG.coldRounds; round++) {
    for (const mtls of [false, true]) {
      for (const pair of all) {
        log(`cold start ${pair.label} ${mtls ? "mTLS" : "plaintext"} (round ${round + 1})`);
        const res = await attempt(`cold ${pair.id} mtls=${mtls}`, () =>
          runJob(pair.host, {
            kind: "cold",
            cmd: pluginCmd(pair.plugin, pair.tree),
            mtls,
            reps: CFG.coldReps,
          }, { tree: pair.tree }));
        if (!res) continue;
        const s = ((samples[pair.id] ??= {})[mtls ? "mtls" : "plain"] ??= {
          total: [],
          connect: [],
          cpu: [],
        });
        s.total.push(...res.cold_ms as number[]);
        s.connect.push(...res.connect_ms as number[]);
        s.cpu.push(...res.plugin_cpu_ms as number[]);
      }
    }
  }
  for (const [id, byTls] of Object.entries(samples)) {
    for (const [tls, s] of Object.entries(byTls)) {
      (results.cold[id] ??= {})[tls] = {
        total: stat(s.total),
        connect: stat(s.connect),
        cpu: stat(s.cpu),
      };
    }
  }
}

async function sessions(): Promise<void> {
  for (const network of ["unix", "tcp"] as const) {
    for (const mtls of [false, true]) {
      const variant = `${network}-${mtls ? "mtls" : "plain"}`;
      const full = network === "unix" && !mtls;
      for (const pair of withBefore(PAIRS)) {
        const row = (results.unary[pair.id] ??= {});
        if (network === "tcp" && pair.plugin === "go") {
          row[variant] = "n/a";
          continue;
        }
        const py = pair.host === "py";
        const job: Json = {
          kind: "session",
          cmd: pluginCmd(pair.plugin, pair.tree),
          mtls,
          unary: CFG.unary,
          ...(full
            ? {
              throughput: CFG.throughput,
              ...(py ? {} : { stream: CFG.stream, stdio: CFG.stdio }),
            }
            : {}),
        };
        log(`session ${pair.label} ${variant}${full ? " (+ throughput, streams)" : ""}`);
        const res = await attempt(
          `session ${pair.id} ${variant}`,
          () => runJob(pair.host, job, { network, pinned: true, tree: pair.tree }),
        );
        if (!res) continue;
        row[variant] = stat(res.unary_us as number[]);
        (results.unaryCpu[pair.id] ??= {})[variant] = {
          host: res.unary_host_cpu_us as number,
          plugin: res.unary_plugin_cpu_us as number,
        };
        if (!full) continue;
        const idle = (res.plugin_idle as Json | undefined)?.VmRSS as number | undefined;
        const peak = (res.plugin_peak as Json | undefined)?.VmHWM as number | undefined;
        results.memory[pair.id] = { idle, peak };
        const tp: Record<string, number> = {};
        for (const [c, v] of Object.entries(res.throughput as Record<string, number[]>)) {
          tp[c] = median(v);
        }
        results.throughput[pair.id] = tp;
        if (py) {
          results.stream[pair.id] = results.stdio[pair.id] = results.broker[pair.id] = "n/a";
        } else {
          results.stream[pair.id] = median(res.stream_mbps as number[]);
          results.stdio[pair.id] = median(res.stdio_mbps as number[]);
          await broker(pair);
          // Its grpc-js floor right after it, under the same load.
          if (pair.id === "pw-go") await broker(GBROKER, "gbroker");
        }
      }
    }
  }
}

/**
 * The library at `rev` (`git archive`), with the current bench code, for BENCH_BEFORE: its
 * plugwire pairs then run next to the current ones.
 */
async function prepareBefore(rev: string): Promise<void> {
  const dir = `${jobDir}/before/`;
  await Deno.mkdir(dir, { recursive: true });
  log(`checking out the library at ${rev} for the before/after comparison`);
  await output(["sh", "-c", `git -C '${ROOT}' archive '${rev}' | tar -x -C '${dir}'`]);
  await Deno.mkdir(`${dir}bench`, { recursive: true });
  for (const file of ["host.ts", "plugin.ts", "bench_service.ts"]) {
    await Deno.copyFile(`${ROOT}bench/${file}`, `${dir}bench/${file}`);
  }
  await Deno.remove(`${dir}node_modules`, { recursive: true }).catch(() => {});
  await Deno.symlink(`${ROOT}node_modules`, `${dir}node_modules`);
  roots.before = dir;
  bundles.before = `${jobDir}/bench-plugin-before.js`;
  // The tree's own ship.ts, so that the bundle carries that tree's shebang flags.
  await output([
    DENO,
    "run",
    "-A",
    `${dir}scripts/ship.ts`,
    "bundle",
    `${dir}bench/plugin.ts`,
    bundles.before,
  ]);
  results.meta.before = (await output(["git", "-C", ROOT, "log", "-1", "--format=%h %s", rev]))
    .trim();
}

/** Unary calls to the Go plugin over Deno's node:http2 without grpc-js: the runtime's floor. */
async function floor(): Promise<void> {
  log("floor: unary calls over node:http2 without grpc-js, plugwire host → Go plugin");
  const res = await attempt(
    "floor",
    () =>
      runJob("ts", { kind: "h2floor", cmd: pluginCmd("go"), unary: CFG.unary }, { pinned: true }),
  );
  if (res) {
    results.floor = {
      stat: stat(res.unary_us as number[]),
      hostCpu: res.unary_host_cpu_us as number,
    };
  }
  log("grpc-js floor: unary calls through a bare grpc-js Client, plugwire host → Go plugin");
  const g = await attempt(
    "grpc-js client floor",
    () =>
      runJob("ts", { kind: "gfloor", cmd: pluginCmd("go"), unary: CFG.unary }, { pinned: true }),
  );
  if (g) {
    results.gfloor = {
      stat: stat(g.unary_us as number[]),
      hostCpu: g.unary_host_cpu_us as number,
    };
  }
}

/**
 * The floors of the steady state, from a Go host: the hand-framed node:http2 plugin against the
 * bundled plugwire plugin (and its before twin), unary calls, the stream and stdio jobs (the
 * floor has no stdio: its figure is the stream's), and the plugin's RSS idle and at its peak.
 */
async function floorSessions(): Promise<void> {
  for (const pair of [FLOOR, GFLOOR, ...withBefore([BUNDLED[0]])]) {
    const isFloor = pair.plugin === "floor" || pair.plugin === "gfloor";
    const job: Json = {
      kind: "session",
      cmd: pluginCmd(pair.plugin, pair.tree),
      mtls: false,
      unary: CFG.unary,
      stream: CFG.stream,
      ...(isFloor ? {} : { stdio: CFG.stdio }),
    };
    log(`floor session ${pair.label} (unary, stream${isFloor ? "" : ", stdio"})`);
    const res = await attempt(
      `floor session ${pair.id}`,
      () => runJob(pair.host, job, { pinned: true, tree: pair.tree }),
    );
    if (!res) continue;
    results.floorSession[pair.id] = {
      unary: stat(res.unary_us as number[]),
      pluginCpu: res.unary_plugin_cpu_us as number,
      stream: median(res.stream_mbps as number[]),
      stdio: res.stdio_mbps ? median(res.stdio_mbps as number[]) : undefined,
    };
    results.memory[pair.id] = {
      idle: (res.plugin_idle as Json | undefined)?.VmRSS as number | undefined,
      peak: (res.plugin_peak as Json | undefined)?.VmHWM as number | undefined,
    };
  }
  // The broker callback on grpc-js alone (the node:http2 floor has no broker).
  await broker(GFLOOR);
}

/**
 * Terraform's use of a provider in one `plan`: (start, 3 calls, Shutdown) three times, by a Go
 * host, timed as a whole; and go-plugin's Kill alone (Shutdown RPC sent → process gone).
 */
async function cycle(): Promise<void> {
  const samples: Record<string, { cycle: number[]; kill: number[] }> = {};
  for (let round = 0; round < CFG.cycleRounds; round++) {
    for (const pair of withBefore(CYCLE)) {
      log(`Terraform-like cycle ${pair.label} (round ${round + 1})`);
      const res = await attempt(`cycle ${pair.id}`, () =>
        runJob(pair.host, {
          kind: "cycle",
          cmd: pluginCmd(pair.plugin, pair.tree),
          reps: CFG.cycleReps,
        }, { tree: pair.tree }));
      if (!res) continue;
      const s = (samples[pair.id] ??= { cycle: [], kill: [] });
      s.cycle.push(...res.cycle_ms as number[]);
      s.kill.push(...res.kill_ms as number[]);
    }
  }
  for (const [id, s] of Object.entries(samples)) {
    results.cycle[id] = { cycle: stat(s.cycle), kill: stat(s.kill) };
  }
}

/**
 * The broker round trips, in a host process of their own: a plugwire host serving broker
 * callbacks to a plugwire plugin can crash inside Deno's nghttp2 (see README.md), so a crash
 * costs only this figure, and the job is retried. `kind` "gbroker": the same rounds with the
 * host side on grpc-js alone ({@link GBROKER}), kept in `results.gbrokerHost`.
 */
async function broker(pair: Pair, kind: "session" | "gbroker" = "session"): Promise<void> {
  const store = (v: Stat | string) => {
    if (kind === "gbroker") results.gbrokerHost = v;
    else results.broker[pair.id] = v;
  };
  const job = {
    kind,
    cmd: pluginCmd(pair.plugin, pair.tree),
    mtls: false,
    broker: CFG.broker,
  };
  for (let attempt = 1; attempt <= 3; attempt++) {
    log(`broker round trips ${pair.label} (attempt ${attempt})`);
    try {
      const res = await runJob(pair.host, job, { pinned: true, partial: true, tree: pair.tree });
      if (res.crashed) {
        const samples = res.partial as number[];
        const msg = `host crashed after ${samples.length} of ${CFG.broker.calls} round trips ` +
          `(${res.crashed})`;
        log(`broker ${pair.id}: ${msg}`);
        results.brokerFailures[pair.id] = [...(results.brokerFailures[pair.id] ?? []), msg];
        if (attempt < 3) continue;
        store(stat(samples));
        return;
      }
      store(stat(res.broker_us as number[]));
      return;
    } catch (err) {
      const msg = (err as Error).message;
      log(`broker ${pair.id} attempt ${attempt} failed: ${msg.split("\n").slice(-1)[0]}`);
      results.brokerFailures[pair.id] = [...(results.brokerFailures[pair.id] ?? []), msg];
    }
  }
  store("failed");
}

async function scale(): Promise<void> {
  for (const n of CFG.scale) {
    // The largest count also for the bundled plugin and the floor (the targets' figures).
    const pairs = n === CFG.scale.at(-1)
      ? [...withBefore([...PAIRS, BUNDLED[0]]), FLOOR, GFLOOR]
      : withBefore(PAIRS);
    for (const pair of pairs) {
      for (let rep = 0; rep < CFG.scaleReps; rep++) {
        log(`scale ${pair.label}: ${n} plugin(s) at once`);
        const res = await attempt(
          `scale ${pair.id} n=${n}`,
          () =>
            runJob(
              pair.host,
              { kind: "scale", cmd: pluginCmd(pair.plugin, pair.tree), n },
              { tree: pair.tree },
            ),
        );
        if (!res) continue;
        const host = res.host as Json;
        const prev = results.scale[pair.id]?.[n];
        const cur = {
          ms: res.start_all_ms as number,
          hostRssKb: (host.VmHWM ?? host.VmRSS) as number,
          pluginsRssKb: res.plugins_rss_kb as number,
        };
        // Several repetitions: keep the fastest (the least disturbed by other load).
        if (!prev || cur.ms < prev.ms) (results.scale[pair.id] ??= {})[n] = cur;
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Machine and versions

async function meta(): Promise<Json> {
  const cpuinfo = await Deno.readTextFile("/proc/cpuinfo").catch(() => "");
  const meminfo = await Deno.readTextFile("/proc/meminfo").catch(() => "");
  const model = /model name\s*:\s*(.*)/.exec(cpuinfo)?.[1] ?? "unknown CPU";
  const memKb = Number(/MemTotal:\s*(\d+)/.exec(meminfo)?.[1] ?? 0);
  const kernel = (await output(["uname", "-sr"]).catch(() => "")).trim();
  const go = (await output(["go", "version"]).catch(() => "")).trim();
  const py = (await output([
    peers.PY_VENV_PYTHON,
    "-c",
    "import sys, importlib.metadata as m; print(sys.version.split()[0], m.version('grpclib'), m.version('protobuf'))",
  ]).catch(() => "? ? ?")).trim().split(" ");
  const denoJson = JSON.parse(await Deno.readTextFile(`${ROOT}deno.json`));
  const gomod = await Deno.readTextFile(`${ROOT}tests/interop/go/go.mod`);
  const modVersion = (mod: string) => new RegExp(`${mod} (v[^\\s]+)`).exec(gomod)?.[1] ?? "?";
  return {
    date: new Date().toISOString(),
    cpu: model,
    cores: navigator.hardwareConcurrency,
    memoryGiB: Math.round(memKb / 1024 / 1024),
    kernel,
    deno: Deno.version.deno,
    v8: Deno.version.v8,
    go,
    python: py[0],
    grpclib: py[1],
    pyProtobuf: py[2],
    grpcJs: String(denoJson.imports["@grpc/grpc-js"]).replace(/^npm:@grpc\/grpc-js@/, ""),
    protobufEs: String(denoJson.imports["@bufbuild/protobuf"]).replace(
      /^npm:@bufbuild\/protobuf@/,
      "",
    ),
    goPlugin: modVersion("github.com/hashicorp/go-plugin"),
    grpcGo: modVersion("google.golang.org/grpc"),
    pythonPlugin: "0.1.0",
    commit: (await output(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"]).catch(() => "?"))
      .trim(),
    quick: QUICK,
    pinned: pin,
    config: CFG,
  };
}

function loadavg(): string {
  try {
    return Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).join(" ");
  } catch {
    return "?";
  }
}

// ---------------------------------------------------------------------------------------------
// Report

const LABEL = Object.fromEntries(
  [...PAIRS, ...BUNDLED, FLOOR, GFLOOR, GBROKER].map((p) => [p.id, p.label]),
);

function labelOf(id: string): string {
  const [base, tree] = id.split("@");
  return (LABEL[base] ?? base) + (tree ? ` (${tree})` : "");
}

function fmt(v: number | undefined, digits?: number): string {
  if (v === undefined || Number.isNaN(v)) return "–";
  const d = digits ?? (Math.abs(v) >= 100 ? 0 : Math.abs(v) >= 10 ? 1 : 2);
  return v.toFixed(d);
}

/** `value / reference`, as `1.23×`. */
function ratio(v: number | undefined, ref: number | undefined): string {
  if (v === undefined || ref === undefined || !ref) return "n/a";
  const r = v / ref;
  return `${r >= 10 ? r.toFixed(0) : r >= 1 ? r.toFixed(2) : r.toFixed(2)}×`;
}

function table(head: string[], rows: string[][]): string {
  const line = (cells: string[]) => `| ${cells.join(" | ")} |`;
  return [line(head), line(head.map(() => "---")), ...rows.map(line)].join("\n");
}

function isStat(v: unknown): v is Stat {
  return typeof v === "object" && v !== null && "median" in v;
}

function report(): string {
  const m = results.meta;
  const out: string[] = [];
  const md = (s = "") => out.push(s);
  md("# plugwire benchmark results");
  md();
  md(
    `Generated by \`${
      results.meta.before ? `BENCH_BEFORE=${String(results.meta.before).split(" ")[0]} ` : ""
    }deno task bench\`${
      QUICK
        ? " with BENCH_QUICK=1 (a smoke run: too few " +
          "repetitions for conclusions)"
        : ""
    } on ${String(m.date).slice(0, 10)} (${m.date}), commit ` +
      `\`${m.commit}\`. How it measures: [README.md](README.md).`,
  );
  md();
  md(`- **Machine**: ${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB, ${m.kernel}.`);
  md(
    `- **plugwire**: Deno ${m.deno} (V8 ${m.v8}), @grpc/grpc-js ${m.grpcJs}, @bufbuild/protobuf ` +
      `${m.protobufEs}.`,
  );
  md(
    `- **Go**: ${String(m.go).replace(/^go version /, "")}, go-plugin ${m.goPlugin}, ` +
      `grpc-go ${m.grpcGo} (tests/interop/go/cmd/gobench).`,
  );
  md(
    `- **Python**: CPython ${m.python}, python-plugin ${m.pythonPlugin} (greeter example), ` +
      `grpclib ${m.grpclib}, protobuf ${m.pyProtobuf}.`,
  );
  md(
    `- **Load average** (1, 5, 15 min) at start: ${m.loadStart}; at end: ${m.loadEnd}. ` +
      `${
        m.pinned
          ? "Steady-state jobs (latency, throughput, streams, broker) ran with the host " +
            "pinned to CPU 0 and the plugin to CPU 1; cold start and scale ran unpinned."
          : "No CPU pinning."
      }`,
  );
  md(`- **Run time**: ${fmt(Number(m.seconds), 0)} s.`);
  md();
  md(
    "Ratios are `figure / reference`: against Go → Go and against python-plugin → " +
      "python-plugin. For times and memory lower is better; for throughput higher is better.",
  );
  md();

  const go = "go-go";
  const py = "py-py";

  // Cold start.
  md("## 1. Cold start: spawn to first answered RPC");
  md();
  md(
    `Median and p99 (nearest rank) of ${CFG.coldRounds * CFG.coldReps} starts per cell, in ms; ` +
      "`connect` is spawn to a connected client, `plugin CPU` the plugin process's CPU time " +
      "(all threads) when the first call has been answered. Unix socket. Deno's own start-up " +
      `(\`deno run\` of a one-line script, spawn to its first line): ` +
      `${fmt(results.baselines.deno?.median)} ms; Python's (\`python -c print\`): ` +
      `${fmt(results.baselines.python?.median)} ms.`,
  );
  md();
  const coldRows: string[][] = [];
  for (const tls of ["plain", "mtls"]) {
    for (const pair of [...PAIRS, ...BUNDLED, FLOOR, GFLOOR]) {
      const c = results.cold[pair.id]?.[tls];
      const goRef = results.cold[go]?.[tls]?.total.median;
      const pyRef = results.cold[py]?.[tls]?.total.median;
      coldRows.push([
        `${pair.label}`,
        tls === "plain" ? "plaintext" : "AutoMTLS",
        fmt(c?.total.median),
        fmt(c?.total.p99),
        fmt(c?.connect.median),
        fmt(c?.cpu.median),
        ratio(c?.total.median, goRef),
        ratio(c?.total.median, pyRef),
      ]);
    }
  }
  md(
    table(
      [
        "pair (host → plugin)",
        "TLS",
        "median",
        "p99",
        "connect",
        "plugin CPU",
        "× Go→Go",
        "× py→py",
      ],
      coldRows,
    ),
  );
  md();

  // Unary latency.
  md("## 2. Unary call latency");
  md();
  md(
    `One call at a time over one connection (grpctest.Test/Double; the python greeter's ` +
      `Greet), after ${CFG.unary.warmup} warm-up calls; ${CFG.unary.rounds} × ${CFG.unary.calls} ` +
      "samples per cell, in µs. n/a¹: " + NA.goTcp + ".",
  );
  md();
  const latRows: string[][] = [];
  for (const variant of ["unix-plain", "unix-mtls", "tcp-plain", "tcp-mtls"]) {
    for (const pair of PAIRS) {
      const v = results.unary[pair.id]?.[variant];
      const goRef = results.unary[go]?.[variant];
      const pyRef = results.unary[py]?.[variant];
      const [net, tls] = variant.split("-");
      const cells = isStat(v)
        ? [
          fmt(v.median),
          fmt(v.p99),
          ratio(v.median, isStat(goRef) ? goRef.median : undefined),
          ratio(v.median, isStat(pyRef) ? pyRef.median : undefined),
        ]
        : [v === "n/a" ? "n/a¹" : "error", "", "", ""];
      latRows.push([pair.label, net, tls === "plain" ? "plaintext" : "AutoMTLS", ...cells]);
    }
  }
  md(table(["pair", "transport", "TLS", "median", "p99", "× Go→Go", "× py→py"], latRows));
  md();

  // Where the time goes.
  md("### Where a unary call's time goes");
  md();
  md(
    "CPU time per call of each process during the unix/plaintext latency run (schedstat of " +
      "all threads; a call's CPU can exceed its latency share of a core when garbage " +
      "collection and other threads run beside it). The last row is the plugwire host's " +
      "side without grpc-js: the same Double calls framed by hand over one `node:http2` " +
      "session, the floor this runtime sets under any gRPC library built on node:http2; the " +
      "row after it, the same calls through a bare grpc-js Client (identity serializers, no " +
      "protobuf-es, no plugwire): what grpc-js alone costs.",
  );
  md();
  const cpuRows: string[][] = [];
  for (const pair of PAIRS) {
    const v = results.unary[pair.id]?.["unix-plain"];
    const c = results.unaryCpu[pair.id]?.["unix-plain"];
    cpuRows.push([
      pair.label,
      isStat(v) ? fmt(v.median) : "–",
      fmt(c?.host),
      fmt(c?.plugin),
    ]);
  }
  cpuRows.push([
    "node:http2 without grpc-js → Go",
    fmt(results.floor.stat?.median),
    fmt(results.floor.hostCpu),
    "",
  ]);
  cpuRows.push([
    "bare grpc-js Client (no protobuf-es, no plugwire) → Go",
    fmt(results.gfloor.stat?.median),
    fmt(results.gfloor.hostCpu),
    "",
  ]);
  md(
    table(
      ["pair", "median latency µs", "host CPU µs/call", "plugin CPU µs/call"],
      cpuRows,
    ),
  );
  md();

  // Throughput.
  md("## 3. Throughput over one connection");
  md();
  md(
    `Unary calls per second with 1, 16 and 64 calls in flight on one connection (unix socket, ` +
      `plaintext); median of ${CFG.throughput.rounds} rounds of ${CFG.throughput.calls} calls. ` +
      "Higher is better.",
  );
  md();
  const tpRows: string[][] = [];
  for (const pair of PAIRS) {
    const t = results.throughput[pair.id];
    const cells: string[] = [];
    for (const c of CFG.throughput.concurrency) {
      const v = typeof t === "object" ? t[c] : undefined;
      const goRef = results.throughput[go];
      const pyRef = results.throughput[py];
      cells.push(
        fmt(v, 0),
        ratio(v, typeof goRef === "object" ? goRef[c] : undefined),
        ratio(v, typeof pyRef === "object" ? pyRef[c] : undefined),
      );
    }
    tpRows.push([pair.label, ...cells]);
  }
  md(
    table([
      "pair",
      ...CFG.throughput.concurrency.flatMap((c) => [`c=${c} calls/s`, "× Go→Go", "× py→py"]),
    ], tpRows),
  );
  md();

  // Streams and broker.
  md("## 4. Streaming throughput and 5. broker round trip");
  md();
  md(
    `Bidirectional stream: plugwire.bench.Bench/Echo, ${CFG.stream.total_bytes >> 20} MiB in ` +
      `${CFG.stream.msg_bytes >> 10} KiB google.protobuf.BytesValue messages sent while the ` +
      "echoes are read; MB/s (10⁶ bytes) of payload one way. Stdio forwarding: " +
      `${CFG.stdio.total_bytes >> 20} MiB written to the plugin's stdout in ` +
      `${CFG.stdio.chunk_bytes >> 10} KiB PrintStdio calls, until all of it has reached the host ` +
      "through GRPCStdio. Broker round trip: go-plugin's callback pattern, timed as a whole: a " +
      "fresh broker id served by the host, Test/Bidirectional, the plugin dials that id and " +
      `calls PingPong/Ping back (${CFG.broker.calls} rounds). Median of ${CFG.stream.rounds} ` +
      `rounds for the streams. n/a²: ${NA.pyFeature}.`,
  );
  md();
  const sRows: string[][] = [];
  for (const pair of PAIRS) {
    const st = results.stream[pair.id];
    const io = results.stdio[pair.id];
    const br = results.broker[pair.id];
    const num = (v: unknown) => typeof v === "number" ? v : undefined;
    const goB = results.broker[go];
    sRows.push([
      pair.label,
      typeof st === "string" ? "n/a²" : fmt(st),
      ratio(num(st), num(results.stream[go])),
      typeof io === "string" ? "n/a²" : fmt(io),
      ratio(num(io), num(results.stdio[go])),
      isStat(br) ? fmt(br.median) : br === "n/a" ? "n/a²" : "–",
      isStat(br) ? fmt(br.p99) : "",
      ratio(isStat(br) ? br.median : undefined, isStat(goB) ? goB.median : undefined),
    ]);
  }
  const brokerNotes = Object.entries(results.brokerFailures).map(([id, f]) =>
    `${labelOf(id)}: the broker job's host process died in ${f.length} attempt(s) — ` +
    f.map((x) => x.split("\n")[0]).join("; ")
  );
  md(
    table([
      "pair",
      "bidi stream MB/s",
      "× Go→Go",
      "stdio MB/s",
      "× Go→Go",
      "broker median µs",
      "p99 µs",
      "× Go→Go",
    ], sRows),
  );
  md();
  if (brokerNotes.length) {
    md(
      "Broker failures (a Deno 2.9.6 nghttp2 crash in a process serving many short-lived " +
        "grpc-js servers, see README.md; the figure is from the samples reported before the " +
        "crash when no attempt finished):",
    );
    md();
    for (const n of brokerNotes) md(`- ${n}`);
    md();
  }

  // Memory.
  md("## 6. Memory");
  md();
  md(
    "Plugin RSS after warm-up (idle) and its peak (VmHWM) at the end of the unix/plaintext " +
      "session (after the throughput, stream, stdio and broker jobs); host peak RSS holding 1 and " +
      `${CFG.scale.at(-1)} plugins (from §7). MiB.`,
  );
  md();
  const mib = (kb: number | undefined) => kb === undefined ? undefined : kb / 1024;
  const memRows: string[][] = [];
  const last = CFG.scale.at(-1)!;
  for (const pair of PAIRS) {
    const mem = results.memory[pair.id];
    const s1 = results.scale[pair.id]?.[1];
    const sN = results.scale[pair.id]?.[last];
    const ref = (id: string) => results.memory[id]?.idle;
    memRows.push([
      pair.label,
      fmt(mib(mem?.idle)),
      ratio(mem?.idle, ref(go)),
      ratio(mem?.idle, ref(py)),
      fmt(mib(mem?.peak)),
      fmt(mib(s1?.hostRssKb)),
      ratio(s1?.hostRssKb, results.scale[go]?.[1]?.hostRssKb),
      fmt(mib(sN?.hostRssKb)),
      ratio(sN?.hostRssKb, results.scale[go]?.[last]?.hostRssKb),
      ratio(sN?.hostRssKb, results.scale[py]?.[last]?.hostRssKb),
    ]);
  }
  md(
    table([
      "pair",
      "plugin idle",
      "× Go",
      "× py",
      "plugin peak",
      "host, 1 plugin",
      "× Go",
      `host, ${last} plugins`,
      "× Go",
      "× py",
    ], memRows),
  );
  md();

  // Scale.
  md("## 7. Scale: starting many plugins at once");
  md();
  md(
    "Wall time from the first spawn until every plugin has answered its first call, all " +
      "started concurrently by one host (unix, plaintext), the host's peak RSS, and the sum of " +
      "the plugins' RSS. Growth: the slope between the smallest and largest count above one.",
  );
  md();
  const counts = CFG.scale;
  const first = counts.find((n) => n > 1) ?? counts[0];
  const scRows: string[][] = [];
  for (const pair of PAIRS) {
    const s = results.scale[pair.id] ?? {};
    const a = s[first];
    const b = s[last];
    const slope = a && b && last > first ? (b.ms - a.ms) / (last - first) : undefined;
    const memSlope = a && b && last > first
      ? (b.hostRssKb - a.hostRssKb) / 1024 / (last - first)
      : undefined;
    const goS = results.scale[go]?.[last]?.ms;
    const pyS = results.scale[py]?.[last]?.ms;
    scRows.push([
      pair.label,
      ...counts.map((n) => fmt(s[n]?.ms)),
      ratio(b?.ms, goS),
      ratio(b?.ms, pyS),
      fmt(mib(b?.hostRssKb)),
      fmt(mib(b?.pluginsRssKb)),
      fmt(slope),
      fmt(memSlope),
    ]);
  }
  md(
    table([
      "pair",
      ...counts.map((n) => `${n} (ms)`),
      `× Go (${last})`,
      `× py (${last})`,
      `host MiB (${last})`,
      `plugins MiB (${last})`,
      `ms per extra plugin (${first}→${last})`,
      "host MiB per extra plugin",
    ], scRows),
  );
  md();

  floorsReport(md);

  // Targets.
  md("## Targets");
  md();
  for (const line of targets()) md(`- ${line}`);
  md();

  if (results.meta.before) {
    md("## Before and after tuning");
    md();
    md(
      `Before: the library at \`${results.meta.before}\` (BENCH_BEFORE), run by the same ` +
        "bench code in the same run, each job right after its twin on the current tree, so " +
        "both saw the same machine load. The tunings are listed in [README.md](README.md).",
    );
    md();
    md(table(["figure", "pair", "before", "after", "after / before"], compare()));
    md();
  }

  if (results.errors.length) {
    md("## Errors");
    md();
    for (const e of results.errors) md(`- ${e.split("\n")[0]}`);
    md();
  }
  return out.join("\n");
}

/** Section 8: the runtime's floors beside the bundled plugwire plugin, the cycle, Shutdown. */
function floorsReport(md: (s?: string) => void): void {
  const f = results.floorSession["go-floor"];
  const g = results.floorSession["go-gfloor"];
  const b = results.floorSession["go-pwb"];
  const coldF = results.cold["go-floor"];
  const coldG = results.cold["go-gfloor"];
  const coldB = results.cold["go-pwb"];
  md("## 8. Floors: the runtime under a plugin");
  md();
  md(
    "The floor plugin (bench/floor_plugin.ts) is go-plugin's protocol written by hand on " +
      "`node:http2` alone (no grpc-js, no protobuf-es, no plugwire), bundled and run with the " +
      "same `deno run` flags as the bundled plugwire plugin; the Go host starts both the same " +
      "way. The client floor is the plugwire host's Double calls framed by hand over one " +
      "`node:http2` session to the Go plugin (§2). Unix socket; steady state pinned.",
  );
  md();
  md(
    "The grpc-js floor (bench/grpcjs_floor_plugin.ts) is the same plugin on `@grpc/grpc-js` " +
      "alone (identity serializers, the few fields as hand-written varints; no protobuf-es, no " +
      "plugwire), bundled and run the same way; its client floor is the same Double calls " +
      "through a bare grpc-js Client. It is what grpc-js, plugwire's gRPC stack, costs by " +
      "itself: `grpc-js − floor` is grpc-js's share of a figure, `plugwire − grpc-js` " +
      "plugwire's own (protobuf-es and the library). The node:http2 floor has no broker.",
  );
  md();
  md(
    "The grpc-js host floor of the broker is the plugwire host process serving go-plugin's " +
      "callback pattern to the Go plugin with a bare grpc-js Client and Server (identity " +
      "serializers, its own StartStream stream), timed like plugwire → Go's broker round trip " +
      "and run right after it.",
  );
  md();
  const mib = (kb?: number) => kb === undefined ? undefined : kb / 1024;
  const diff = (a?: number, b?: number, unit = "") =>
    a !== undefined && b !== undefined ? `${a - b >= 0 ? "+" : ""}${fmt(a - b)}${unit}` : "–";
  const rows: string[][] = [];
  const add = (figure: string, floor?: number, pw?: number, unit = "", gjs?: number) =>
    rows.push([
      figure,
      fmt(floor),
      fmt(gjs),
      fmt(pw),
      ratio(pw, floor),
      diff(pw, floor, unit),
      diff(gjs, floor, unit),
      diff(pw, gjs, unit),
    ]);
  add(
    "cold start, plaintext (ms)",
    coldF?.plain?.total.median,
    coldB?.plain?.total.median,
    " ms",
    coldG?.plain?.total.median,
  );
  add(
    "cold start, AutoMTLS (ms)",
    coldF?.mtls?.total.median,
    coldB?.mtls?.total.median,
    " ms",
    coldG?.mtls?.total.median,
  );
  add(
    "plugin CPU at first answer, plaintext (ms)",
    coldF?.plain?.cpu.median,
    coldB?.plain?.cpu.median,
    "",
    coldG?.plain?.cpu.median,
  );
  const pwGo = results.unary["pw-go"]?.["unix-plain"];
  add(
    "unary median, host side: client floor vs plugwire → Go (µs)",
    results.floor.stat?.median,
    isStat(pwGo) ? pwGo.median : undefined,
    "",
    results.gfloor.stat?.median,
  );
  add(
    "unary median, plugin side: Go → floor vs Go → plugwire bundled (µs)",
    f?.unary?.median,
    b?.unary?.median,
    "",
    g?.unary?.median,
  );
  add("unary p99, plugin side (µs)", f?.unary?.p99, b?.unary?.p99, "", g?.unary?.p99);
  add("plugin CPU per unary call (µs)", f?.pluginCpu, b?.pluginCpu, "", g?.pluginCpu);
  add("bidi stream (MB/s)", f?.stream, b?.stream, "", g?.stream);
  add("stdio (MB/s; the floors: their stream)", f?.stream, b?.stdio, "", g?.stream);
  add(
    "plugin RSS idle (MiB)",
    mib(results.memory["go-floor"]?.idle),
    mib(results.memory["go-pwb"]?.idle),
    "",
    mib(results.memory["go-gfloor"]?.idle),
  );
  add(
    "plugin RSS peak after stream (+ stdio) (MiB)",
    mib(results.memory["go-floor"]?.peak),
    mib(results.memory["go-pwb"]?.peak),
    "",
    mib(results.memory["go-gfloor"]?.peak),
  );
  const last = CFG.scale.at(-1)!;
  add(
    `${last} plugins at once (ms)`,
    results.scale["go-floor"]?.[last]?.ms,
    results.scale["go-pwb"]?.[last]?.ms,
    "",
    results.scale["go-gfloor"]?.[last]?.ms,
  );
  const brokerOf = (id: string) => {
    const v = results.broker[id];
    return isStat(v) ? v.median : undefined;
  };
  add(
    "broker round trip, Go host (µs; plugwire: from source)",
    undefined,
    brokerOf("go-pw"),
    "",
    brokerOf("go-gfloor"),
  );
  const pwGoBroker = results.broker["pw-go"];
  add(
    "broker round trip, host side: grpc-js floor host → Go vs plugwire → Go (µs)",
    undefined,
    isStat(pwGoBroker) ? pwGoBroker.median : undefined,
    "",
    isStat(results.gbrokerHost) ? results.gbrokerHost.median : undefined,
  );
  md(
    table([
      "figure",
      "floor",
      "grpc-js floor",
      "plugwire (bundled)",
      "× floor",
      "difference",
      "grpc-js − floor",
      "plugwire − grpc-js",
    ], rows),
  );
  md();
  md("### Terraform-like cycle and Shutdown");
  md();
  md(
    "What Terraform does to a provider in one `plan`: a Go host (go-plugin v1.8.0) runs " +
      "(start, 3 Double calls, Kill) three times; the figure is the whole, median of " +
      `${CFG.cycleRounds * CFG.cycleReps} runs. Kill is go-plugin's graceful stop: the ` +
      "Shutdown RPC, then waiting until the process has ended (it kills after 2 s): " +
      '"Shutdown RPC sent → plugin process gone", median and p99 of all the Kills.',
  );
  md();
  const cyRows: string[][] = [];
  const goCycle = results.cycle["go-go"]?.cycle.median;
  for (
    const id of [
      ...CYCLE.map((p) => p.id),
      ...(results.meta.before ? ["go-pwb@before", "go-pw@before"] : []),
    ]
  ) {
    const c = results.cycle[id];
    if (!c) continue;
    cyRows.push([
      labelOf(id),
      fmt(c.cycle.median),
      fmt(c.cycle.p99),
      ratio(c.cycle.median, goCycle),
      fmt(c.kill.median),
      fmt(c.kill.p99),
    ]);
  }
  md(
    table(
      ["pair", "cycle median ms", "cycle p99 ms", "× Go→Go", "Kill median ms", "Kill p99 ms"],
      cyRows,
    ),
  );
  md();
}

/** The targets of issue 15, each met or missed with its figures. */
function targets(): string[] {
  const out: string[] = [];
  const mark = (ok: boolean | undefined) => ok === undefined ? "❔" : ok ? "✅" : "❌";
  const both = (a?: number, b?: number) => a !== undefined && b !== undefined;
  const coldOf = (id: string, tls: string) => results.cold[id]?.[tls]?.total.median;
  const lat = (id: string) => {
    const s = results.unary[id]?.["unix-plain"];
    return isStat(s) ? s : undefined;
  };
  const verdict = (ok: boolean | undefined) =>
    ok === undefined ? "no figure" : ok ? "within reach on grpc-js alone" : "misses it alone";
  /**
   * Appends to the line just pushed what the grpc-js floor reaches for that target: a target it
   * misses alone is out of reach for any plugin on grpc-js (issue 15's "prove it").
   */
  const alone = (figures: string, ok: boolean | undefined) => {
    out[out.length - 1] += ` grpc-js floor: ${figures}: ${verdict(ok)}.`;
  };
  const over = (v?: number, ref?: number) =>
    v !== undefined && ref !== undefined ? `${v - ref >= 0 ? "+" : ""}${fmt(v - ref)}` : "–";

  const floorPlain = coldOf("go-floor", "plain");
  const floorTls = coldOf("go-floor", "mtls");
  const pwPlain = coldOf("go-pwb", "plain");
  const pwTls = coldOf("go-pwb", "mtls");
  const pyTls = coldOf("py-py", "mtls");
  out.push(
    `${mark(both(pwPlain, floorPlain) ? pwPlain! <= floorPlain! + 10 : undefined)} cold start, ` +
      `Go host → bundled plugwire plugin, plaintext ≤ start floor + 10 ms: ${fmt(pwPlain)} ms ` +
      `vs ${fmt(floorPlain)} ms (+${fmt((pwPlain ?? NaN) - (floorPlain ?? NaN))} ms).`,
  );
  const gPlain = coldOf("go-gfloor", "plain");
  alone(
    `${fmt(gPlain)} ms (${over(gPlain, floorPlain)} over the floor)`,
    both(gPlain, floorPlain) ? gPlain! <= floorPlain! + 10 : undefined,
  );
  out.push(
    `${
      mark(
        both(pwTls, floorTls) && pyTls !== undefined
          ? pwTls! <= floorTls! + 15 && pwTls! < pyTls
          : undefined,
      )
    } cold start, AutoMTLS ≤ TLS start floor + 15 ms and ahead of python-plugin: ${
      fmt(pwTls)
    } ms ` +
      `vs floor ${fmt(floorTls)} ms (+${fmt((pwTls ?? NaN) - (floorTls ?? NaN))} ms), ` +
      `python-plugin ${fmt(pyTls)} ms.`,
  );
  const gTls = coldOf("go-gfloor", "mtls");
  alone(
    `${fmt(gTls)} ms (${over(gTls, floorTls)} over the TLS floor)`,
    both(gTls, floorTls) && pyTls !== undefined
      ? gTls! <= floorTls! + 15 && gTls! < pyTls
      : undefined,
  );
  const kill = results.cycle["go-pwb"]?.kill;
  out.push(
    `${mark(kill ? kill.median <= 15 : undefined)} Shutdown RPC sent → plugin process gone ≤ 15 ` +
      `ms: median ${fmt(kill?.median)} ms, p99 ${fmt(kill?.p99)} ms (Go plugin ` +
      `${fmt(results.cycle["go-go"]?.kill.median)} ms, floor ` +
      `${fmt(results.cycle["go-floor"]?.kill.median)} ms).`,
  );
  const gKill = results.cycle["go-gfloor"]?.kill;
  alone(
    `median ${fmt(gKill?.median)} ms, p99 ${fmt(gKill?.p99)} ms`,
    gKill ? gKill.median <= 15 : undefined,
  );
  const cyc = results.cycle["go-pwb"]?.cycle.median;
  const cycTarget = floorPlain !== undefined ? 3 * (floorPlain + 25) : undefined;
  out.push(
    `${mark(both(cyc, cycTarget) ? cyc! <= cycTarget! : undefined)} Terraform-like cycle ≤ 3 × ` +
      `(start floor + 25 ms) = ${fmt(cycTarget)} ms: ${fmt(cyc)} ms (Go → Go ` +
      `${fmt(results.cycle["go-go"]?.cycle.median)} ms, floor ` +
      `${fmt(results.cycle["go-floor"]?.cycle.median)} ms).`,
  );
  const gCyc = results.cycle["go-gfloor"]?.cycle.median;
  alone(`${fmt(gCyc)} ms`, both(gCyc, cycTarget) ? gCyc! <= cycTarget! : undefined);
  const mem = results.memory["go-pwb"];
  const idle = mem?.idle !== undefined ? mem.idle / 1024 : undefined;
  const peak = mem?.peak !== undefined ? mem.peak / 1024 : undefined;
  const src = results.memory["go-pw"];
  out.push(
    `${mark(both(idle, peak) ? idle! <= 60 && peak! <= 100 : undefined)} plugin RSS idle ≤ 60 ` +
      `MiB / peak after the stream and stdio jobs ≤ 100 MiB (bundled): ${fmt(idle)} / ${
        fmt(peak)
      } ` +
      `MiB (from source: ${fmt((src?.idle ?? NaN) / 1024)} / ${fmt((src?.peak ?? NaN) / 1024)}; ` +
      `the floor: ${fmt((results.memory["go-floor"]?.idle ?? NaN) / 1024)} / ` +
      `${fmt((results.memory["go-floor"]?.peak ?? NaN) / 1024)}).`,
  );
  const gMem = results.memory["go-gfloor"];
  const gIdle = gMem?.idle !== undefined ? gMem.idle / 1024 : undefined;
  const gPeak = gMem?.peak !== undefined ? gMem.peak / 1024 : undefined;
  alone(
    `${fmt(gIdle)} / ${fmt(gPeak)} MiB (its peak after the stream job; it has no stdio)`,
    both(gIdle, gPeak) ? gIdle! <= 60 && gPeak! <= 100 : undefined,
  );
  const client = lat("pw-go")?.median;
  const clientFloor = results.floor.stat?.median;
  const server = results.floorSession["go-pwb"]?.unary?.median;
  const serverFloor = results.floorSession["go-floor"]?.unary?.median;
  out.push(
    `${
      mark(
        both(client, clientFloor) && both(server, serverFloor)
          ? client! <= 1.05 * clientFloor! && server! <= 1.05 * serverFloor!
          : undefined,
      )
    } unary median ≤ 1.05× the floors: plugwire → Go ${fmt(client)} µs vs client floor ` +
      `${fmt(clientFloor)} µs (${ratio(client, clientFloor)}); Go → plugwire (bundled) ` +
      `${fmt(server)} µs vs server floor ${fmt(serverFloor)} µs (${ratio(server, serverFloor)}).`,
  );
  const gClient = results.gfloor.stat?.median;
  const gServer = results.floorSession["go-gfloor"]?.unary?.median;
  alone(
    `bare grpc-js Client → Go ${fmt(gClient)} µs (${ratio(gClient, clientFloor)} the client ` +
      `floor), Go → grpc-js floor ${fmt(gServer)} µs (${ratio(gServer, serverFloor)} the server ` +
      "floor)",
    both(gClient, clientFloor) && both(gServer, serverFloor)
      ? gClient! <= 1.05 * clientFloor! && gServer! <= 1.05 * serverFloor!
      : undefined,
  );
  const goP99 = lat("go-go")?.p99;
  const p99s = ["pw-go", "go-pw", "pw-pw"].map((id) => [id, lat(id)?.p99] as const);
  out.push(
    `${
      mark(
        goP99 !== undefined && p99s.every(([, v]) => v !== undefined)
          ? p99s.every(([, v]) => v! <= 3 * goP99)
          : undefined,
      )
    } unary p99 ≤ 3× Go's p99 (${fmt(goP99)} µs): ` +
      p99s.map(([id, v]) => `${LABEL[id]} ${fmt(v)} µs (${ratio(v, goP99)})`).join(", ") + ".",
  );
  const gClientP99 = results.gfloor.stat?.p99;
  const gServerP99 = results.floorSession["go-gfloor"]?.unary?.p99;
  alone(
    `bare grpc-js Client → Go ${fmt(gClientP99)} µs (${ratio(gClientP99, goP99)}), ` +
      `Go → grpc-js floor ${fmt(gServerP99)} µs (${ratio(gServerP99, goP99)})`,
    goP99 !== undefined && both(gClientP99, gServerP99)
      ? gClientP99! <= 3 * goP99 && gServerP99! <= 3 * goP99
      : undefined,
  );
  const goBroker = results.broker["go-go"];
  const gb = isStat(goBroker) ? goBroker.median : undefined;
  const brokers = ["pw-go", "go-pw", "pw-pw"].map((id) => {
    const v = results.broker[id];
    return [id, isStat(v) ? v.median : undefined] as const;
  });
  out.push(
    `${
      mark(
        gb !== undefined && brokers.every(([, v]) => v !== undefined)
          ? brokers.every(([, v]) => v! <= 2 * gb)
          : undefined,
      )
    } broker round trip ≤ 2× Go (${fmt(gb)} µs): ` +
      brokers.map(([id, v]) => `${LABEL[id]} ${fmt(v)} µs (${ratio(v, gb)})`).join(", ") + ".",
  );
  const gBrokerStat = results.broker["go-gfloor"];
  const gBroker = isStat(gBrokerStat) ? gBrokerStat.median : undefined;
  alone(
    `Go → grpc-js floor ${fmt(gBroker)} µs (${ratio(gBroker, gb)})`,
    both(gBroker, gb) ? gBroker! <= 2 * gb! : undefined,
  );
  const hostBroker = isStat(results.gbrokerHost) ? results.gbrokerHost.median : undefined;
  const hostRatio = ratio(hostBroker, gb);
  out[out.length - 1] += ` grpc-js host floor → Go: ${fmt(hostBroker)} µs ` +
    `(${hostRatio === "n/a" ? hostRatio : `${hostRatio} Go`}): ${
      verdict(both(hostBroker, gb) ? hostBroker! <= 2 * gb! : undefined)
    }.`;
  const sf = results.floorSession["go-floor"]?.stream;
  const bs = results.floorSession["go-pwb"]?.stream;
  const bo = results.floorSession["go-pwb"]?.stdio;
  out.push(
    `${
      mark(
        sf !== undefined && bs !== undefined && bo !== undefined
          ? bs >= 0.9 * sf && bo >= 0.9 * sf
          : undefined,
      )
    } bidi stream and stdio ≥ 0.9× the stream floor (${fmt(sf)} MB/s): Go → plugwire (bundled) ` +
      `stream ${fmt(bs)} MB/s (${ratio(bs, sf)}), stdio ${fmt(bo)} MB/s (${ratio(bo, sf)}).`,
  );
  const gs = results.floorSession["go-gfloor"]?.stream;
  alone(
    `stream ${fmt(gs)} MB/s (${ratio(gs, sf)})`,
    both(gs, sf) ? gs! >= 0.9 * sf! : undefined,
  );
  const last = CFG.scale.at(-1)!;
  const many = results.scale["go-pwb"]?.[last]?.ms;
  const manyTarget = floorPlain !== undefined ? last * floorPlain / 2 * 1.2 : undefined;
  out.push(
    `${mark(both(many, manyTarget) ? many! <= manyTarget! : undefined)} ${last} plugins started ` +
      `at once by a Go host ≤ ${last} × start floor / 2 cores + 20 % = ${fmt(manyTarget)} ms: ` +
      `bundled ${fmt(many)} ms, from source ${fmt(results.scale["go-pw"]?.[last]?.ms)} ms ` +
      `(the floor itself: ${fmt(results.scale["go-floor"]?.[last]?.ms)} ms).`,
  );
  const gMany = results.scale["go-gfloor"]?.[last]?.ms;
  alone(`${fmt(gMany)} ms`, both(gMany, manyTarget) ? gMany! <= manyTarget! : undefined);
  return out;
}

function compare(): string[][] {
  const was = (id: string) => `${id}@before`;
  const rows: string[][] = [];
  const row = (figure: string, id: string, before?: number, after?: number, digits?: number) => {
    if (before === undefined && after === undefined) return;
    rows.push([
      figure,
      LABEL[id] ?? id,
      fmt(before, digits),
      fmt(after, digits),
      before && after ? `${(after / before).toFixed(2)}×` : "–",
    ]);
  };
  const ids = ["pw-go", "go-pw", "pw-pw", "go-pwb", "pw-pwb"];
  for (const tls of ["plain", "mtls"]) {
    for (const id of ids) {
      row(
        `cold start ${tls} (ms)`,
        id,
        results.cold[was(id)]?.[tls]?.total.median,
        results.cold[id]?.[tls]?.total.median,
      );
    }
  }
  for (const v of ["unix-plain", "unix-mtls", "tcp-plain", "tcp-mtls"]) {
    for (const id of ids) {
      const b = results.unary[was(id)]?.[v];
      const a = results.unary[id]?.[v];
      row(
        `latency ${v} (µs)`,
        id,
        isStat(b) ? b.median : undefined,
        isStat(a) ? a.median : undefined,
      );
    }
  }
  for (const c of CFG.throughput.concurrency) {
    for (const id of ids) {
      const b = results.throughput[was(id)];
      const a = results.throughput[id];
      row(
        `throughput c=${c} (calls/s)`,
        id,
        typeof b === "object" ? b[c] : undefined,
        typeof a === "object" ? a[c] : undefined,
        0,
      );
    }
  }
  for (const id of ["go-pwb", "go-pw"]) {
    row(
      "Terraform-like cycle (ms)",
      id,
      results.cycle[was(id)]?.cycle.median,
      results.cycle[id]?.cycle.median,
    );
    row(
      "Shutdown → process gone (ms)",
      id,
      results.cycle[was(id)]?.kill.median,
      results.cycle[id]?.kill.median,
    );
  }
  {
    const id = "go-pwb";
    const fs = results.floorSession;
    row("unary median, bundled (µs)", id, fs[was(id)]?.unary?.median, fs[id]?.unary?.median);
    row("unary p99, bundled (µs)", id, fs[was(id)]?.unary?.p99, fs[id]?.unary?.p99);
    row("bidi stream, bundled (MB/s)", id, fs[was(id)]?.stream, fs[id]?.stream);
    row("stdio, bundled (MB/s)", id, fs[was(id)]?.stdio, fs[id]?.stdio);
    const mem = (t: string, k: "idle" | "peak") =>
      (results.memory[t]?.[k] ?? NaN) / 1024 || undefined;
    row("plugin peak RSS, bundled (MiB)", id, mem(was(id), "peak"), mem(id, "peak"));
  }
  for (const id of ids) {
    const num = (v: unknown) => typeof v === "number" ? v : undefined;
    row("bidi stream (MB/s)", id, num(results.stream[was(id)]), num(results.stream[id]));
    row("stdio (MB/s)", id, num(results.stdio[was(id)]), num(results.stdio[id]));
    const b = results.broker[was(id)];
    const a = results.broker[id];
    row("broker (µs)", id, isStat(b) ? b.median : undefined, isStat(a) ? a.median : undefined);
    row(
      "plugin idle RSS (MiB)",
      id,
      (results.memory[was(id)]?.idle ?? NaN) / 1024 || undefined,
      (results.memory[id]?.idle ?? NaN) / 1024 || undefined,
    );
    const last = CFG.scale.at(-1)!;
    row(
      `start ${last} plugins (ms)`,
      id,
      results.scale[was(id)]?.[last]?.ms,
      results.scale[id]?.[last]?.ms,
    );
  }
  return rows;
}

// ---------------------------------------------------------------------------------------------
// Chart: cold start and latency per pair, hand-written SVG.

function esc(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

function chart(): string {
  const pairs = PAIRS;
  const colors: Record<string, string> = {
    "pw-go": "#2f7ed8",
    "go-pw": "#5a9be6",
    "pw-pw": "#0b4f9c",
    "go-go": "#00a37a",
    "py-py": "#e0a100",
  };
  const panels = [
    {
      title: "Cold start, ms (spawn → first answered call)",
      unit: "ms",
      series: [
        { name: "plaintext", get: (id: string) => results.cold[id]?.plain?.total.median },
        { name: "AutoMTLS", get: (id: string) => results.cold[id]?.mtls?.total.median },
      ],
    },
    {
      title: "Unary latency, µs (median, unix socket)",
      unit: "µs",
      series: [
        {
          name: "plaintext",
          get: (id: string) => {
            const s = results.unary[id]?.["unix-plain"];
            return isStat(s) ? s.median : undefined;
          },
        },
        {
          name: "AutoMTLS",
          get: (id: string) => {
            const s = results.unary[id]?.["unix-mtls"];
            return isStat(s) ? s.median : undefined;
          },
        },
      ],
    },
  ];
  const W = 960;
  const labelW = 230;
  const panelW = (W - labelW - 40) / 2;
  const rowH = 34;
  const top = 70;
  const H = top + pairs.length * rowH + 50;
  const parts: string[] = [];
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" ` +
      `font-family="Helvetica, Arial, sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="#ffffff"/>`,
    `<text x="16" y="24" font-size="16" font-weight="bold">plugwire vs go-plugin (Go) vs ` +
      `python-plugin — shorter is better</text>`,
    `<text x="16" y="42" fill="#555">${esc(String(results.meta.cpu))}, ` +
      `${results.meta.cores} cores · Deno ${results.meta.deno} · ${
        esc(String(results.meta.go).replace(/^go version /, "").split(" ")[0])
      } · CPython ${results.meta.python} · ${String(results.meta.date).slice(0, 10)}` +
      `${QUICK ? " · QUICK RUN" : ""}</text>`,
  );
  pairs.forEach((p, i) => {
    const y = top + i * rowH;
    parts.push(
      `<text x="${labelW - 10}" y="${y + rowH / 2 + 4}" text-anchor="end"` +
        `${p.ref ? ' font-style="italic"' : ""}>${esc(p.label)}</text>`,
    );
  });
  panels.forEach((panel, pi) => {
    const x0 = labelW + pi * (panelW + 30);
    const max = Math.max(
      1,
      ...pairs.flatMap((p) => panel.series.map((s) => s.get(p.id) ?? 0)),
    );
    parts.push(`<text x="${x0}" y="${top - 12}" font-weight="bold">${esc(panel.title)}</text>`);
    parts.push(
      `<line x1="${x0}" y1="${top - 4}" x2="${x0}" y2="${top + pairs.length * rowH}" ` +
        `stroke="#999"/>`,
    );
    const barW = panelW - 60;
    pairs.forEach((p, i) => {
      panel.series.forEach((s, si) => {
        const v = s.get(p.id);
        const y = top + i * rowH + 4 + si * 13;
        if (v === undefined) {
          parts.push(`<text x="${x0 + 4}" y="${y + 10}" fill="#999">n/a</text>`);
          return;
        }
        const w = Math.max(1, (v / max) * barW);
        parts.push(
          `<rect x="${x0}" y="${y}" width="${w.toFixed(1)}" height="11" fill="${colors[p.id]}"` +
            `${si === 1 ? ' fill-opacity="0.45"' : ""}/>`,
          `<text x="${(x0 + w + 4).toFixed(1)}" y="${y + 10}" fill="#222">${fmt(v)}</text>`,
        );
      });
    });
  });
  const ly = top + pairs.length * rowH + 24;
  parts.push(
    `<rect x="${labelW}" y="${ly - 9}" width="14" height="10" fill="#555"/>`,
    `<text x="${labelW + 20}" y="${ly}">plaintext (upper bar)</text>`,
    `<rect x="${labelW + 170}" y="${
      ly - 9
    }" width="14" height="10" fill="#555" fill-opacity="0.45"/>`,
    `<text x="${labelW + 190}" y="${ly}">AutoMTLS (lower bar)</text>`,
    `<text x="${labelW + 360}" y="${ly}" fill="#555">references in italics · full tables: ` +
      `RESULTS.md</text>`,
    `</svg>`,
  );
  return parts.join("\n") + "\n";
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const t0 = performance.now();
  await Deno.mkdir(OUT_DIR, { recursive: true });
  jobDir = await Deno.makeTempDir({ prefix: "plugwire-bench-" });
  try {
    log("building the Go and Python sides (tests/interop/peers.sh)");
    const env: Record<string, string> = {};
    for (const line of (await output(["bash", `${ROOT}tests/interop/peers.sh`])).split("\n")) {
      const eq = line.indexOf("=");
      if (eq > 0) env[line.slice(0, eq)] = line.slice(eq + 1);
    }
    if (!env.GO_BENCH) {
      throw new Error("peers.sh did not build GO_BENCH (tests/interop/go/cmd/gobench)");
    }
    peers = env as unknown as Peers;
    // Python bytecode caches, as on an ordinary install (this machine's environment turns them
    // off for every process; the bench's children inherit our environment).
    Deno.env.delete("PYTHONDONTWRITEBYTECODE");

    bundles.now = `${jobDir}/bench-plugin.js`;
    log("bundling bench/plugin.ts (deno task bundle)");
    await bundlePlugin(`${ROOT}bench/plugin.ts`, bundles.now);
    floorBundle = `${jobDir}/bench-floor.js`;
    await bundlePlugin(`${ROOT}bench/floor_plugin.ts`, floorBundle);
    gfloorBundle = `${jobDir}/bench-gfloor.js`;
    await bundlePlugin(`${ROOT}bench/grpcjs_floor_plugin.ts`, gfloorBundle);
    const before = Deno.env.get("BENCH_BEFORE");
    if (before) await prepareBefore(before);

    const nproc = navigator.hardwareConcurrency;
    const hasTaskset = await output(["sh", "-c", "command -v taskset"]).then(
      () => true,
      () => false,
    );
    pin = Deno.env.get("BENCH_PIN") !== "0" && nproc >= 2 && hasTaskset;

    results.meta = { ...await meta(), before: results.meta.before };
    results.meta.loadStart = loadavg();

    // Warm-up: every plugin once (Deno's module cache, Python's bytecode caches).
    log("warm-up: one start of every plugin");
    for (const tree of roots.before ? ["now", "before"] as Tree[] : ["now"] as Tree[]) {
      for (const plugin of ["ts", "tsb", "go", "py", "floor", "gfloor"] as PluginKind[]) {
        const host: HostKind = plugin === "py" ? "py" : "go";
        await attempt(
          `warm-up ${plugin} (${tree})`,
          () => runJob(host, { kind: "cold", cmd: pluginCmd(plugin, tree), reps: 1, mtls: true }),
        );
      }
      // And the plugwire host itself (Deno's module cache for bench/host.ts).
      await attempt(
        `warm-up ts host (${tree})`,
        () => runJob("ts", { kind: "cold", cmd: pluginCmd("go"), reps: 1 }, { tree }),
      );
    }

    if (ONLY.has("cold")) {
      await baselines();
      await cold();
    }
    if (ONLY.has("session")) {
      await sessions();
      await floor();
      await floorSessions();
    }
    if (ONLY.has("cycle")) await cycle();
    if (ONLY.has("scale")) await scale();

    results.meta.loadEnd = loadavg();
    results.meta.seconds = (performance.now() - t0) / 1000;

    const md = report();
    await Deno.writeTextFile(`${OUT_DIR}RESULTS.md`, md + "\n");
    await Deno.writeTextFile(`${OUT_DIR}chart.svg`, chart());
    await Deno.writeTextFile(`${OUT_DIR}results.json`, JSON.stringify(results, null, 1) + "\n");
    await formatOutputs();
    console.log(md);
    log(`wrote ${OUT_DIR}RESULTS.md, chart.svg and results.json`);
    if (results.errors.length) {
      log(`${results.errors.length} job(s) failed`);
      Deno.exitCode = 1;
    }
  } finally {
    killLeftovers();
    await Deno.remove(jobDir, { recursive: true }).catch(() => {});
  }
}

/** Formats what the run wrote the way `deno fmt` wants it (the repository checks formatting). */
async function formatOutputs(): Promise<void> {
  const files = ["RESULTS.md", "chart.svg", "results.json"].map((f) => `${OUT_DIR}${f}`);
  await output([DENO, "fmt", "--quiet", `--config=${ROOT}deno.json`, ...files]).catch((err) =>
    log(`deno fmt of the results failed: ${(err as Error).message}`)
  );
}

/** `--render`: rewrite RESULTS.md and chart.svg from an existing results.json (no measuring). */
async function render(): Promise<void> {
  Object.assign(results, JSON.parse(await Deno.readTextFile(`${OUT_DIR}results.json`)));
  await Deno.writeTextFile(`${OUT_DIR}RESULTS.md`, report() + "\n");
  await Deno.writeTextFile(`${OUT_DIR}chart.svg`, chart());
  await formatOutputs();
  log(`rewrote ${OUT_DIR}RESULTS.md and chart.svg from results.json`);
}

if (Deno.args.includes("--render")) await render();
else await main();
