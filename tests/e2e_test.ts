import assert from "node:assert/strict";
import { PluginError, startPlugin } from "../host.ts";
import { KV } from "../gen/kv/kv_pb.ts";
import { Test } from "../gen/grpctest/grpctest_pb.ts";
import { helperPlugin, testNoLeftovers } from "./_util.ts";

const encode = (s: string) => new TextEncoder().encode(s);
const decode = (b: Uint8Array) => new TextDecoder().decode(b);

for (const network of ["unix", "tcp"] as const) {
  for (const autoMtls of [false, true]) {
    Deno.test(`startPlugin() runs a TS plugin over ${network}${autoMtls ? " with AutoMTLS" : ""}`, async () => {
      const plugin = await startPlugin({
        ...helperPlugin("serve", { HELPER_NETWORK: network }),
        plugins: { kv: KV, test: Test },
        autoMtls,
      });
      try {
        assert.equal(plugin.network, network);
        if (network === "tcp") assert.match(plugin.address, /^127\.0\.0\.1:\d+$/);
        const kv = plugin.dispense("kv");
        await kv.put({ key: "a", value: encode("1") });
        assert.equal(decode((await kv.get({ key: "a" })).value), "1");
        assert.equal((await plugin.dispense("test").double({ input: 21 })).output, 42);
        await plugin.ping();
      } finally {
        await plugin.kill();
      }
      assert.deepEqual(await plugin.exited, { code: 0, signal: null });
    });
  }
}

Deno.test("startPlugin() negotiates the highest common version across two versions", async () => {
  for (const [pluginVersions, expected] of [["1,2", 2], ["1", 1], ["2", 2]] as const) {
    await using plugin = await startPlugin({
      ...helperPlugin("serve", { HELPER_VERSIONS: pluginVersions }),
      versionedPlugins: { 1: { kv: KV }, 2: { test: Test } },
    });
    assert.equal(plugin.protocolVersion, expected);
  }
});

Deno.test("startPlugin() refuses a plugin with no version in common", async () => {
  await assert.rejects(
    startPlugin({
      ...helperPlugin("serve", { HELPER_VERSIONS: "3,4" }),
      versionedPlugins: { 1: { kv: KV }, 2: { kv: KV } },
    }),
    (err) =>
      err instanceof PluginError && err.code === "incompatible-app-version" &&
      err.message ===
        "incompatible API version with plugin. Plugin version: 3, Client versions: [1 2]",
  );
});

testNoLeftovers();
