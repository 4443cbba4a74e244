/**
 * Every call that depends on the JavaScript runtime lives here: environment, processes,
 * signals, files, and the process's own stdout/stderr. The rest of plugwire only imports this
 * module, so running on Node means checking this one file.
 *
 * Most calls go through `node:` built-ins, which Deno 2 and Node 20+ both provide with the
 * same behaviour; Deno's own API is used only where Deno needs it (writing to the real fd 1
 * and fd 2 while the `Deno.stdout` object may be redirected).
 *
 * @module
 */

import type { ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as fsp from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import { Buffer } from "node:buffer";
import process from "node:process";
import { setImmediate } from "node:timers";
import { Console } from "node:console";
import { Writable } from "node:stream";
import { createRequire } from "node:module";

// deno-lint-ignore no-explicit-any
const deno: any = (globalThis as any).Deno;

/** Reads one environment variable ("" counts as set). */
export function getEnv(name: string): string | undefined {
  return process.env[name];
}

/** A copy of the whole environment. */
export function getEnvAll(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined) out[k] = v;
  return out;
}

/**
 * A `node:` built-in module, loaded when first asked for instead of when plugwire is imported
 * (a static import is loaded at start-up, a bundle's too). Synchronous:
 * `process.getBuiltinModule` (Deno 2, Node 20.16+), else `require` (older Node 20).
 */
export function builtinModule<T>(name: `node:${string}`): T {
  const get = (process as { getBuiltinModule?: (id: string) => unknown }).getBuiltinModule;
  return (get ? get(name) : createRequire(import.meta.url)(name)) as T;
}

/** The OS temp directory (`$TMPDIR` or `/tmp`), as Go's `os.TempDir`. */
export function tempDir(): string {
  return os.tmpdir();
}

/** Joins path segments. */
export const joinPath: (...parts: string[]) => string = path.join;

/** The last segment of a path. */
export const baseName: (p: string) => string = path.basename;

/** Makes a fresh private directory `<parent>/<prefix>XXXXXX`. */
export async function makeTempDir(prefix: string, parent = tempDir()): Promise<string> {
  return await fsp.mkdtemp(path.join(parent, prefix));
}

/** Removes a file or directory tree; a missing one is not an error. */
export async function removePath(p: string): Promise<void> {
  await fsp.rm(p, { recursive: true, force: true });
}

/** Synchronous {@link removePath}, for exit handlers. */
export function removePathSync(p: string): void {
  try {
    fs.rmSync(p, { recursive: true, force: true });
  } catch {
    // Exit handlers must not throw; a leftover is reported by the tests, not here.
  }
}

/** True when something exists at the path. */
export function pathExists(p: string): boolean {
  return fs.existsSync(p);
}

/** Changes the mode bits of a path. */
export async function chmod(p: string, mode: number): Promise<void> {
  await fsp.chmod(p, mode);
}

/** File mode, owner and size, for diagnostics. */
export async function statFile(
  p: string,
): Promise<{ mode: number; uid: number; gid: number; isFile: boolean } | undefined> {
  try {
    const s = await fsp.stat(p);
    return { mode: s.mode, uid: s.uid, gid: s.gid, isFile: s.isFile() };
  } catch {
    return undefined;
  }
}

/** Reads a whole file. */
export async function readFile(p: string): Promise<Uint8Array> {
  return new Uint8Array(await fsp.readFile(p));
}

