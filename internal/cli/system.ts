/**
 * What the `plugwire` command needs of its runtime beyond internal/runtime.ts: its own
 * arguments, whether its outputs are terminals, its stdin, the Deno executable for the task
 * front ends, and (on Linux) the processes of a process group. Like runtime.ts, only `node:`
 * built-ins that Deno 2 and Node 20+ both provide.
 *
 * @module
 */

import * as fs from "node:fs";
import process from "node:process";
import { isatty } from "node:tty";
import { getEnvAll, runtimeName, writeRealStderr, writeRealStdout } from "../runtime.ts";

/**
 * The command's input and output, replaceable in tests and in programs that run the command
 * in-process.
 *
 * @example Running `plugwire` with its output in strings and a `--data -` request given
 * ```ts
 * import { type CliIo, main } from "@plugwire/plugwire/cli";
 * import assert from "node:assert/strict";
 *
 * const out: string[] = [];
 * const err: string[] = [];
 * const io: CliIo = {
 *   stdout: (text) => void out.push(text),
 *   stderr: (text) => void err.push(text),
 *   readStdin: () => Promise.resolve('{"key":"a"}'), // what `--data -` reads
 *   env: { NO_COLOR: "1" },
 *   terminal: { stdout: false, stderr: true }, // a terminal, but NO_COLOR: no colours
 * };
 * const status = await main(["inspect", "--cookie", "BASIC_PLUGIN=hello"], io);
 * assert.equal(status, 2); // no plugin command after --
 * assert.equal(out.join(""), "");
 * assert.match(err.join(""), /^plugwire: no plugin command: put it after --/);
 * ```
 */
export interface CliIo {
  /** Writes to stdout (reports, replies). */
  stdout(text: string): void;
  /** Writes to stderr (errors, progress). */
  stderr(text: string): void;
  /** Reads stdin to its end (for `call --data -`). */
  readStdin(): Promise<string>;
  /** The environment (`NO_COLOR`, and the base of the plugin's environment). */
  env: Record<string, string | undefined>;
  /** Whether stdout and stderr are terminals (colours and live progress only then). */
  terminal: { stdout: boolean; stderr: boolean };
}

/** The process's real stdio and environment. */
export function processIo(): CliIo {
  return {
    stdout: (text) => writeRealStdout(text),
    stderr: (text) => writeRealStderr(text),
    readStdin: async () => {
      const chunks: Uint8Array[] = [];
      for await (const chunk of process.stdin) chunks.push(chunk as Uint8Array);
      const decoder = new TextDecoder();
      return chunks.map((c) => decoder.decode(c, { stream: true })).join("") + decoder.decode();
    },
    env: getEnvAll(),
    terminal: { stdout: isatty(1), stderr: isatty(2) },
  };
}

/** The command line after the script name. */
export function commandArgs(): string[] {
  return process.argv.slice(2);
}

/** The Deno executable: this one when running on Deno, else `deno` from PATH. */
export function denoExecutable(): string {
  return runtimeName.startsWith("deno") ? process.execPath : "deno";
}

/**
 * Live processes of a process group, other than `except` (Linux: read from /proc; elsewhere
 * undefined, as it cannot be told).
 */
export function processGroupMembers(pgid: number, except?: number): number[] | undefined {
  let entries: string[];
  try {
    entries = fs.readdirSync("/proc");
  } catch {
    return undefined;
  }
  const found: number[] = [];
  for (const name of entries) {
    if (!/^\d+$/.test(name) || Number(name) === except) continue;
    let stat: string;
    try {
      stat = fs.readFileSync(`/proc/${name}/stat`, "utf8");
    } catch {
      continue; // gone meanwhile
    }
    // "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    if (fields[0] !== "Z" && Number(fields[2]) === pgid) found.push(Number(name));
  }
  return found;
}

/** The names of the entries of a directory, recursively (relative), or [] if it is gone. */
export function listTree(dir: string): string[] {
  const out: string[] = [];
  const walk = (path: string, prefix: string) => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(path, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      out.push(prefix + e.name);
      if (e.isDirectory()) walk(`${path}/${e.name}`, `${prefix}${e.name}/`);
    }
  };
  walk(dir, "");
  return out;
}

/** Whether a path exists (a socket file included), without following a final symlink. */
export function pathPresent(path: string): boolean {
  try {
    fs.lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

/** Reads a text file (for `call --data @file`). */
export function readTextFile(path: string): Promise<string> {
  return fs.promises.readFile(path, "utf8");
}
