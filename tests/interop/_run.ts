/**
 * Running real peer processes from interop tests: a private directory per test case, an
 * environment that marks every process of the case (and, through inheritance, every
 * grandchild, such as the plugin a Go host starts behind `sh -c`), and a check that nothing of
 * the case outlives it.
 *
 * @module
 */

import { TEST_MARK, testRoot } from "../_util.ts";

/** What one test case runs in. */
export interface Case {
  /** A fresh private directory (the cwd of the peers, and their TMPDIR's parent). */
  dir: string;
  /** Environment for every process of the case: the test marks and TMPDIR. */
  env: Record<string, string>;
  /** The case's own marker value (`PLUGWIRE_INTEROP_CASE`). */
  id: string;
  /** Processes started with {@link spawn} that are still running; killed at the end. */
  children: Set<Deno.ChildProcess>;
  /** Remarks for the matrix (e.g. a known bug that showed up but is tolerated). */
  notes: string[];
}

/** Makes a case: a directory under the test root and the marking environment. */
export async function newCase(): Promise<Case> {
  const id = crypto.randomUUID();
  const dir = await Deno.makeTempDir({ dir: testRoot(), prefix: "interop-" });
  const tmp = `${dir}/tmp`;
  await Deno.mkdir(tmp);
  return {
    dir,
    id,
    env: { PLUGWIRE_TEST_MARK: TEST_MARK, PLUGWIRE_INTEROP_CASE: id, TMPDIR: tmp },
    children: new Set(),
    notes: [],
  };
}

/** Pids of live (non-zombie) processes whose environment has `NAME=value`. */
export function processesWithEnv(name: string, value: string): number[] {
  const needle = new TextEncoder().encode(`${name}=${value}\0`);
  const found: number[] = [];
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name) || Number(entry.name) === Deno.pid) continue;
    let environ: Uint8Array;
    try {
      environ = Deno.readFileSync(`/proc/${entry.name}/environ`);
    } catch {
      continue;
    }
    if (contains(environ, needle)) found.push(Number(entry.name));
  }
  return found;
}

function contains(haystack: Uint8Array, needle: Uint8Array): boolean {
  outer: for (let i = 0; i <= haystack.length - needle.length; i++) {
    for (let j = 0; j < needle.length; j++) if (haystack[i + j] !== needle[j]) continue outer;
    return true;
  }
  return false;
}

function describePid(pid: number): string {
  try {
    const cmd = Deno.readTextFileSync(`/proc/${pid}/cmdline`).split("\0").join(" ").trim();
    return `${pid} (${cmd.length > 160 ? cmd.slice(0, 160) + "…" : cmd})`;
  } catch {
    return String(pid);
  }
}

/**
 * Ends a case: waits up to `graceMs` for its processes to go, SIGKILLs any that stay (an
 * orphan is a test failure, returned as a message), and removes its directory. Returns the
 * problems found (orphans), and the unix sockets left in the directory (a note, not a failure:
 * some peers leave them by design).
 */
export async function endCase(
  c: Case,
  graceMs = 3000,
): Promise<{ orphans: string[]; sockets: string[] }> {
  for (const child of c.children) {
    try {
      child.kill("SIGKILL");
    } catch {
      // Already exited.
    }
    await child.status;
  }
  c.children.clear();
  const end = Date.now() + graceMs;
  let pids = processesWithEnv("PLUGWIRE_INTEROP_CASE", c.id);
  while (pids.length && Date.now() < end) {
    await new Promise((r) => setTimeout(r, 50));
    pids = processesWithEnv("PLUGWIRE_INTEROP_CASE", c.id);
  }
  const orphans = pids.map(describePid);
  for (const pid of pids) {
    try {
      Deno.kill(pid, "SIGKILL");
    } catch {
      // Gone meanwhile.
    }
  }
  const sockets: string[] = [];
  const walk = (dir: string) => {
    for (const e of Deno.readDirSync(dir)) {
      const path = `${dir}/${e.name}`;
      if (e.isDirectory) walk(path);
      else if (Deno.lstatSync(path).isSocket) sockets.push(path.slice(c.dir.length + 1));
    }
  };
  try {
    walk(c.dir);
  } catch {
    // Removed meanwhile.
  }
  // Wait for the killed ones, so the file's leak check does not see them.
  for (let i = 0; i < 40 && processesWithEnv("PLUGWIRE_INTEROP_CASE", c.id).length; i++) {
    await new Promise((r) => setTimeout(r, 50));
  }
  await Deno.remove(c.dir, { recursive: true }).catch(() => {});
  return { orphans, sockets };
}