/** Reads the first bytes of a file (for the executable-format note in diagnostics). */
export async function readFileHead(p: string, length: number): Promise<Uint8Array> {
  const handle = await fsp.open(p, "r");
  try {
    const buf = new Uint8Array(length);
    const { bytesRead } = await handle.read(buf, 0, length, 0);
    return buf.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
}

/**
 * Resolves a group name or numeric gid to a gid, reading /etc/group (Node has no getgrnam).
 */
export async function resolveGroup(group: string): Promise<number> {
  if (/^\d+$/.test(group)) return Number(group);
  const text = await fsp.readFile("/etc/group", "utf8");
  for (const line of text.split("\n")) {
    const [name, , gid] = line.split(":");
    if (name === group && gid !== undefined) return Number(gid);
  }
  throw new TypeError(`Unknown group ${JSON.stringify(group)}`);
}

/** Changes the group of a path, keeping its owner. */
export async function chgrp(p: string, gid: number): Promise<void> {
  await fsp.chown(p, -1, gid);
}

/** Looks a command up on PATH the way a shell does; returns the path unchanged if it has a "/". */
export function resolveExecutable(command: string): string {
  if (command.includes("/")) return path.resolve(command);
  for (const dir of (process.env.PATH ?? "").split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, command);
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      if (fs.statSync(candidate).isFile()) return candidate;
    } catch {
      // Not here; keep looking.
    }
  }
  return command;
}

/**
 * How a child process ended.
 *
 * @example Reporting how a plugin ended
 * ```ts
 * import type { ExitStatus } from "@plugwire/plugwire/host";
 * import assert from "node:assert/strict";
 *
 * // plugin.exited.then((status) => console.error(describe(status)));
 * function describe({ code, signal }: ExitStatus): string {
 *   return signal === null ? `exited with status ${code}` : `killed by ${signal}`;
 * }
 * assert.equal(describe({ code: null, signal: "SIGKILL" }), "killed by SIGKILL");
 * assert.equal(describe({ code: 0, signal: null }), "exited with status 0");
 * ```
 */
export interface ExitStatus {
  /** The exit code, or null when a signal ended it. */
  code: number | null;
  /** The signal that ended it, or null. */
  signal: string | null;
}

/** A running child process with piped stdout and stderr. */
export interface ChildHandle {
  readonly pid: number;
  /** Calls `onData` with each chunk of stdout until it ends, then `onEnd`. */
  readonly stdout: ByteSource;
  /** Same for stderr. */
  readonly stderr: ByteSource;
  /** Settles when the process has exited. */
  readonly exited: Promise<ExitStatus>;
  /** Sends a signal to the process and its group; false if the process has exited. */
  kill(signal: "SIGTERM" | "SIGKILL" | "SIGINT"): boolean;
  /**
   * Kills what is left of the process's group after the process itself exited (a plugin
   * started through a shell leaves the real plugin there). False if the group is empty.
   */
  killStragglers(): boolean;
}

/**
 * A stream of bytes delivered by callback (cheaper than web streams on the hot path). When
 * `onData`'s function returns a promise, reading pauses until it settles: the writer is held
 * back (backpressure) rather than the reader's event loop.
 */
export interface ByteSource {
  onData(fn: (chunk: Uint8Array) => void | Promise<void>): void;
  onEnd(fn: () => void): void;
}

/** Options of {@link spawnProcess}. */
export interface SpawnOptions {
  env: Record<string, string>;
  cwd?: string;
  /** "inherit" passes the host's stdin (go-plugin does, so a plugin may use the TTY). */
  stdin: "inherit" | "null";
}

function byteSource(stream: NodeJS.ReadableStream | null): ByteSource {
  return {
    onData(fn) {
      stream?.on("data", (chunk: Uint8Array) => {
        const done = fn(chunk);
        if (!done) return;
        stream.pause();
        done.finally(() => stream.resume());
      });
    },
    onEnd(fn) {
      if (!stream) return fn();
      stream.on("end", fn);
      stream.on("close", fn);
    },
  };
}

/**
 * Starts a process. Rejects (with the OS error) when the executable cannot be started.
 */
