/**
 * The process seam of the host (go-plugin's `runner.Runner` and `AttachedRunner`): a plugin
 * process the host spawned and one it attached to (reattach) behind one interface, so that
 * `PluginClient` stops either the same way without knowing which it has; and the reading of a
 * spawned plugin's output before there is a connection (its stderr as log records, the first
 * stdout line as the handshake) (docs/protocol.md §2.4, §7, §9).
 *
 * @module
 */

import { type LogRecord, StderrLineParser } from "./hclog.ts";
import { LineSplitter, MAX_LINE_BYTES } from "./lines.ts";
import { trackChild } from "./lifetime.ts";
import { consoleLogSink, type LogSink } from "./logger.ts";
import {
  type ChildHandle,
  type ExitStatus,
  pidAlive,
  signalPid,
  type SpawnOptions,
  spawnProcess,
  yieldToEventLoop,
} from "./runtime.ts";

/** A plugin process, spawned or attached to. */
export interface PluginProcess {
  /** Its process id. */
  readonly pid: number;
  /** Settles with its exit status (an attached process: `{code: null, signal: null}`). */
  readonly exited: Promise<ExitStatus>;
  /**
   * The host started it and holds it as a child: a signal can only reach this process. An
   * attached process may be long gone and its pid reused, so its signals must follow a check
   * that the plugin still answers at its address.
   */
  readonly owned: boolean;
  /** Sends a signal (to the process group of a spawned plugin). */
  signal(signal: "SIGTERM" | "SIGKILL"): void;
  /** After the exit: kills what the plugin left in its process group (a plugin behind `sh -c`). */
  killStragglers(): void;
  /** Stops watching it (the exit hook of a spawned plugin, the pid poll of an attached one). */
  release(): void;
}

/** A plugin process this host spawned, with its output not yet read. */
export interface SpawnedProcess extends PluginProcess {
  /** Its stdout and stderr, as the runtime delivers them. */
  readonly child: ChildHandle;
}

/**
 * Spawns a plugin in its own process group and registers it with the host's exit hook, which
 * SIGKILLs it and removes `socketDir` if the host ends first. Rejects with the OS error.
 */
export async function spawnPlugin(
  path: string,
  args: readonly string[],
  options: SpawnOptions & { socketDir?: string },
): Promise<SpawnedProcess> {
  const child = await spawnProcess(path, args, options);
  const release = trackChild({ child, socketDir: options.socketDir });
  return {
    child,
    pid: child.pid,
    exited: child.exited,
    owned: true,
    signal: (signal) => void child.kill(signal),
    killStragglers: () => void child.killStragglers(),
    release,
  };
}

/**
 * A running plugin this host did not start (reattach): its exit is noticed by polling the pid
 * every second, as go-plugin does.
 */
export function attachedProcess(pid: number): PluginProcess {
  let poll: ReturnType<typeof setInterval> | undefined;
  const exited = new Promise<ExitStatus>((resolve) => {
    poll = setInterval(() => {
      if (!pidAlive(pid)) {
        clearInterval(poll);
        resolve({ code: null, signal: null });
      }
    }, 1000);
  });
  return {
    pid,
    exited,
    owned: false,
    signal: (signal) => void signalPid(pid, signal),
    killStragglers: () => {},
    release: () => clearInterval(poll),
  };
}

/**
 * A plugin served by this very process (`testing.ts`): it "exits" when `exited` settles and is
 * never signalled.
 */
export function thisProcess(pid: number, exited: Promise<ExitStatus>): PluginProcess {
  return {
    pid,
    exited,
    owned: false,
    signal: () => {},
    killStragglers: () => {},
    release: () => {},
  };
}

const STDERR_TAIL_LINES = 20;
/** go-plugin's bufio.Scanner stops at 64 KiB lines; a longer first line is not a handshake. */
const MAX_HANDSHAKE_LINE = MAX_LINE_BYTES;

/**
 * Follows a plugin's stderr: every line to the raw sink, parsed into a record for the logger,
 * and the last lines kept for error messages. `parse` reads a line in another flavour's log
 * format (Hipcheck's JSON); a line it returns nothing for is dropped.
 */
export function watchStderr(
  child: Pick<ChildHandle, "stderr">,
  name: string,
  options: {
    logger?: LogSink;
    stderr?: (line: string) => void;
    parse?: (line: string) => LogRecord | undefined;
  },
): { tail: string[]; done: Promise<void> } {
  const logger = options.logger ?? consoleLogSink("info");
  const hclog = new StderrLineParser();
  const parse = options.parse ?? ((line: string) => hclog.parse(line));
  const tail: string[] = [];
  let ended!: () => void;
  const done = new Promise<void>((resolve) => (ended = resolve));
  const lines = new LineSplitter((line) => {
    options.stderr?.(line);
    const record = parse(line);
    if (!record) return;
    tail.push(record.raw);
    if (tail.length > STDERR_TAIL_LINES) tail.shift();
    try {
      logger({ ...record, plugin: name });
    } catch {
      // A faulty sink must not take the host down.
    }
  });
  child.stderr.onData((chunk) => {
    lines.push(chunk);
    // One chunk at a time, with the event loop in between: a plugin flooding its stderr is
    // held back by the pipe instead of starving the host's calls.
    return yieldToEventLoop();
  });
  child.stderr.onEnd(() => {
    lines.flush();
    ended();
  });
  return { tail, done };
}

/**
 * The first line of a plugin's stdout (the handshake), without its newline; `eof` when stdout
 * ended first. Everything after it is read and discarded, undecoded, so a plugin printing to
 * its real stdout never blocks on a full pipe.
 */
export function readFirstLine(
  child: Pick<ChildHandle, "stdout">,
): Promise<{ line: string; eof: boolean }> {
  return new Promise((resolve) => {
    let pending = true;
    let ended = false;
    const lines = new LineSplitter((line) => {
      if (!pending) return;
      pending = false;
      resolve({ line: line.replace(/\n$/, ""), eof: ended });
    }, MAX_HANDSHAKE_LINE);
    child.stdout.onData((chunk) => {
      if (pending) lines.push(chunk);
    });
    child.stdout.onEnd(() => {
      if (!pending) return;
      ended = true;
      lines.flush();
      if (!pending) return;
      pending = false;
      resolve({ line: "", eof: true });
    });
  });
}
