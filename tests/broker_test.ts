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
    const { id } = await plugin.broker.serve((s) =>
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
  const { id } = await plugin.broker.serve((s) =>
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
  const { id: hostSide } = await plugin.broker.serve((s) =>
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

Deno.test("broker.serve() returns a disposable server: close() ends it, its socket goes, dials fail", async () => {
  await using plugin = await startPlugin({ ...helperPlugin("serve"), plugins: { test: Test } });
  const socketDir = plugin.address.slice(0, plugin.address.lastIndexOf("/"));
  const before = [...Deno.readDirSync(socketDir)].length;
  let pings = 0;
  {
    await using server = await plugin.broker.serve((s) =>
      s.add(PingPong, {
        ping: () => {
          pings++;
          return { msg: "pong" };
        },
      })
    );
    assert.equal([...Deno.readDirSync(socketDir)].length, before + 1, "its socket exists");
    assert.equal((await plugin.dispense("test").bidirectional({ id: server.id })).id, server.id);
    assert.equal(pings, 1);
  } // leaving the block closed it
  assert.equal([...Deno.readDirSync(socketDir)].length, before, "its socket is gone");
  const again = await plugin.broker.serve((s) => s.add(PingPong, { ping: () => ({ msg: "" }) }));
  await again.close();
  await again.close(); // idempotent
  await assert.rejects(
    plugin.dispense("test").bidirectional({ id: again.id }, { timeoutMs: 10_000 }),
  );
  assert.equal(pings, 1);
});

Deno.test("broker: an aborted signal stops serve() and dial() with closed, and closes a server", async () => {
  await using plugin = await startPlugin({ ...helperPlugin("serve"), plugins: { test: Test } });
  const socketDir = plugin.address.slice(0, plugin.address.lastIndexOf("/"));
  const before = [...Deno.readDirSync(socketDir)].length;
  const isClosed = (err: unknown) => err instanceof PluginError && err.code === "closed";
  await assert.rejects(
    plugin.broker.serve((s) => s.add(PingPong, {}), { signal: AbortSignal.abort() }),
    isClosed,
  );
  const request = new AbortController();
  await plugin.broker.serve((s) => s.add(PingPong, {}), { signal: request.signal });
  assert.equal([...Deno.readDirSync(socketDir)].length, before + 1);
  request.abort();
  await new Promise((resolve) => setTimeout(resolve, 50));
  assert.equal([...Deno.readDirSync(socketDir)].length, before, "aborting closed the server");

  const dialing = new AbortController();
  const dial = assert.rejects(
    plugin.broker.dial(77, { timeoutMs: 60_000, signal: dialing.signal }),
    isClosed,
  );
  dialing.abort();
  await dial;
  await assert.rejects(plugin.broker.dial(78, { signal: AbortSignal.abort() }), isClosed);
});

Deno.test("PluginClient.ping() takes a signal: an aborted one is CANCELLED", async () => {
  await using plugin = await startPlugin({ ...helperPlugin("serve"), plugins: { test: Test } });
  await plugin.ping({ signal: new AbortController().signal });
  await assert.rejects(
    plugin.ping({ signal: AbortSignal.abort() }),
    (err) => err instanceof RpcError && err.code === Status.CANCELLED,
  );
});

testNoLeftovers();