export async function spawnProcess(
  file: string,
  args: readonly string[],
  options: SpawnOptions,
): Promise<ChildHandle> {
  // Loaded on first use: a plugin never spawns, and the module costs its start ~1.4 ms.
  const { spawn } = await import("node:child_process");
  return await new Promise((resolve, reject) => {
    let child: ChildProcess;
    try {
      child = spawn(file, args, {
        env: options.env,
        cwd: options.cwd,
        stdio: [options.stdin === "inherit" ? "inherit" : "ignore", "pipe", "pipe"],
        // Its own process group, so signals reach the whole plugin: with `sh -c "$PLUGIN"`
        // (go-plugin's examples) dash forks rather than execs, and killing only the shell
        // would orphan the real plugin.
        detached: true,
      });
    } catch (err) {
      reject(err);
      return;
    }
    let hasExited = false;
    const exited = new Promise<ExitStatus>((done) => {
      child.once("exit", (code, signal) => {
        hasExited = true;
        done({ code, signal });
      });
    });
    child.once("error", (err) => {
      if (child.pid === undefined) reject(err);
    });
    child.once("spawn", () => {
      resolve({
        pid: child.pid!,
        stdout: byteSource(child.stdout),
        stderr: byteSource(child.stderr),
        exited,
        // process.kill, not child.kill: Deno's child.kill sends only the first signal.
        kill: (signal) => {
          if (hasExited) return false;
          try {
            process.kill(-child.pid!, signal);
            return true;
          } catch {
            try {
              process.kill(child.pid!, signal);
              return true;
            } catch {
              return false;
            }
          }
        },
        killStragglers: () => {
          try {
            process.kill(-child.pid!, "SIGKILL");
            return true;
          } catch {
            return false;
          }
        },
      });
    });
  });
}

/** True when a process with this pid exists (signal 0, as go-plugin's reattach does). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists but belongs to someone else.
    return (err as { code?: string }).code === "EPERM";
  }
}

/** Sends a signal to a pid that is not our child (reattach); false if it is gone. */
export function signalPid(pid: number, signal: "SIGTERM" | "SIGKILL"): boolean {
  try {
    process.kill(pid, signal);
    return true;
  } catch {
    return false;
  }
}

/** Listens for a signal; returns a function that stops listening. */
export function onSignal(signal: "SIGINT" | "SIGTERM", fn: () => void): () => void {
  process.on(signal, fn);
  return () => process.off(signal, fn);
}

/**
 * Runs `fn` synchronously, once, when the process ends however it ends short of a signal: the
 * event loop running dry, `Deno.exit()`, `process.exit()`, an uncaught error or an unhandled
 * rejection. Node fires `exit` for all of them; Deno fires it only for `process.exit()` and
 * the end of the program, and instead fires `unload` for `Deno.exit()`, `error` for an
 * uncaught error and `unhandledrejection` for an unhandled rejection (the last two only end the
 * process when no listener prevents their default, as a listener registered earlier than this
 * one may: then `fn` waits for the real end). The one exit hook of the library: the host's
 * plugin cleanup, the plugin's socket removal and the flush of unread captured output.
 * Returns a function that stops listening.
 */
export function onExit(fn: () => void): () => void {
  let ran = false;
  const once = () => {
    if (ran) return;
    ran = true;
    fn();
  };
  const unlessPrevented = (event: Event) => {
    if (!event.defaultPrevented) once();
  };
  // Node fires no `exit` for an uncaught error (or a rejection it raises as one): a monitor
  // sees it, and it ends the process unless an `uncaughtException` listener keeps it alive.
  const unlessHandled = () => {
    if (process.listenerCount("uncaughtException") === 0) once();
  };
  process.on("exit", once);
  if (deno) {
    globalThis.addEventListener("unload", once);
    globalThis.addEventListener("error", unlessPrevented);
    globalThis.addEventListener("unhandledrejection", unlessPrevented);
  } else {
    process.on("uncaughtExceptionMonitor", unlessHandled);
  }
  return () => {
    process.off("exit", once);
    if (deno) {
      globalThis.removeEventListener("unload", once);
      globalThis.removeEventListener("error", unlessPrevented);
      globalThis.removeEventListener("unhandledrejection", unlessPrevented);
    } else {
      process.off("uncaughtExceptionMonitor", unlessHandled);
    }
  };
}

