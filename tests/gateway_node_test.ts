/**
 * The gateway on Node 20+ (node:http instead of Deno.serve): bundled with `deno bundle
 * --platform node`, it supervises a bundled plugwire plugin over AutoMTLS and serves its
 * methods as JSON.
 */

import assert from "node:assert/strict";
import { assertNode20, bundleForNode } from "./_node.ts";
import { TEST_MARK, testNoLeftovers } from "./_util.ts";

Deno.test({
  name: "node: the gateway serves a plugwire plugin's methods as JSON on Node",
  async fn() {
    assertNode20();
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
