/**
 * The broker pattern that aborted Deno 2.9.6 inside nghttp2 (denoland/deno#36788): a plugwire
 * host serving a fresh callback id per round, a plugwire plugin dialing it, calling it once and
 * closing it. Before plugwire's broker ended its connections without a GOAWAY, a host died by
 * SIGABRT or SIGSEGV around round 100-150 in most runs. This is the short version of
 * `deno task soak-broker` (1,000 rounds, several runs and variants; numbers in the README).
 * Also: a dialed connection is pooled by id, so the same id can be dialed again.
 */

import assert from "node:assert/strict";
import { startPlugin } from "../host.ts";
import { PingPong, Test } from "../gen/grpctest/grpctest_pb.ts";
import { denoCommand, helperPlugin, TEST_MARK, testNoLeftovers, testRoot } from "./_util.ts";

for (const mode of ["close-servers", "keep-servers"]) {
  Deno.test(`broker soak: 200 rounds of fresh callback ids (${mode}), the host survives`, async () => {
    const [command, ...args] = denoCommand("tests/fixtures/broker_loop_host.ts", "200", mode);
    const out = await new Deno.Command(command, {
      args,
      env: { PLUGWIRE_TEST_MARK: TEST_MARK, BROKER_LOOP_DIR: testRoot() },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(out.stderr);
    assert.equal(out.signal, null, `the host was killed by ${out.signal}:\n${stderr}`);
    assert.equal(out.code, 0, stderr);
    assert.deepEqual(JSON.parse(new TextDecoder().decode(out.stdout)), {
      rounds: 200,
      total: "200",
    });
  });
}

Deno.test("broker: an id can be dialed again after close(), and twice at once", async () => {
  await using plugin = await startPlugin({ ...helperPlugin("serve"), plugins: { test: Test } });
  // The plugin serves PingPong under a new id of its own.
  const { id } = await plugin.dispense("test").bidirectional({ id: 0 });
  const first = await plugin.broker.dial(id);
  assert.equal((await first.client(PingPong).ping({})).msg, "pong from plugin");
  first.close();
  // go-plugin's broker hands out an id's address once: a second dial would wait and fail.
  const again = await plugin.broker.dial(id, { timeoutMs: 1000 });
  const alongside = await plugin.broker.dial(id, { timeoutMs: 1000 });
  again.close();
  // Closing one lease leaves the other working.
  assert.equal((await alongside.client(PingPong).ping({})).msg, "pong from plugin");
  alongside.close();
});

testNoLeftovers();
