/**
 * The interop matrix: rows are hosts, columns plugins. Each interop test is one feature of one
 * cell in one variant (plaintext or AutoMTLS, unix or TCP), registered with
 * {@link interopTest}, which records its outcome. A variant the peer cannot do is registered
 * as an ignored test and recorded as "not supported", with the reason.
 *
 * Every interop file ends with {@link finishFile}: its results go to a per-run directory, and
 * the file that reports last (the test files run in parallel, in one process) prints the whole
 * matrix and writes it to `tests/interop/MATRIX.md`.
 *
 * @module
 */

import { INTEROP_DIR, peersMissing, REPO_DIR } from "./_peers.ts";
import { type Case, endCase, newCase } from "./_run.ts";

/** The implementations of the matrix. */
export type Impl = "plugwire" | "go-plugin" | "python-plugin" | "RPCPlugin";
const IMPLS: readonly Impl[] = ["plugwire", "go-plugin", "python-plugin", "RPCPlugin"];
const TITLES: Record<Impl, string> = {
  "plugwire": "plugwire",
  "go-plugin": "go-plugin (Go)",
  "python-plugin": "python-plugin",
  "RPCPlugin": "RPCPlugin (Go)",
};

/** What the issue asks of each cell. */
type CellKind = "tested" | "reference" | "n/a" | "blocked";
const CELLS: Record<Impl, Record<Impl, CellKind>> = {
  "plugwire": {
    "plugwire": "tested",
    "go-plugin": "tested",
    "python-plugin": "tested",
    "RPCPlugin": "blocked",
  },
  "go-plugin": {
    "plugwire": "tested",
    "go-plugin": "reference",
    "python-plugin": "tested",
    "RPCPlugin": "n/a",
  },
  "python-plugin": {
    "plugwire": "tested",
    "go-plugin": "reference",
    "python-plugin": "reference",
    "RPCPlugin": "n/a",
  },
  "RPCPlugin": {
    "plugwire": "blocked",
    "go-plugin": "n/a",
    "python-plugin": "n/a",
    "RPCPlugin": "reference",
  },
};
const CELL_NOTES: Partial<Record<`${Impl}>${Impl}`, string>> = {
  "go-plugin>go-plugin":
    "reference pairing; exercised without TypeScript by tests/interop/smoke.sh (examples/grpc, examples/bidirectional, gohost ↔ goplugin)",
  "python-plugin>go-plugin":
    "reference pairing (python-plugin's own interop target); smoke.sh runs pyhost_kv.py against plugin-go-grpc and goplugin",
  "python-plugin>python-plugin":
    "reference pairing; not runnable here: the python-plugin 0.1.0 sdist lacks its KV fixture (kv_plugin.py, generated/kv_*)",
  "RPCPlugin>RPCPlugin": "reference pairing; RPCPlugin is not buildable here",
};
/** Why RPCPlugin cells cannot run here. */
export const RPCPLUGIN_BLOCKED =
  "go.rpcplugin.org/rpcplugin v0.3.1 is refused by the Go module proxy reachable here (403, module-host allowlist), github.com/rpcplugin/go too; tests/interop/rpcplugin_test.ts runs where PEERS_RPCPLUGIN=1 peers.sh can build it";

/** Transport and security of one test. */
export interface Variant {
  mtls: boolean;
  network: "unix" | "tcp";
}

/** The four variants, plaintext first. */
export const VARIANTS: readonly Variant[] = [
  { mtls: false, network: "unix" },
  { mtls: true, network: "unix" },
  { mtls: false, network: "tcp" },
  { mtls: true, network: "tcp" },
];

/** "plain, unix", "mTLS, tcp", … */
export function variantLabel(v: Variant): string {
  return `${v.mtls ? "mTLS" : "plain"}, ${v.network}`;
}

/** The outcome of one test. */
export type Status = "pass" | "fail" | "not supported" | "blocked" | "known bug";

interface Result {
  host: Impl;
  plugin: Impl;
  variant: string;
  feature: string;
  status: Status;
  ms?: number;
  note?: string;
  name: string;
}

/** One interop test. */
export interface InteropTest {
  host: Impl;
  plugin: Impl;
  variant: Variant;
  /** What it proves, e.g. "kv put/get". */
  feature: string;
  /** The peer cannot do this variant: the reason (the test is registered as ignored). */
  unsupported?: string;
  /** The peer cannot be built or run here: the reason (registered as ignored). */
  blocked?: string;
  /** A plugwire bug makes it fail: `BUG: ...` (registered as ignored). */
  bug?: string;
  /** Extra note for the matrix. */
  note?: string;
  /** SIGKILL-free time limit for the test body. @default {60000} */
  timeoutMs?: number;
  fn?: (c: Case) => Promise<void>;
}

