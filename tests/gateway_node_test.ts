/**
 * The gateway on Node 20+ (node:http instead of Deno.serve): bundled with `deno bundle
 * --platform node`, it supervises a bundled plugwire plugin over AutoMTLS and serves its
 * methods as JSON.
 */

import assert from "node:assert/strict";
import { TEST_MARK, testNoLeftovers } from "./_util.ts";

const root = new URL("../", import.meta.url).pathname;

function nodeVersion(): number | undefined {
  try {
    const out = new Deno.Command("node", { args: ["--version"], stdout: "piped" }).outputSync();
    return Number(/^v(\d+)/.exec(new TextDecoder().decode(out.stdout))?.[1]);
  } catch {
    return undefined;
  }
}
const node = nodeVersion();

async function bundleForNode(entry: string, output: string): Promise<void> {
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

Deno.test({
  name: "node: the gateway serves a plugwire plugin's methods as JSON on Node",
  async fn() {
    assert.ok(
      node && node >= 20,
      `Node 20+ must be on PATH: the README's commands need Node and npm (found ${node ?? "none"})`,
    );
    const dir = await Deno.makeTempDir({ prefix: "plugwire-gw-node-" });
    try {
      await bundleForNode("tests/fixtures/gateway_node.ts", `${dir}/gateway.mjs`);
      await bundleForNode("tests/fixtures/node_plugin.ts", `${dir}/plugin.mjs`);
      const out = await new Deno.Command("node", {
        args: [`${dir}/gateway.mjs`, "node", `${dir}/plugin.mjs`],
        env: { PLUGWIRE_TEST_MARK: TEST_MARK, TMPDIR: dir },
        stdout: "piped",
        stderr: "piped",
      }).output();
      const stderr = new TextDecoder().decode(out.stderr);
      assert.equal(out.code, 0, stderr);
      const result = JSON.parse(new TextDecoder().decode(out.stdout));
      assert.match(result.runtime, /^v\d+/);
      assert.deepEqual(result.put, { status: 200, body: {} });
      assert.equal(result.get.status, 200);
      assert.equal(atob(result.get.body.value), result.runtime);
      assert.deepEqual(result.health, { status: "ok" });
      assert.equal(result.state, "ready");
      assert.equal(result.tls, true);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

testNoLeftovers();
