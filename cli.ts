/**
 * The `plugwire` command: inspect, call and conformance-check any go-plugin plugin (Go,
 * Python, TypeScript), and front ends to codegen, bundling and the HTTP gateway.
 *
 *     deno task plugwire inspect --cookie BASIC_PLUGIN=hello -- ./plugin-go-grpc
 *     deno task plugwire call --cookie BASIC_PLUGIN=hello -m proto.KV/Get -d '{"key":"a"}' -- ./plugin-go-grpc
 *     deno task plugwire check --cookie BASIC_PLUGIN=hello -- ./plugin-go-grpc
 *
 * Run as a script it reads its arguments and exits with {@link main}'s status; imported, it
 * runs the command in-process.
 *
 * @module
 */

import { runCli } from "./internal/cli/main.ts";
import { type CliIo, commandArgs, processIo } from "./internal/cli/system.ts";
import { exitProcess } from "./internal/runtime.ts";

export type { CliIo } from "./internal/cli/system.ts";

/**
 * Runs the `plugwire` command with `args` (the words after `plugwire`) and returns its exit
 * status: 0 success, 1 failure (a failed check, a failed call, a plugin that would not start),
 * 2 a command line it cannot run (the message says what to do).
 *
 * @param args The arguments, e.g. `["check", "--cookie", "BASIC_PLUGIN=hello", "--", "./plugin"]`.
 * @param io Where output goes and input comes from; the process's own stdio by default.
 * @returns The exit status.
 *
 * @example Capturing the output of a subcommand's help
 * ```ts
 * import { type CliIo, main } from "@plugwire/plugwire/cli";
 * import assert from "node:assert/strict";
 *
 * let out = "";
 * const io: CliIo = {
 *   stdout: (text) => void (out += text),
 *   stderr: () => {},
 *   readStdin: () => Promise.resolve(""),
 *   env: {},
 *   terminal: { stdout: false, stderr: false },
 * };
 * assert.equal(await main(["check", "--help"], io), 0);
 * assert.match(out, /^plugwire check/);
 * assert.equal(await main(["check", "--", "./plugin"], io), 2); // no --cookie
 * ```
 */
export function main(args: readonly string[], io: CliIo = processIo()): Promise<number> {
  return runCli(args, io);
}

if (import.meta.main) exitProcess(await main(commandArgs()));
