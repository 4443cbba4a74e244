/**
 * Ships a plugin as one file a host can run:
 *
 *     deno task bundle  <plugin.ts> <output>   # one JS file with a deno shebang; works offline
 *     deno task compile <plugin.ts> <output>   # a standalone executable (needs Deno's denort)
 *
 * `bundle` writes `deno bundle` output behind a `#!/usr/bin/env -S deno run …` line with the
 * permissions a plugin needs and {@link PLUGIN_V8_FLAGS}, and makes it executable: a single-file plugin for any machine
 * with Deno on PATH. `compile` runs `deno compile`, which needs the `denort` runtime: Deno
 * downloads it, or takes the one `DENORT_BIN` names. Where it cannot, `compile` says so in one
 * line and exits with status 3, so callers can tell "not possible here" from a failure.
 *
 * @module
 */

/**
 * What a plugin needs: its environment (the handshake variables), files (unix sockets, the
 * temp dir, its own data) and network (sockets, and TCP on 127.0.0.1 when asked for).
 */
export const PLUGIN_PERMISSIONS: readonly string[] = [
  "--allow-env",
  "--allow-read",
  "--allow-write",
  "--allow-net",
];

/**
 * V8 flags a bundled plugin runs with (its shebang line). A young generation of at most 1 MiB
 * semi-spaces instead of V8's 16: a plugin's garbage is short-lived (messages, HTTP/2 frames),
 * so the smaller nursery keeps the peak RSS of a plugin that streamed 32 MiB at about 140 MiB
 * instead of 200 (bench/README.md, "Tuning"), with no measurable cost in latency or throughput.
 */
export const PLUGIN_V8_FLAGS: readonly string[] = ["--max-semi-space-size=1"];

/** The exit status of `compile` when the denort runtime cannot be obtained. */
export const EXIT_NO_RUNTIME = 3;

const config = new URL("../deno.json", import.meta.url).pathname;

async function run(args: string[]): Promise<{ code: number; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args,
    stdout: "inherit",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  return { code: out.code, stderr: new TextDecoder().decode(out.stderr) };
}

/** Bundles `entry` into an executable single-file plugin at `output`. */
export async function bundlePlugin(entry: string, output: string): Promise<void> {
  const tmp = `${output}.tmp.js`;
  const { code, stderr } = await run([
    "bundle",
    `--config=${config}`,
    "--platform=deno",
    "--minify",
    "-o",
    tmp,
    entry,
  ]);
  if (code !== 0) throw new Error(`deno bundle failed:\n${stderr}`);
  const body = await Deno.readTextFile(tmp);
  await Deno.remove(tmp);
  const shebang = `#!/usr/bin/env -S deno run --quiet --no-prompt ${
    PLUGIN_PERMISSIONS.join(" ")
  } --v8-flags=${PLUGIN_V8_FLAGS.join(",")}\n`;
  await Deno.writeTextFile(output, shebang + body, { mode: 0o755 });
  await Deno.chmod(output, 0o755);
}

/** Why `deno compile` failed, when the reason is the missing runtime; undefined otherwise. */
export function missingRuntime(stderr: string): string | undefined {
  // Only the runtime download (or DENORT_BIN) failing; a type error or a bad import is not this.
  if (!/Setting up base binary/.test(stderr) || !/denort|DENORT_BIN/.test(stderr)) return undefined;
  const url = /https:\/\/dl\.deno\.land\/[^\s)]+/.exec(stderr)?.[0];
  return `deno compile cannot obtain its denort runtime${url ? ` (${url} is unreachable)` : ""}; ` +
    "set DENORT_BIN to a denort binary of the same Deno version, or use `deno task bundle`";
}

/**
 * Compiles `entry` into a standalone executable. Resolves to undefined on success, or to the
 * one-line reason when the runtime is unavailable; throws on other failures.
 */
export async function compilePlugin(entry: string, output: string): Promise<string | undefined> {
  const { code, stderr } = await run([
    "compile",
    `--config=${config}`,
    "--quiet",
    "--no-prompt",
    ...PLUGIN_PERMISSIONS,
    "-o",
    output,
    entry,
  ]);
  if (code === 0) return undefined;
  const reason = missingRuntime(stderr);
  if (reason) return reason;
  throw new Error(`deno compile failed:\n${stderr}`);
}

if (import.meta.main) {
  const [command, entry, output] = Deno.args;
  if ((command !== "bundle" && command !== "compile") || !entry || !output) {
    console.error("usage: ship.ts bundle|compile <plugin.ts> <output>");
    Deno.exit(2);
  }
  if (command === "bundle") {
    await bundlePlugin(entry, output);
    console.error(`bundled ${entry} -> ${output} (${(await Deno.stat(output)).size} bytes)`);
  } else {
    const reason = await compilePlugin(entry, output);
    if (reason) {
      console.error(reason);
      Deno.exit(EXIT_NO_RUNTIME);
    }
    console.error(`compiled ${entry} -> ${output} (${(await Deno.stat(output)).size} bytes)`);
  }
}
