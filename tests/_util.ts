/**
 * Test helpers: commands that run this repository's TypeScript plugins, a marker that every
 * plugin started by a test run carries in its environment (so a leak check can find the
 * processes, grandchildren included), and a private temp root for sockets and files.
 *
 * @module
 */

import { KV_HANDSHAKE } from "../examples/kv/shared.ts";
import assert from "node:assert/strict";
import { type HandshakeConfig, PluginError, type StartOptions, startPlugin } from "../host.ts";

/** Marks every process this test process starts; see {@link processesWithMark}. */
export const TEST_MARK: string = crypto.randomUUID();

/** The handshake of the helper plugin and the KV example. */
export const HANDSHAKE: HandshakeConfig = KV_HANDSHAKE;

const root = new URL("../", import.meta.url);

/** `deno run` for a TypeScript file of this repository, with the repository's config. */
export function denoCommand(relativePath: string, ...args: string[]): string[] {
  return [
    Deno.execPath(),
    "run",
    "-A",
    "--quiet",
    `--config=${new URL("deno.json", root).pathname}`,
    new URL(relativePath, root).pathname,
    ...args,
  ];
}

/** The helper plugin in one of its modes (see tests/fixtures/helper_plugin.ts). */
export function helperPlugin(mode: string, env: Record<string, string> = {}): Pick<
  StartOptions,
  "cmd" | "env" | "handshake" | "unixSocketDir" | "logger"
> {
  return {
    cmd: denoCommand("tests/fixtures/helper_plugin.ts"),
    env: { PLUGWIRE_TEST_MARK: TEST_MARK, HELPER_MODE: mode, ...env },
    handshake: HANDSHAKE,
    unixSocketDir: testRoot(),
    logger: () => {},
  };
}

let rootDir: string | undefined;
/** A private directory for this test process's sockets and files, made on first use. */
export function testRoot(): string {
  rootDir ??= Deno.makeTempDirSync({ prefix: "plugwire-test-" });
  return rootDir;
}

/** Pids of live processes whose environment carries `PLUGWIRE_TEST_MARK=<mark>`. */
export function processesWithMark(mark: string = TEST_MARK): number[] {
  const needle = new TextEncoder().encode(`PLUGWIRE_TEST_MARK=${mark}\0`);
  const found: number[] = [];
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    let environ: Uint8Array;
    try {
      environ = Deno.readFileSync(`/proc/${entry.name}/environ`);
      // A zombie (exited, not yet reaped) has an empty environ; it holds nothing.
    } catch {
      continue;
    }
    if (indexOf(environ, needle) >= 0) found.push(Number(entry.name));
  }
  return found;
}

function indexOf(haystack: Uint8Array, needle: Uint8Array): number {
  outer: for (let i = 0; i <= haystack.length - needle.length; i++) {
    for (let j = 0; j < needle.length; j++) if (haystack[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}

/** Lists what is left in the test root (recursively), relative paths. */
export function leftovers(): string[] {
  if (!rootDir) return [];
  const out: string[] = [];
  const walk = (dir: string, prefix: string) => {
    for (const e of Deno.readDirSync(dir)) {
      out.push(prefix + e.name);
      if (e.isDirectory) walk(`${dir}/${e.name}`, `${prefix}${e.name}/`);
    }
  };
  walk(rootDir, "");
  return out;
}

/**
 * Registers the last test of a file: no plugin process, socket or temp dir is left behind.
 * Deno runs a file's tests in order, so calling this at the end of a file checks that file.
 */
export function testNoLeftovers(): void {
  Deno.test("leaves no plugin process, socket or temp dir behind", async () => {
    // Processes get a moment to be reaped after their last kill.
    for (let i = 0; i < 20 && processesWithMark().length > 0; i++) {
      await new Promise((r) => setTimeout(r, 100));
    }
    const procs = processesWithMark();
    const files = leftovers();
    if (rootDir) Deno.removeSync(rootDir, { recursive: true });
    rootDir = undefined;
    if (procs.length || files.length) {
      throw new Error(`left behind: processes ${procs.join(",")}; files ${files.join(", ")}`);
    }
  });
}

/** Waits for a condition, polling; throws after `ms`. */
export async function eventually(
  what: string,
  check: () => boolean | Promise<boolean>,
  ms = 5000,
): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** The file URL of a file of this repository, for imports in {@link runDenoEval} code. */
export function repoUrl(relativePath: string): string {
  return new URL(relativePath, root).href;
}

/** What a program printed, and how it ended. */
export interface ProgramOutput {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs TypeScript `code` with `deno eval` and this repository's config: a throwaway host (or
 * any program) whose stdin, stdout and stderr a test controls. Import with {@link repoUrl}.
 * The process carries the test mark, gets `stdin` (then EOF) and is SIGKILLed after
 * `timeoutMs`.
 */
export async function runDenoEval(
  code: string,
  options: { env?: Record<string, string>; stdin?: string; timeoutMs?: number } = {},
): Promise<ProgramOutput> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["eval", "--quiet", `--config=${new URL("deno.json", root).pathname}`, code],
    env: { ...options.env, PLUGWIRE_TEST_MARK: TEST_MARK },
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const timer = setTimeout(() => killQuietly(child), options.timeoutMs ?? 30_000);
  try {
    const writer = child.stdin.getWriter();
    try {
      await writer.write(new TextEncoder().encode(options.stdin ?? ""));
      await writer.close();
    } catch {
      // It exited without reading its stdin: its output says why.
    }
    const out = await child.output();
    const decoder = new TextDecoder();
    return {
      code: out.code,
      stdout: decoder.decode(out.stdout),
      stderr: decoder.decode(out.stderr),
    };
  } finally {
    clearTimeout(timer);
  }
}

/** SIGKILLs a child process of Deno.Command unless it is already gone. */
export function killQuietly(child: Deno.ChildProcess): void {
  try {
    child.kill("SIGKILL");
  } catch {
    // Already exited.
  }
}

/** Starts a plugin that must fail to start; returns its PluginError. */
export async function startFails(options: StartOptions): Promise<PluginError> {
  let plugin;
  try {
    plugin = await startPlugin(options);
  } catch (err) {
    assert.ok(err instanceof PluginError, `expected a PluginError, got ${err}`);
    return err;
  }
  await plugin.kill();
  assert.fail("startPlugin() resolved, expected a rejection");
}

/** A failed start leaves no marked process and no socket dir in the test root. */
export function assertNothingLeft(): void {
  assert.deepEqual(processesWithMark(), [], "a plugin process outlived the failed start");
  assert.deepEqual(leftovers(), [], "a socket dir outlived the failed start");
}