const results: Result[] = [];

/** The Deno test name of an interop test. */
export function testName(t: Pick<InteropTest, "host" | "plugin" | "variant" | "feature">): string {
  return `interop: ${t.host} host → ${t.plugin} plugin (${variantLabel(t.variant)}): ${t.feature}`;
}

if (peersMissing) {
  // Peers that cannot be built fail the run with the reason; the tests that need them wait.
  Deno.test("interop: the real peers are built", () => {
    throw new Error(peersMissing);
  });
}

/** Registers one interop test and records its outcome for the matrix. */
export function interopTest(t: InteropTest): void {
  const base = testName(t);
  const variant = variantLabel(t.variant);
  const record = (status: Status, ms?: number, note?: string) =>
    results.push({
      host: t.host,
      plugin: t.plugin,
      variant,
      feature: t.feature,
      status,
      ms,
      note: note ?? t.note,
      name: base,
    });
  if (t.unsupported || t.blocked) {
    const [status, why] = t.unsupported
      ? ["not supported", `not supported by the peer: ${t.unsupported}`] as const
      : ["blocked", `blocked: ${t.blocked}`] as const;
    record(status, undefined, why);
    Deno.test({ name: `${base} [${why}]`, ignore: true, fn() {} });
    return;
  }
  // A known plugwire bug: the real test, ignored until the fix lands (remove `bug` then).
  if (t.bug) record("known bug", undefined, t.bug);
  Deno.test({
    name: t.bug ? `${base} [${t.bug}]` : base,
    ignore: peersMissing !== undefined || t.bug !== undefined,
    async fn() {
      const c = await newCase();
      const started = performance.now();
      let error: unknown;
      let timer: ReturnType<typeof setTimeout> | undefined;
      const limit = t.timeoutMs ?? 60_000;
      try {
        await Promise.race([
          t.fn!(c),
          new Promise((_, reject) => {
            timer = setTimeout(() => reject(new Error(`timed out after ${limit} ms`)), limit);
          }),
        ]);
      } catch (err) {
        error = err;
      } finally {
        clearTimeout(timer);
      }
      const ms = Math.round(performance.now() - started);
      const { orphans, sockets } = await endCase(c);
      if (sockets.length) c.notes.push(`unix sockets left behind: ${sockets.join(", ")}`);
      if (!error && orphans.length) {
        error = new Error(`processes of this case outlived it (killed now): ${orphans.join("; ")}`);
      }
      const message = error ? String((error as Error).message ?? error) : "";
      if (c.notes.length) t.note = [t.note, ...c.notes].filter(Boolean).join("; ");
      record(error ? "fail" : "pass", ms, error ? message.split("\n")[0].slice(0, 200) : undefined);
      if (error) throw error;
    },
  });
}

// ---------------------------------------------------------------------------------------------
// Collecting the files' results and writing the matrix.

const RESULTS_DIR = `${INTEROP_DIR}.peers/results`;
const MATRIX_FILE = `${INTEROP_DIR}MATRIX.md`;

/** This test process: its pid and start time (pids get reused). */
function runId(): string {
  const stat = Deno.readTextFileSync("/proc/self/stat");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return `${Deno.pid}-${fields[19]}`;
}

