import assert from "node:assert/strict";
import { PluginError, RpcError, startPlugin, Status } from "../host.ts";
import { PingPong, Test } from "../gen/grpctest/grpctest_pb.ts";
import { helperPlugin, testNoLeftovers } from "./_util.ts";

const variants = [
  { network: "unix", autoMtls: false },
  { network: "unix", autoMtls: true },
  { network: "tcp", autoMtls: false },
  { network: "tcp", autoMtls: true },
] as const;

for (const { network, autoMtls } of variants) {
  const how = `${network}${autoMtls ? " + mTLS" : ""}`;

  Deno.test(`broker: the plugin dials a service the host accepted (${how})`, async () => {
    await using plugin = await startPlugin({
      ...helperPlugin("serve", { HELPER_NETWORK: network }),
      plugins: { test: Test },
      autoMtls,
    });
    let pings = 0;
    const id = await plugin.broker.serve((s) =>
      s.add(PingPong, {
        ping: () => {
          pings++;
          return { msg: "pong" };
        },
      })
    );
    assert.equal(id, 1, "the host's ids start at 1");
    const { id: echoed } = await plugin.dispense("test").bidirectional({ id });
    assert.equal(echoed, id);
    assert.equal(pings, 1);
  });

  Deno.test(`broker: the host dials a service the plugin accepted (${how})`, async () => {
    await using plugin = await startPlugin({
      ...helperPlugin("serve", { HELPER_NETWORK: network }),
      plugins: { test: Test },
      autoMtls,
    });
    const { id } = await plugin.dispense("test").bidirectional({ id: 0 });
    assert.equal(id, 1, "the plugin's ids start at 1 too");
    const connection = await plugin.broker.dial(id);
    try {
      assert.equal((await connection.client(PingPong).ping({})).msg, "pong from plugin");
    } finally {
      connection.close();
    }
  });
}

Deno.test("broker: nested callbacks host -> plugin -> host -> plugin", async () => {
  await using plugin = await startPlugin({
    ...helperPlugin("serve"),
    plugins: { test: Test },
    autoMtls: true,
  });
  const test = plugin.dispense("test");
  const trail: string[] = [];
  const id = await plugin.broker.serve((s) =>
    s.add(PingPong, {
      async ping() {
        trail.push("host callback");
        // Back into the plugin while the plugin's call to us is still open.
        const { output } = await test.double({ input: 21 });
        trail.push(`plugin answered ${output}`);
        return { msg: "pong" };
      },
    })
  );
  trail.push("host calls plugin");
  await test.bidirectional({ id });
  assert.deepEqual(trail, ["host calls plugin", "host callback", "plugin answered 42"]);
});

Deno.test("broker: dialing an id nobody accepted fails after the wait", async () => {
  await using plugin = await startPlugin({ ...helperPlugin("serve"), plugins: { test: Test } });
  await assert.rejects(
    plugin.broker.dial(99, { timeoutMs: 200 }),
    (err) =>
      err instanceof PluginError && err.code === "broker" &&
      err.message.startsWith("timeout waiting for connection info"),
  );
});

Deno.test("broker: brokered listeners and their sockets close with the client", async () => {
  const plugin = await startPlugin({ ...helperPlugin("serve"), plugins: { test: Test } });
  const { id } = await plugin.dispense("test").bidirectional({ id: 0 });
  const hostSide = await plugin.broker.serve((s) =>
    s.add(PingPong, { ping: () => ({ msg: "pong" }) })
  );
  const socketDir = plugin.address.slice(0, plugin.address.lastIndexOf("/"));
  const socketsBefore = [...Deno.readDirSync(socketDir)].length;
  assert.ok(socketsBefore >= 3, `main + 2 brokered sockets, saw ${socketsBefore}`);
  assert.ok(id > 0 && hostSide > 0);
  await plugin.kill();
  assert.throws(() => Deno.statSync(socketDir), Deno.errors.NotFound);
});

Deno.test("broker: a dial still waiting when the client is killed fails at once", async () => {
  const plugin = await startPlugin({ ...helperPlugin("serve"), plugins: { test: Test } });
  const started = Date.now();
  const failed = assert.rejects(
    plugin.broker.dial(42, { timeoutMs: 60_000 }),
    (err) => err instanceof RpcError && err.code === Status.CANCELLED,
  );
  await plugin.kill();
  await failed;
  assert.ok(Date.now() - started < 5000);
});

testNoLeftovers();
