/**
 * How large a message may be: by default both sides of a plugwire connection send and accept
 * up to 256 MiB in both directions (16 MiB round trips here); `maxMessageBytes` lowers the
 * limit on either side, and a message over it fails its call with RESOURCE_EXHAUSTED.
 */

import assert from "node:assert/strict";
import { PluginError, RpcError, startPlugin, Status } from "../host.ts";
import { KV } from "../gen/kv/kv_pb.ts";
import { helperPlugin, testNoLeftovers } from "./_util.ts";

const MiB = 1024 * 1024;
const kvPlugins = { plugins: { kv: KV } };

function bytes(size: number): Uint8Array {
  const out = new Uint8Array(size);
  for (let i = 0; i < size; i++) out[i] = i % 251;
  return out;
}

function isResourceExhausted(err: unknown): boolean {
  return err instanceof RpcError && err.code === Status.RESOURCE_EXHAUSTED;
}

Deno.test("16 MiB from host to plugin and back, with the default limits", async () => {
  await using plugin = await startPlugin({ ...helperPlugin("serve"), ...kvPlugins });
  const kv = plugin.dispense("kv");
  const value = bytes(16 * MiB);
  await kv.put({ key: "big", value });
  const back = (await kv.get({ key: "big" })).value;
  assert.equal(back.length, value.length);
  // Byte by byte: a deepEqual diff of 16 MiB would take a minute to print.
  const firstDifference = value.findIndex((byte, i) => back[i] !== byte);
  assert.equal(firstDifference, -1, `the values differ at byte ${firstDifference}`);
});

Deno.test("the host's maxMessageBytes: a larger request or response is RESOURCE_EXHAUSTED", async () => {
  const plugin = await startPlugin({ ...helperPlugin("serve"), ...kvPlugins });
  await plugin.dispense("kv").put({ key: "two", value: bytes(2 * MiB) });
  const config = plugin.reattachConfig();
  await plugin.close();
  // A second host with a 1 MiB limit, on the same plugin.
  const small = await startPlugin({
    ...kvPlugins,
    handshake: helperPlugin("serve").handshake,
    reattach: config,
    maxMessageBytes: 1 * MiB,
  });
  try {
    const kv = small.dispense("kv");
    await assert.rejects(kv.put({ key: "x", value: bytes(2 * MiB) }), isResourceExhausted);
    await assert.rejects(kv.get({ key: "two" }), isResourceExhausted);
    // Below the limit all is well.
    await kv.put({ key: "small", value: bytes(MiB / 2) });
    assert.equal((await kv.get({ key: "small" })).value.length, MiB / 2);
  } finally {
    await small.kill();
  }
});

Deno.test("the plugin's maxMessageBytes: a larger request is RESOURCE_EXHAUSTED", async () => {
  await using plugin = await startPlugin({
    ...helperPlugin("serve", { HELPER_MAX_MESSAGE_BYTES: String(MiB) }),
    ...kvPlugins,
  });
  const kv = plugin.dispense("kv");
  await assert.rejects(kv.put({ key: "x", value: bytes(2 * MiB) }), isResourceExhausted);
  await kv.put({ key: "small", value: bytes(MiB / 2) });
});

Deno.test("maxMessageBytes out of range: misconfigured on the host, a failed start on the plugin", async () => {
  for (const maxMessageBytes of [0, -1, 1.5, 2 ** 31]) {
    await assert.rejects(
      startPlugin({ ...helperPlugin("serve"), ...kvPlugins, maxMessageBytes }),
      (err) => err instanceof PluginError && err.code === "misconfigured",
    );
  }
  await assert.rejects(
    startPlugin({ ...helperPlugin("serve", { HELPER_MAX_MESSAGE_BYTES: "0" }), ...kvPlugins }),
    (err) =>
      err instanceof PluginError && err.code === "exited-before-connect" &&
      /maxMessageBytes must be a whole number/.test(err.message),
  );
});

testNoLeftovers();
