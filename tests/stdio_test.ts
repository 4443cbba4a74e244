import assert from "node:assert/strict";
import { startPlugin } from "../host.ts";
import { Test } from "../gen/grpctest/grpctest_pb.ts";
import { create } from "@bufbuild/protobuf";
import { EmptySchema } from "@bufbuild/protobuf/wkt";
import { OutputCapture } from "../internal/stdio.ts";
import { StdioData_Channel } from "../gen/core/plugin/grpc_stdio_pb.ts";
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
  await eventually("early output", () => decode(out.stdout).includes("Deno.stdout while serving"));
  assert.equal(
    decode(out.stdout),
    "console.log while serving\nprocess.stdout while serving\nDeno.stdout while serving\n",
  );
  assert.equal(plugin.protocolVersion, 1, "the handshake survived the noise");
});

Deno.test("stdio: output travels in messages of at most 32 KiB, in order", async () => {
  const out = collector();
  await using plugin = await startPlugin({
    ...helperPlugin("serve"),
    plugins: { test: Test },
    ...out.sinks,
  });
  const test = plugin.dispense("test");
  // One write larger than a message, then many small ones queued faster than they are sent.
  const big = "x".repeat(80 * 1024) + "end";
  await test.printStdio({ stdout: encode(big), stderr: new Uint8Array() });
  const lines = Array.from({ length: 2000 }, (_, i) => `line ${i}\n`).join("");
  await test.printStdio({ stdout: encode(lines), stderr: new Uint8Array() });
  await eventually("all output", () => decode(out.stdout) === big + lines);
  assert.ok(out.stdout.every((c) => c.length <= 32 * 1024), "every message ≤ 32 KiB");
  assert.ok(out.stdout.length >= 4, "the 80 KiB write was split");
  assert.ok(
    out.stdout.length < (big.length + lines.length) / 1024,
    `fewer messages than 1 KiB chunks would make (${out.stdout.length})`,
  );
});

Deno.test("stdio: queued writes to one channel are joined into one message, in order", async () => {
  const capture = new OutputCapture(); // not started: nothing of this process is captured
  for (let i = 0; i < 100; i++) capture.push(StdioData_Channel.STDOUT, encode(`out ${i}\n`));
  capture.push(StdioData_Channel.STDERR, encode("err\n"));
  capture.push(StdioData_Channel.STDOUT, encode("x".repeat(40 * 1024)));
  const controller = new AbortController();
  const messages: { channel: StdioData_Channel; text: string }[] = [];
  const stream = capture.impl().streamStdio(create(EmptySchema), {
    signal: controller.signal,
    metadata: {},
    broker: undefined,
  }) as AsyncIterable<{ channel: StdioData_Channel; data: Uint8Array }>;
  for await (const { channel, data } of stream) {
    messages.push({ channel, text: new TextDecoder().decode(data) });
    if (messages.length === 4) capture.endStreams(); // the stream ends after what it holds
  }
  const small = Array.from({ length: 100 }, (_, i) => `out ${i}\n`).join("");
  assert.deepEqual(messages.map((m) => [m.channel, m.text.length]), [
    [StdioData_Channel.STDOUT, small.length],
    [StdioData_Channel.STDERR, 4],
    [StdioData_Channel.STDOUT, 32 * 1024],
    [StdioData_Channel.STDOUT, 8 * 1024],
  ]);
  assert.equal(messages[0].text, small);
});

Deno.test("stdio: without sinks the host still drains, so a chatty plugin never stalls", async () => {
  await using plugin = await startPlugin({ ...helperPlugin("serve"), plugins: { test: Test } });
  const test = plugin.dispense("test");
  const chunk = encode("y".repeat(64 * 1024));
  for (let i = 0; i < 64; i++) await test.printStdio({ stdout: chunk, stderr: chunk }); // 8 MiB
  assert.equal((await test.double({ input: 2 })).output, 4);
});

Deno.test("stdio: every console method reaches the host, formatted as the runtime would", async () => {
  const out = collector();
  await using plugin = await startPlugin({
    ...helperPlugin("console-all"),
    plugins: { test: Test },
    ...out.sinks,
  });
  await eventually("console output", () => decode(out.stderr).includes("warned\n"));
  const stdout = decode(out.stdout);
  const stderr = decode(out.stderr);
  assert.match(
    stdout,
    new RegExp(
      [
        "^boot: 1",
        "boot: 2",
        "boot: 1",
        "timer: [\\d.]+m?s midway",
        "timer: [\\d.]+m?s",
        "\\{ xml: 1 \\}",
        "┌─+┬───┬───┐",
        "│ \\(index\\) │ a │ b │",
        "├─+┼───┼───┤",
        "│ 0 +│ 1 │ 2 │",
        "└─+┴───┴───┘",
        "group",
        "  indented",
        "not indented\n$",
      ].join("\n"),
    ),
  );
  assert.match(
    stderr,
    /^Assertion failed: arithmetic is broken\nTrace: traced\n( {4}at .+\n)+warned\n$/,
  );
  assert.ok(stderr.includes("helper_plugin.ts"), `the trace names no frame: ${stderr}`);
  assert.equal(plugin.protocolVersion, 1);
});

Deno.test("stdio: output not yet read when the host shuts the plugin down still reaches it", async () => {
  const out = collector();
  const plugin = await startPlugin({
    ...helperPlugin("serve"),
    plugins: { test: Test },
    ...out.sinks,
  });
  const big = "s".repeat(3 * 1024 * 1024);
  await plugin.dispense("test").printStdio({ stdout: encode(big), stderr: encode("bye") });
  await plugin.kill();
  assert.deepEqual(await plugin.exited, { code: 0, signal: null });
  assert.equal(decode(out.stdout).length, big.length);
  assert.equal(decode(out.stderr), "bye");
});

testNoLeftovers();
