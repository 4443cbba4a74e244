/**
 * The same package on Node 20+: host and plugin bundled with `deno bundle --platform node` and
 * run by `node`, with AutoMTLS (Node's WebCrypto makes the P-521 certificates).
 */
import assert from "node:assert/strict";
import { assertNode20, bundleForNode } from "./_node.ts";
import { TEST_MARK, testNoLeftovers } from "./_util.ts";

Deno.test({
  name: "node: a plugwire host and a plugwire plugin run on Node with AutoMTLS",
  async fn() {
    assertNode20();
    const dir = await Deno.makeTempDir({ prefix: "plugwire-node-" });
    try {
      await bundleForNode("tests/fixtures/node_host.ts", `${dir}/host.mjs`);
      await bundleForNode("tests/fixtures/node_plugin.ts", `${dir}/plugin.mjs`);
      const out = await new Deno.Command("node", {
        args: [`${dir}/host.mjs`, "node", `${dir}/plugin.mjs`],
        env: { PLUGWIRE_TEST_MARK: TEST_MARK, TMPDIR: dir },
        stdout: "piped",
        stderr: "piped",
      }).output();
      const stderr = new TextDecoder().decode(out.stderr);
      assert.equal(out.code, 0, stderr);
      const result = JSON.parse(new TextDecoder().decode(out.stdout));
      assert.match(result.value, /^node v\d+/);
      assert.equal(result.tls, true);
      assert.deepEqual(result.exited, { code: 0, signal: null });
      assert.ok(result.records.includes("info put"), JSON.stringify(result.records));
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

testNoLeftovers();
