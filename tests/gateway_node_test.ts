/**
 * The gateway on Node 20+ (node:http instead of Deno.serve): bundled with `deno bundle
 * --platform node`, it supervises a bundled plugwire plugin over AutoMTLS and serves its
 * methods as JSON.
 */

import assert from "node:assert/strict";
import { runOnNode } from "./_node.ts";
import { testNoLeftovers } from "./_util.ts";

Deno.test({
  name: "node: the gateway serves a plugwire plugin's methods as JSON on Node",
  async fn() {
    const result = await runOnNode(
      "tests/fixtures/gateway_node.ts",
      "tests/fixtures/node_plugin.ts",
    );
    assert.match(result.runtime, /^v\d+/);
    assert.deepEqual(result.put, { status: 200, body: {} });
    assert.equal(result.get.status, 200);
    assert.equal(atob(result.get.body.value), result.runtime);
    assert.deepEqual(result.health, { status: "ok" });
    assert.equal(result.state, "ready");
    assert.equal(result.tls, true);
  },
});

testNoLeftovers();
