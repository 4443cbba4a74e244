/**
 * A host reading a hostile or broken plugin's bytes does bounded work and fails fast with a
 * typed error: a 10 MB first line, 50 MiB of random bytes on stderr with and without newlines,
 * a handshake naming a socket that does not exist or is not a gRPC server, a certificate that
 * is not X.509, and 16 MiB messages in both directions.
 */

import assert from "node:assert/strict";
import { startPlugin } from "../host.ts";
import { KV } from "../gen/kv/kv_pb.ts";
import { Streams } from "../gen/streams/streams_pb.ts";
import { assertNothingLeft, helperPlugin, startFails, testNoLeftovers } from "./_util.ts";

const MAX_LINE = 64 * 1024;
const kvPlugins = { plugins: { kv: KV } };

Deno.test("a 10 MB first line without a newline: unrecognized-handshake after 64 KiB", async () => {
  const err = await startFails({ ...helperPlugin("long-first-line"), ...kvPlugins });
  assert.equal(err.code, "unrecognized-handshake");
  assert.ok(err.message.length < 2 * MAX_LINE, `a message of ${err.message.length} chars`);
  assertNothingLeft();
});

Deno.test("a handshake naming a socket that does not exist: connection-failed with ENOENT, at once", async () => {
  const err = await startFails({ ...helperPlugin("missing-socket"), ...kvPlugins });
  assert.equal(err.code, "connection-failed");
  // The first failed attempt ends the start (a host that waited would say "no connection").
  assert.match(err.message, /the connection failed \(last error: .*ENOENT/);
  assert.equal(typeof err.pid, "number");
  assertNothingLeft();
});

Deno.test("a handshake naming a loopback port nobody listens on: connection-failed with ECONNREFUSED", async () => {
  const err = await startFails({ ...helperPlugin("refused-tcp"), ...kvPlugins });
  assert.equal(err.code, "connection-failed");
  assert.match(err.message, /the connection failed \(last error: .*ECONNREFUSED/);
  assertNothingLeft();
});

Deno.test("a handshake naming a socket that is not a gRPC server: connection-failed", async () => {
  // startTimeoutMs bounds the connection wait too: a host that waited for a retry would
  // fail with "no connection within 60000 ms", not with the peer's protocol error.
  const err = await startFails({
    ...helperPlugin("foreign-socket"),
    ...kvPlugins,
    startTimeoutMs: 60_000,
  });
  assert.equal(err.code, "connection-failed");
  assert.match(err.message, /the connection failed \(last error: .+\)/);
  assertNothingLeft();
});

for (const mode of ["junk-cert", "trailing-cert"]) {
  Deno.test(`AutoMTLS, handshake certificate that is not one X.509 certificate (${mode}): bad-certificate`, async () => {
    const err = await startFails({ ...helperPlugin(mode), ...kvPlugins, autoMtls: true });
    assert.equal(err.code, "bad-certificate");
    assert.match(err.message, /handshake certificate that cannot be used/);
    assertNothingLeft();
  });
}

/** Starts the stderr flood; returns every raw stderr line the host passed on, once done. */
async function flood(newlines: boolean) {
  const lines: string[] = [];
  let done!: () => void;
  const finished = new Promise<void>((resolve) => (done = resolve));
  const plugin = await startPlugin({
    ...helperPlugin("stderr-flood", { HELPER_FLOOD_NEWLINES: newlines ? "1" : "0" }),
    plugins: { streams: Streams },
    stderr: (line) => {
      lines.push(line);
      if (line === "flood done\n") done();
    },
  });
  // The host keeps calling the plugin while it reads the flood: its calls are not starved.
  let calls = 0;
  let flooding = true;
  const caller = (async () => {
    const streams = plugin.dispense("streams");
    while (flooding) {
      assert.equal((await streams.next({ value: BigInt(calls) })).value, BigInt(calls + 1));
      calls++;
    }
  })();
  await finished;
  const callsDuringFlood = calls;
  flooding = false;
  await caller;
  await plugin.kill();
  return { lines, callsDuringFlood };
}

Deno.test("50 MiB of random bytes on stderr, no newlines: passed on in 64 KiB pieces", async () => {
  const { lines, callsDuringFlood } = await flood(false);
  const pieces = lines.slice(0, -2); // before "\n" + "flood done\n"
  assert.ok(pieces.length >= (50 * 1024 * 1024) / MAX_LINE, `${pieces.length} pieces`);
  for (const piece of pieces) {
    assert.ok(piece.length <= MAX_LINE, `a piece of ${piece.length} chars`);
    assert.ok(!piece.includes("\n"));
  }
  assert.ok(callsDuringFlood > 0, "no call completed while the host read the flood");
});

Deno.test("50 MiB of random bytes on stderr, with newlines: every line, calls still answered", async () => {
  const { lines, callsDuringFlood } = await flood(true);
  // Random bytes hold a newline every 256 bytes on average.
  assert.ok(lines.length > 100_000, `${lines.length} lines`);
  for (const line of lines) assert.ok(line.length <= MAX_LINE, `a line of ${line.length} chars`);
  assert.ok(callsDuringFlood > 0, "no call completed while the host read the flood");
});

testNoLeftovers();
