/**
 * The same package on Node 20+: host and plugin bundled with `deno bundle --platform node` and
 * run by `node`, with AutoMTLS (Node's WebCrypto makes the P-521 certificates).
 */
import assert from "node:assert/strict";
import { runOnNode } from "./_node.ts";
import { testNoLeftovers } from "./_util.ts";

Deno.test({
  name: "node: a plugwire host and a plugwire plugin run on Node with AutoMTLS",
  async fn() {
    const result = await runOnNode("tests/fixtures/node_host.ts", "tests/fixtures/node_plugin.ts");
    assert.match(result.value, /^node v\d+/);
    assert.equal(result.tls, true);
    assert.deepEqual(result.exited, { code: 0, signal: null });
    assert.ok(result.records.includes("info put"), JSON.stringify(result.records));
  },
});

testNoLeftovers();
