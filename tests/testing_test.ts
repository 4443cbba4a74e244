// @plugwire/plugwire/testing: a plugin set served in this process with the host's client
// connected to it, over real gRPC on a unix socket (plaintext and AutoMTLS), broker included.
import assert from "node:assert/strict";
import { connectInProcess } from "../testing.ts";
import { grpcPlugin, RpcError, Status } from "../plugin.ts";
import { PluginError } from "../host.ts";
import { KV } from "../gen/kv/kv_pb.ts";
import { AddHelper, Counter } from "../gen/counter/counter_pb.ts";
import { Health } from "../gen/core/grpc/health/v1/health_pb.ts";
import { ServerReflection } from "../gen/core/grpc/reflection/v1/reflection_pb.ts";
import { testNoLeftovers } from "./_util.ts";

const store = new Map<string, Uint8Array>();
const kv = grpcPlugin(KV, {
  get: ({ key }) => {
    const value = store.get(key);
    if (!value) throw new RpcError(Status.NOT_FOUND, `no key ${key}`);
    return { value };
  },
  put: ({ key, value }) => {
    store.set(key, value);
    return {};
  },
});

for (const autoMtls of [false, true]) {
  Deno.test(`connectInProcess() serves and calls handlers${autoMtls ? " over AutoMTLS" : ""}`, async () => {
    let address: string;
    {
      await using plugin = await connectInProcess({
        serve: { plugins: { kv } },
        host: { plugins: { kv: KV } },
        autoMtls,
      });
      address = plugin.address;
      const client = plugin.dispense("kv");
      await client.put({ key: "a", value: new Uint8Array([7]) });
      assert.deepEqual([...(await client.get({ key: "a" })).value], [7]);
      await assert.rejects(
        client.get({ key: "missing" }),
        (err) => err instanceof RpcError && err.code === Status.NOT_FOUND,
      );
      await plugin.client.ping();
      assert.equal(
        (await plugin.client.client(Health).check({ service: "plugin" })).status,
        1, // SERVING
      );
      assert.equal(plugin.client.reattachConfig().tls !== undefined, autoMtls);
    }
    // Leaving the block closed the server and removed its socket directory.
    assert.throws(() => Deno.statSync(address));
  });
}

Deno.test("connectInProcess() serves reflection with the plugin's services", async () => {
  await using plugin = await connectInProcess({
    serve: { plugins: { kv } },
    host: { plugins: { kv: KV } },
  });
  const reflection = plugin.client.client(ServerReflection);
  const replies = reflection.serverReflectionInfo((async function* () {
    yield { messageRequest: { case: "listServices", value: "" } } as const;
  })());
  const names: string[] = [];
  for await (const reply of replies) {
    if (reply.messageResponse.case === "listServicesResponse") {
      names.push(...reply.messageResponse.value.service.map((s) => s.name));
    }
  }
  assert.ok(names.includes("proto.KV"), names.join(","));
  assert.ok(names.includes("plugin.GRPCBroker"), names.join(","));
});

Deno.test("connectInProcess(): a plugin method dials the host's broker server", async () => {
  const counts = new Map<string, bigint>();
  const counter = grpcPlugin(Counter, {
    get: ({ key }) => ({ value: counts.get(key) ?? 0n }),
    async put({ addServer, key, value }, { broker }) {
      const conn = await broker.dial(addServer);
      try {
        const { r } = await conn.client(AddHelper).sum({ a: counts.get(key) ?? 0n, b: value });
        counts.set(key, r);
      } finally {
        conn.close();
      }
      return {};
    },
  });
  await using plugin = await connectInProcess({
    serve: { plugins: { counter } },
    host: { plugins: { counter: Counter } },
  });
  await using adder = await plugin.client.broker.serve((registrar) =>
    registrar.add(AddHelper, { sum: ({ a, b }) => ({ r: a + b }) })
  );
  await plugin.dispense("counter").put({ addServer: adder.id, key: "hits", value: 5n });
  assert.equal((await plugin.dispense("counter").get({ key: "hits" })).value, 5n);
});

Deno.test("connectInProcess() with a strict implementation lacking a method throws, leaves nothing", async () => {
  await assert.rejects(
    connectInProcess({
      serve: { plugins: { kv: grpcPlugin(KV, { put: () => ({}) }, { strict: true }) } },
      host: { plugins: { kv: KV } },
    }),
    (err) => err instanceof TypeError && /no implementation of get\(\)/.test(err.message),
  );
});

Deno.test("connectInProcess(): dispense() of an unknown name is unknown-plugin", async () => {
  await using plugin = await connectInProcess({
    serve: { plugins: { kv } },
    host: { plugins: { kv: KV } },
  });
  assert.throws(
    () => plugin.client.dispense("nope" as "kv"),
    (err) => err instanceof PluginError && err.code === "unknown-plugin",
  );
});

testNoLeftovers();
