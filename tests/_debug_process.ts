/**
 * Starting a plugin in debug mode the way a user does (`terraform-provider-x -debug`): a plain
 * child process, no host environment, whose stdout carries the `TF_REATTACH_PROVIDERS` line.
 *
 * @module
 */

import { TEST_MARK, testRoot } from "./_util.ts";

/** A plugin process in debug mode and the JSON it printed. */
export interface DebugProcess {
  /** The value of TF_REATTACH_PROVIDERS it printed, unquoted. */
  providers: string;
  /** Everything it printed up to and including that line. */
  printed: string;
  process: Deno.ChildProcess;
  /** Sends SIGINT (a user's Ctrl-C) and waits for the exit. */
  interrupt(): Promise<Deno.CommandStatus>;
}

function passThrough(...names: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of names) {
    const value = Deno.env.get(name);
    if (value !== undefined) out[name] = value;
  }
  return out;
}

/** Spawns `cmd` and reads its stdout up to the TF_REATTACH_PROVIDERS line. */
export async function startDebugProcess(
  cmd: string[],
  env: Record<string, string>,
): Promise<DebugProcess> {
  const process = new Deno.Command(cmd[0], {
    args: cmd.slice(1),
    // No host environment (no cookie, no PLUGIN_* variables): only what a shell gives.
    env: {
      ...passThrough("HOME", "PATH", "DENO_DIR", "TMPDIR"),
      PLUGWIRE_TEST_MARK: TEST_MARK,
      PLUGIN_UNIX_SOCKET_DIR: testRoot(),
      ...env,
    },
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const reader = process.stdout.getReader();
  const decoder = new TextDecoder();
  let printed = "";
  let match: RegExpExecArray | null = null;
  while (!match) {
    const { value, done } = await reader.read();
    if (done) {
      await process.status;
      throw new Error(`debug process ended without a reattach line; it printed:\n${printed}`);
    }
    printed += decoder.decode(value, { stream: true });
    match = /^\tTF_REATTACH_PROVIDERS='(.*)'\n/m.exec(printed);
  }
  // Keep reading, so that the process never blocks on a full pipe.
  void (async () => {
    while (!(await reader.read()).done);
  })().catch(() => {});
  return {
    providers: match[1].replaceAll(`'"'"'`, "'"),
    printed,
    process,
    async interrupt() {
      process.kill("SIGINT");
      return await process.status;
    },
  };
}