/** What a finished program did. */
export interface RunResult {
  code: number;
  signal: string | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Options of {@link run} and {@link spawn}. */
export interface RunOptions {
  args?: string[];
  /** Added to the case's environment (which is added to the test process's). */
  env?: Record<string, string>;
  cwd?: string;
  /** Written to stdin, which is then closed. Default: no stdin. */
  stdin?: string;
  /** SIGKILL after this long. @default {60000} */
  timeoutMs?: number;
}

/** Runs a program to its end within the case, and returns what it printed. */
export async function run(c: Case, cmd: string, options: RunOptions = {}): Promise<RunResult> {
  const started = performance.now();
  const child = spawn(c, cmd, { ...options, stdin: options.stdin ?? "" });
  const timer = setTimeout(() => {
    try {
      child.process.kill("SIGKILL");
    } catch {
      // Exited meanwhile.
    }
  }, options.timeoutMs ?? 60_000);
  try {
    if (options.stdin !== undefined) await child.write(options.stdin);
    await child.closeStdin();
    const [status, stdout, stderr] = await Promise.all([
      child.process.status,
      child.stdout,
      child.stderr,
    ]);
    return {
      code: status.code,
      signal: status.signal,
      stdout,
      stderr,
      ms: Math.round(performance.now() - started),
    };
  } finally {
    clearTimeout(timer);
    c.children.delete(child.process);
  }
}

/** A program running within a case. */
export interface Spawned {
  process: Deno.ChildProcess;
  /** All of stdout, once it ends. */
  stdout: Promise<string>;
  /** All of stderr, once it ends. */
  stderr: Promise<string>;
  /** Resolves with the first stdout line for which `match` is true (rejects at EOF). */
  waitLine(match: (line: string) => boolean, timeoutMs?: number): Promise<string>;
  write(text: string): Promise<void>;
  closeStdin(): Promise<void>;
}

/** Starts a program within the case; its stdout and stderr are read as they come. */
export function spawn(c: Case, cmd: string, options: RunOptions = {}): Spawned {
  const process = new Deno.Command(cmd, {
    args: options.args ?? [],
    env: { ...c.env, ...options.env },
    cwd: options.cwd ?? c.dir,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  c.children.add(process);
  void process.status.then(() => c.children.delete(process));
  let seen = "";
  const watchers = new Set<() => void>();
  const collect = async (stream: ReadableStream<Uint8Array>, onText?: (t: string) => void) => {
    let text = "";
    const decoder = new TextDecoder();
    for await (const chunk of stream) {
      const t = decoder.decode(chunk, { stream: true });
      text += t;
      onText?.(t);
    }
    text += decoder.decode();
    return text;
  };
  let stdoutDone = false;
  const stdout = collect(process.stdout, (t) => {
    seen += t;
    for (const w of watchers) w();
  }).finally(() => {
    stdoutDone = true;
    for (const w of watchers) w();
  });
  const stderr = collect(process.stderr);
  const writer = process.stdin.getWriter();
  let stdinClosed = false;
  return {
    process,
    stdout,
    stderr,
    waitLine(match, timeoutMs = 30_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const line = seen.split("\n").slice(0, -1).find(match);
          if (line !== undefined) return done(() => resolve(line));
          if (stdoutDone) return done(() => reject(new Error(`no such line in stdout:\n${seen}`)));
        };
        const timer = setTimeout(
          () => done(() => reject(new Error(`timed out waiting for a line; stdout:\n${seen}`))),
          timeoutMs,
        );
        const done = (settle: () => void) => {
          clearTimeout(timer);
          watchers.delete(check);
          settle();
        };
        watchers.add(check);
        check();
      });
    },
    async write(text) {
      await writer.write(new TextEncoder().encode(text)).catch(() => {});
    },
    async closeStdin() {
      if (stdinClosed) return;
      stdinClosed = true;
      await writer.close().catch(() => {});
    },
  };
}

/** The JSON objects among the lines of `text` (other lines are skipped). */
export function jsonLines(text: string): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  for (const line of text.split("\n")) {
    if (!line.startsWith("{")) continue;
    try {
      out.push(JSON.parse(line));
    } catch {
      // Not JSON after all.
    }
  }
  return out;
}

/** The first JSON line of `type`, or throws with the whole output. */
export function lineOfType(text: string, type: string): Record<string, unknown> {
  const line = jsonLines(text).find((l) => l.type === type);
  if (!line) throw new Error(`no {"type":"${type}"} line in:\n${text}`);
  return line;
}

/** Shell-quotes one word for `sh -c`. */
export function shellQuote(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replaceAll("'", `'\\''`)}'`;
}

/** A command line for `sh -c` (what go-plugin's example hosts run). */
export function shellCommand(argv: string[]): string {
  return argv.map(shellQuote).join(" ");
}
