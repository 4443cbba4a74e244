import assert from "node:assert/strict";
import { startPlugin } from "../host.ts";
import { Test } from "../gen/grpctest/grpctest_pb.ts";
import { eventually, helperPlugin, testNoLeftovers } from "./_util.ts";

const encode = (s: string) => new TextEncoder().encode(s);
const decode = (chunks: Uint8Array[]) =>
  new TextDecoder().decode(new Uint8Array(chunks.flatMap((c) => [...c])));

function collector() {
  const stdout: Uint8Array[] = [];
  const stderr: Uint8Array[] = [];
  return {
    stdout,
    stderr,
    sinks: {
      syncStdout: (b: Uint8Array) => stdout.push(b.slice()),
      syncStderr: (b: Uint8Array) => stderr.push(b.slice()),
    },
  };
}

for (const autoMtls of [false, true]) {
  Deno.test(`stdio: a plugin's output reaches the host byte for byte${autoMtls ? " (mTLS)" : ""}`, async () => {
    const out = collector();
    await using plugin = await startPlugin({
      ...helperPlugin("serve"),
      plugins: { test: Test },
      autoMtls,
      ...out.sinks,
    });
    // go-plugin's own test strings (TestClient_grpcSyncStdio).
    await plugin.dispense("test").printStdio({
      stdout: encode("hello\nworld!"),
      stderr: encode("and some error\n messages!"),
    });
    await eventually(
      "stdio to arrive",
      () =>
        decode(out.stdout) === "hello\nworld!" &&
        decode(out.stderr) === "and some error\n messages!",
    );
  });
}

Deno.test("stdio: output written before the host connected is delivered, in order", async () => {
  const out = collector();
  await using plugin = await startPlugin({
    ...helperPlugin("stdout-noise"),
    plugins: { test: Test },
    ...out.sinks,
  });
  await eventually("early output", () => decode(out.stdout).includes("Deno.stdout before serve"));
  assert.equal(
    decode(out.stdout),
    "console.log before serve\nprocess.stdout before serve\nDeno.stdout before serve\n",
  );
  assert.equal(plugin.protocolVersion, 1, "the handshake survived the noise");
});

Deno.test("stdio: large writes arrive in chunks of at most 1 KiB", async () => {
  const out = collector();
  await using plugin = await startPlugin({
    ...helperPlugin("serve"),
    plugins: { test: Test },
    ...out.sinks,
  });
  const big = "x".repeat(5000) + "end";
  await plugin.dispense("test").printStdio({ stdout: encode(big), stderr: new Uint8Array() });
  await eventually("big output", () => decode(out.stdout) === big);
  assert.ok(out.stdout.every((c) => c.length <= 1024), "every chunk ≤ 1024 bytes");
  assert.ok(out.stdout.length >= 5);
});

Deno.test("stdio: without sinks the host still drains, so a chatty plugin never stalls", async () => {
  await using plugin = await startPlugin({ ...helperPlugin("serve"), plugins: { test: Test } });
  const test = plugin.dispense("test");
  const chunk = encode("y".repeat(64 * 1024));
  for (let i = 0; i < 64; i++) await test.printStdio({ stdout: chunk, stderr: chunk }); // 8 MiB
  assert.equal((await test.double({ input: 2 })).output, 4);
});

testNoLeftovers();