/** Resolves after the event loop has handled pending I/O (`setImmediate`). */
export function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** Ends the process. */
export function exitProcess(code: number): never {
  process.exit(code);
}

/** The program's own arguments (after the runtime and the script). */
export function programArgs(): string[] {
  return deno ? [...deno.args] : process.argv.slice(2);
}

/** This process's pid. */
export function ownPid(): number {
  return process.pid;
}

/** Whether this runtime is Deno (for diagnostics only). */
export const runtimeName: string = deno ? `deno ${deno.version.deno}` : `node ${process.version}`;

// The real fd 1 and fd 2, captured before anything can redirect them: the handshake line and
// hclog lines must reach the host even while a plugin's own output is being captured.
const realStdoutWrite: (bytes: Uint8Array) => void = deno
  ? ((w) => (b: Uint8Array) => writeAllSync(w, b))(deno.stdout.writeSync.bind(deno.stdout))
  : (b) => writeAllSync((chunk) => fs.writeSync(1, chunk), b);
const realStderrWrite: (bytes: Uint8Array) => void = deno
  ? ((w) => (b: Uint8Array) => writeAllSync(w, b))(deno.stderr.writeSync.bind(deno.stderr))
  : (b) => writeAllSync((chunk) => fs.writeSync(2, chunk), b);

function writeAllSync(write: (chunk: Uint8Array) => number, bytes: Uint8Array): void {
  let offset = 0;
  while (offset < bytes.length) offset += write(bytes.subarray(offset));
}

const encoder = new TextEncoder();

/** Writes to the process's real stdout, bypassing any capture. */
export function writeRealStdout(data: string | Uint8Array): void {
  realStdoutWrite(typeof data === "string" ? encoder.encode(data) : data);
}

/** Writes to the process's real stderr, bypassing any capture. */
export function writeRealStderr(data: string | Uint8Array): void {
  realStderrWrite(typeof data === "string" ? encoder.encode(data) : data);
}

/** The console methods that print something; {@link captureOutput} redirects each of them. */
const CONSOLE_METHODS = [
  "log",
  "info",
  "debug",
  "dir",
  "dirxml",
  "table",
  "trace",
  "warn",
  "error",
  "assert",
  "count",
  "countReset",
  "time",
  "timeLog",
  "timeEnd",
  "group",
  "groupCollapsed",
  "groupEnd",
] as const;

/** Where captured output goes. */
export type OutputSink = (channel: "stdout" | "stderr", bytes: Uint8Array) => void;

/**
 * Redirects what this process writes to stdout and stderr through the runtime's APIs
 * (`console.*`, `Deno.stdout`/`Deno.stderr`, `process.stdout`/`process.stderr`) into `sink`.
 * The real file descriptors stay reachable through {@link writeRealStdout} and
 * {@link writeRealStderr}. Returns a function that restores everything.
 *
 * A plugin needs this because its stdout carries the handshake line: a stray `console.log`
 * before the line would break the host, and after it go-plugin streams the output to the host
 * over GRPCStdio instead.
 */
