/**
 * Runs the helper plugin by hand, as a host would start it but without a host, so a test can
 * read its handshake line, its exit status and its output directly.
 *
 * @module
 */

import { denoCommand, HANDSHAKE, killQuietly, TEST_MARK } from "./_util.ts";

const decode = (b: Uint8Array) => new TextDecoder().decode(b);

/** This process's environment without anything a host would set, plus the leak-check mark. */
function byHandEnv(extra: Record<string, string>): Record<string, string> {
  const env = Deno.env.toObject();
  for (const name of Object.keys(env)) {
    if (
      name.startsWith("PLUGIN_") || name.startsWith("HELPER_") ||
      name === HANDSHAKE.magicCookieKey || name === "PLUGWIRE_LOG_LEVEL"
    ) delete env[name];
  }
  return { ...env, PLUGWIRE_TEST_MARK: TEST_MARK, ...extra };
}

function helperCommand(env: Record<string, string>): Deno.Command {
  const [command, ...args] = denoCommand("tests/fixtures/helper_plugin.ts");
  return new Deno.Command(command, {
    args,
    env: byHandEnv(env),
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  });
}

export interface Ended {
  status: { code: number; signal: Deno.Signal | null };
  stdout: string;
  stderr: string;
}

/** Runs the helper to its end (SIGKILLed after `timeoutMs`, so a test never hangs). */
export async function runToEnd(env: Record<string, string>, timeoutMs = 15_000): Promise<Ended> {
  const child = helperCommand(env).spawn();
  const timer = setTimeout(() => killQuietly(child), timeoutMs);
  try {
    const out = await child.output();
    return {
      status: { code: out.code, signal: out.signal },
      stdout: decode(out.stdout),
      stderr: decode(out.stderr),
    };
  } finally {
    clearTimeout(timer);
  }
}

export interface ByHand {
  child: Deno.ChildProcess;
  /** The first stdout line, "\n" included (or all of stdout if it ended without one). */
  line: string;
  /** Signals the process (unless it is gone) and collects the rest of its output. */
  stop(signal?: Deno.Signal): Promise<Ended>;
}

/**
 * Starts the helper as a host would, by hand, and reads the first line of its stdout. With
 * `readStdout: false` nothing after that line is read until {@link ByHand.stop}, as with a
 * host that ignores a plugin's stdout once it has the handshake (pyvider-rpcplugin).
 */
export async function startByHand(
  env: Record<string, string>,
  { readStdout = true }: { readStdout?: boolean } = {},
): Promise<ByHand> {
  const child = helperCommand(env).spawn();
  let ended = false;
  const status = child.status.then((s) => {
    ended = true;
    return s;
  });
  const stderr = new Response(child.stderr).text();
  const reader = child.stdout.getReader();
  const decoder = new TextDecoder();
  let text = "";
  const timer = setTimeout(() => killQuietly(child), 15_000);
  try {
    while (!text.includes("\n")) {
      const { done, value } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
    }
  } finally {
    clearTimeout(timer);
  }
  const newline = text.indexOf("\n");
  const line = newline >= 0 ? text.slice(0, newline + 1) : text;
  let after = newline >= 0 ? text.slice(newline + 1) : "";
  let readRest: () => void = () => {};
  const restAllowed = readStdout ? Promise.resolve() : new Promise<void>((r) => (readRest = r));
  const rest = (async () => {
    await restAllowed;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      after += decoder.decode(value, { stream: true });
    }
  })();
  return {
    child,
    line,
    async stop(signal: Deno.Signal = "SIGTERM") {
      if (!ended) child.kill(signal);
      readRest();
      const s = await status;
      await rest;
      return { status: { code: s.code, signal: s.signal }, stdout: after, stderr: await stderr };
    },
  };
}