/** The interop test files that report to the matrix (those that call finishFile). */
function expectedFiles(): string[] {
  return [...Deno.readDirSync(INTEROP_DIR)]
    .filter((e) =>
      e.isFile && e.name.endsWith("_test.ts") &&
      /^finishFile\(/m.test(Deno.readTextFileSync(`${INTEROP_DIR}${e.name}`))
    )
    .map((e) => e.name)
    .sort();
}

function pidAlive(pid: number): boolean {
  try {
    Deno.statSync(`/proc/${pid}`);
    return true;
  } catch {
    return false;
  }
}

/**
 * Registers the matrix test of a file (call it after the file's interop tests): it stores the
 * file's results, and if every interop file of this run has reported, prints the matrix and
 * writes MATRIX.md.
 */
export function finishFile(fileUrl: string): void {
  const file = new URL(fileUrl).pathname.split("/").pop()!;
  Deno.test({
    name: `interop: matrix (${file} reports; the last file writes tests/interop/MATRIX.md)`,
    ignore: peersMissing !== undefined,
    async fn() {
      const dir = `${RESULTS_DIR}/${runId()}`;
      await Deno.mkdir(dir, { recursive: true });
      const tmp = `${dir}/.${file}.json.tmp`;
      await Deno.writeTextFile(tmp, JSON.stringify(results, null, 1));
      await Deno.rename(tmp, `${dir}/${file}.json`);

      using lock = await Deno.open(`${RESULTS_DIR}/.lock`, { create: true, write: true });
      await lock.lock(true);
      try {
        const reported = [...Deno.readDirSync(dir)].filter((e) => e.name.endsWith(".json"))
          .map((e) => e.name.slice(0, -5));
        const expected = expectedFiles();
        const missing = expected.filter((f) => !reported.includes(f));
        if (missing.length) {
          console.log(
            `interop matrix: ${reported.length}/${expected.length} files reported; ` +
              `waiting for ${missing.join(", ")}`,
          );
          return;
        }
        const all: Result[] = [];
        for (const f of reported) {
          all.push(...JSON.parse(await Deno.readTextFile(`${dir}/${f}.json`)) as Result[]);
        }
        const markdown = renderMatrix(all);
        const out = `${MATRIX_FILE}.tmp`;
        await Deno.writeTextFile(out, await formatMarkdown(markdown));
        await Deno.rename(out, MATRIX_FILE);
        console.log(summaryText(all));
        console.log(`(written to ${MATRIX_FILE})`);
        await Deno.remove(dir, { recursive: true });
        // Results of runs that died before their last file reported.
        for (const e of Deno.readDirSync(RESULTS_DIR)) {
          const pid = Number(e.name.split("-")[0]);
          if (e.isDirectory && pid && !pidAlive(pid)) {
            await Deno.remove(`${RESULTS_DIR}/${e.name}`, { recursive: true }).catch(() => {});
          }
        }
      } finally {
        await lock.unlock();
      }
    },
  });
}

/** deno fmt's markdown style, so that `deno fmt --check` passes on the committed file. */
async function formatMarkdown(markdown: string): Promise<string> {
  const fmt = new Deno.Command(Deno.execPath(), {
    args: ["fmt", `--config=${REPO_DIR}deno.json`, "--ext=md", "-"],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = fmt.stdin.getWriter();
  await writer.write(new TextEncoder().encode(markdown));
  await writer.close();
  const { success, stdout, stderr } = await fmt.output();
  if (!success) throw new Error(`deno fmt failed: ${new TextDecoder().decode(stderr)}`);
  return new TextDecoder().decode(stdout);
}

const MARK: Record<Status, string> = {
  "pass": "pass",
  "fail": "**FAIL**",
  "not supported": "not supported",
  "blocked": "blocked",
  "known bug": "**known bug**",
};

function cellResults(all: Result[], host: Impl, plugin: Impl): Result[] {
  return all.filter((r) => r.host === host && r.plugin === plugin);
}

const VARIANT_ORDER = VARIANTS.map(variantLabel);
const short = (variant: string) => variant.replace(", ", "/");

/**
 * One cell: "pass 19/19: plain/unix mTLS/unix; n/s: plain/tcp mTLS/tcp" (the variants that
 * ran, and those the peer does not support at all), "FAIL k/N: …", blocked, reference or —.
 */
function cellSummary(all: Result[], host: Impl, plugin: Impl): string {
  const kind = CELLS[host][plugin];
  if (kind === "n/a") return "—";
  if (kind === "reference") return "reference";
  const rs = cellResults(all, host, plugin);
  if (kind === "blocked" || (rs.length && rs.every((r) => r.status === "blocked"))) {
    return "blocked";
  }
  if (!rs.length) return "not run";
  const count = (status: Status) => rs.filter((r) => r.status === status).length;
  const passed = count("pass");
  const failed = count("fail");
  const bugs = count("known bug");
  if (!passed && !failed && !bugs) return "not supported";
  const ran = VARIANT_ORDER.filter((v) =>
    rs.some((r) => r.variant === v && r.status !== "not supported" && r.status !== "blocked")
  );
  const unsupported = VARIANT_ORDER.filter((v) =>
    rs.some((r) => r.variant === v) &&
    rs.every((r) => r.variant !== v || r.status === "not supported")
  );
  const head = failed ? `FAIL ${failed}/${passed + failed}` : `pass ${passed}/${passed}`;
  return `${head}: ${ran.map(short).join(" ")}` +
    (unsupported.length ? `; n/s: ${unsupported.map(short).join(" ")}` : "") +
    (bugs ? `; known bug: ${bugs} (ignored)` : "");
}

function summaryText(all: Result[]): string {
  const rows = [
    ["host ↓ / plugin →", ...IMPLS.map((i) => TITLES[i])],
    ...IMPLS.map((h) => [TITLES[h], ...IMPLS.map((p) => cellSummary(all, h, p))]),
  ];
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  const lines = [
    "interop matrix (rows: host, columns: plugin; n/s = not supported by the peer)",
    ...rows.map((r) => r.map((cell, i) => cell.padEnd(widths[i])).join(" | ").trimEnd()),
  ];
  const failed = all.filter((r) => r.status === "fail");
  const total = all.filter((r) => r.status === "pass" || r.status === "fail").length;
  const ms = all.reduce((n, r) => n + (r.ms ?? 0), 0);
  lines.push(
    `${total - failed.length}/${total} interop tests passed` +
      (failed.length ? `; FAILED: ${failed.map((r) => r.name).join("; ")}` : "") +
      ` (sum of test times ${(ms / 1000).toFixed(1)} s)`,
  );
  return lines.join("\n");
}

function esc(text: string): string {
  return text.replaceAll("|", "\\|").replaceAll("\n", " ");
}

function renderMatrix(all: Result[]): string {
  const out: string[] = [];
  out.push("# Interop matrix", "");
  out.push(
    "Generated by the interop suite (`deno task interop`, or `deno task test`, which includes",
    "`tests/interop/*_test.ts`); every run rewrites this file. Each result comes from a test that",
    "starts the real peers (see `tests/interop/README.md`) and checks what crosses the wire.",
    "Rows are hosts, columns are plugins.",
    "",
    `Last run: ${
      new Date().toISOString()
    }, Deno ${Deno.version.deno}, ${Deno.build.os}/${Deno.build.arch}.`,
    "",
  );
  out.push(`| host ↓ / plugin → | ${IMPLS.map((i) => TITLES[i]).join(" | ")} |`);
  out.push(`| --- | ${IMPLS.map(() => "---").join(" | ")} |`);
  for (const host of IMPLS) {
    out.push(
      `| **${TITLES[host]}** | ${IMPLS.map((p) => cellSummary(all, host, p)).join(" | ")} |`,
    );
  }
  out.push(
    "",
    "pass N/N: N tests ran and passed, in the variants listed (plain or mTLS, unix or tcp); FAIL k/N:",
    "k of them failed; n/s: variants the peer does not support at all (reasons in the tables below);",
    "known bug: tests of a plugwire bug, registered as ignored until it is fixed (see the notes);",
    "blocked: the peer cannot be built or run here; reference: a pairing of the peers themselves,",
    "not plugwire; —: not part of the matrix.",
    "",
  );
  for (const host of IMPLS) {
    for (const plugin of IMPLS) {
      const kind = CELLS[host][plugin];
      if (kind === "n/a") continue;
      const rs = cellResults(all, host, plugin);
      const note = CELL_NOTES[`${host}>${plugin}`];
      if (!rs.length && !note && kind !== "blocked") continue;
      out.push(`## ${TITLES[host]} host → ${TITLES[plugin]} plugin`, "");
      if (note) out.push(note, "");
      if (kind === "blocked" && !rs.length) out.push(`Blocked: ${RPCPLUGIN_BLOCKED}.`, "");
      if (!rs.length) continue;
      // Features (rows) in the order the tests were registered, variants as columns; reasons
      // and notes as numbered footnotes.
      const notes: string[] = [];
      const ref = (text: string) => {
        let i = notes.indexOf(text);
        if (i < 0) i = notes.push(text) - 1;
        return ` [${i + 1}]`;
      };
      const features = [...new Set(rs.map((r) => r.feature))];
      out.push(`| feature | ${VARIANT_ORDER.join(" | ")} |`);
      out.push(`| --- | ${VARIANT_ORDER.map(() => "---").join(" | ")} |`);
      for (const feature of features) {
        const cells = VARIANT_ORDER.map((variant) => {
          const r = rs.find((r) => r.feature === feature && r.variant === variant);
          if (!r) return "—";
          const note = r.note ? ref(r.note) : "";
          if (r.status === "pass") return `pass, ${r.ms} ms${note}`;
          return `${MARK[r.status]}${note}`;
        });
        out.push(`| ${esc(feature)} | ${cells.join(" | ")} |`);
      }
      const ms = rs.reduce((n, r) => n + (r.ms ?? 0), 0);
      out.push("", `${rs.filter((r) => r.ms !== undefined).length} tests, ${ms} ms in all.`);
      if (notes.length) out.push("", ...notes.map((n, i) => `${i + 1}. ${esc(n)}`));
      out.push("");
    }
  }
  return out.join("\n");
}