export function captureOutput(sink: OutputSink): () => void {
  const restores: Array<() => void> = [];
  const patch = <T extends object, K extends keyof T>(target: T, key: K, value: T[K]) => {
    const had = Object.prototype.hasOwnProperty.call(target, key);
    const old = target[key];
    target[key] = value;
    restores.push(() => {
      if (had) target[key] = old;
      else delete target[key];
    });
  };
  const toBytes = (chunk: unknown, encoding?: unknown): Uint8Array => {
    if (chunk instanceof Uint8Array) return chunk;
    if (typeof chunk === "string" && typeof encoding === "string" && encoding !== "utf8") {
      return new Uint8Array(Buffer.from(chunk, encoding as BufferEncoding));
    }
    return encoder.encode(String(chunk));
  };

  for (const channel of ["stdout", "stderr"] as const) {
    // node:process streams (also what Deno's node compat and npm packages write to).
    const stream = process[channel] as unknown as { write: (...a: unknown[]) => boolean };
    patch(stream, "write", (chunk: unknown, encoding?: unknown, cb?: unknown) => {
      sink(channel, toBytes(chunk, encoding));
      const done = typeof encoding === "function" ? encoding : cb;
      if (typeof done === "function") queueMicrotask(() => (done as () => void)());
      return true;
    });
    if (deno) {
      const file = deno[channel];
      patch(file, "writeSync", (bytes: Uint8Array) => {
        sink(channel, bytes.slice());
        return bytes.length;
      });
      patch(file, "write", (bytes: Uint8Array) => {
        sink(channel, bytes.slice());
        return Promise.resolve(bytes.length);
      });
    }
  }

  // Every console method (count, time, group, table, trace, assert, …) goes through one
  // node:console Console writing to the sink, so each formats, indents and picks its stream as
  // the runtime's own would. Deno's console writes to the fds natively, so patching the streams
  // alone would not catch it.
  const sinkStream = (channel: "stdout" | "stderr") =>
    new Writable({
      decodeStrings: false,
      write(chunk: unknown, encoding: unknown, done: () => void) {
        sink(channel, toBytes(chunk, encoding));
        done();
      },
    });
  const captured = new Console({
    stdout: sinkStream("stdout"),
    stderr: sinkStream("stderr"),
    colorMode: false,
  }) as unknown as Record<string, unknown>;
  const globalConsole = console as unknown as Record<string, unknown>;
  for (const name of CONSOLE_METHODS) {
    const method = captured[name];
    if (typeof method === "function") patch(globalConsole, name, method.bind(captured));
  }
  return () => {
    for (const restore of restores.reverse()) restore();
  };
}

/**
 * One plain connection attempt to a plugin's address (go-plugin's reattach probe): true if
 * something accepts it within `timeoutMs`.
 */
export function probeAddress(
  network: "unix" | "tcp",
  address: string,
  timeoutMs = 2000,
): Promise<boolean> {
  return new Promise((resolve) => {
    const colon = address.lastIndexOf(":");
    const socket = network === "unix" ? net.connect({ path: address }) : net.connect({
      host: address.slice(0, colon).replace(/^\[|\]$/g, ""),
      port: Number(address.slice(colon + 1)),
    });
    const timer = setTimeout(() => done(false), timeoutMs);
    function done(ok: boolean) {
      clearTimeout(timer);
      socket.destroy();
      resolve(ok);
    }
    socket.once("connect", () => done(true));
    socket.once("error", () => done(false));
  });
}

/**
 * Calls `onGone` once when this process's parent is no longer the one it had when called
 * (the parent died and the process was reparented), checking every `intervalMs`. The check
 * does not keep the process alive. Returns a function that stops watching.
 */
export function watchParent(onGone: () => void, intervalMs = 250): () => void {
  const original = process.ppid;
  const timer = setInterval(() => {
    if (process.ppid === original) return;
    clearInterval(timer);
    onGone();
  }, intervalMs);
  unrefTimer(timer);
  return () => clearInterval(timer);
}

/** Lets the process exit while `timer` is pending (Deno's timers are numbers, Node's objects). */
function unrefTimer(timer: unknown): void {
  if (typeof timer === "number") deno?.unrefTimer?.(timer);
  else (timer as { unref?: () => void }).unref?.();
}

/** A timeout that does not keep the process alive; resolves after `ms`. */
export function unrefDelay(ms: number): Promise<void> {
  return new Promise((resolve) => unrefTimer(setTimeout(resolve, ms)));
}

/** Removes a directory if it is empty; anything else (missing, not empty) is left alone. */
export function removeEmptyDirSync(p: string): void {
  try {
    fs.rmdirSync(p);
  } catch {
    // Not empty, or already gone: either way not ours to force.
  }
}
