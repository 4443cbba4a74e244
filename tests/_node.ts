/**
 * What the Node 20+ tests share: the check that Node is there (the README's commands need it, so
 * its absence is a failure, not a skip) and bundling an entry point for Node.
 */
import assert from "node:assert/strict";
import { TEST_MARK } from "./_util.ts";

const root = new URL("../", import.meta.url).pathname;

/** Fails the calling test unless `node` 20 or later is on PATH. */
export function assertNode20(): void {
  let major: number | undefined;
  try {
    const out = new Deno.Command("node", { args: ["--version"], stdout: "piped" }).outputSync();
    major = Number(/^v(\d+)/.exec(new TextDecoder().decode(out.stdout))?.[1]);
  } catch {
    major = undefined;
  }
  assert.ok(
    major !== undefined && major >= 20,
    `Node 20+ must be on PATH: the README's commands need Node and npm (found ${major ?? "none"})`,
  );
}

/** `deno bundle --platform=node` of `entry` (relative to the repository) into `output`. */
export async function bundleForNode(entry: string, output: string): Promise<void> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "bundle",
      `--config=${root}deno.json`,
      "--platform=node",
      "-o",
      output,
      `${root}${entry}`,
    ],
    stdout: "null",
    stderr: "piped",
  }).output();
  assert.ok(out.success, new TextDecoder().decode(out.stderr));
}

/**
 * Bundles `main` and the plugin fixture `plugin` for Node, runs `node main.mjs node plugin.mjs`
 * in a temp dir, asserts exit status 0 and returns the JSON `main` printed. Node 20+ is required.
 */
// deno-lint-ignore no-explicit-any
export async function runOnNode(main: string, plugin: string): Promise<any> {
  assertNode20();
  const dir = await Deno.makeTempDir({ prefix: "plugwire-node-" });
  try {
    await bundleForNode(main, `${dir}/main.mjs`);
    await bundleForNode(plugin, `${dir}/plugin.mjs`);
    const out = await new Deno.Command("node", {
      args: [`${dir}/main.mjs`, "node", `${dir}/plugin.mjs`],
      env: { PLUGWIRE_TEST_MARK: TEST_MARK, TMPDIR: dir },
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
    return JSON.parse(new TextDecoder().decode(out.stdout));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}
