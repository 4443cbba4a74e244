/**
 * Interop, row "plugwire host": plugwire's startPlugin() in this test process drives real
 * plugins: plugwire's own helper plugin, go-plugin v1.8.0's example plugins and our Go fixture
 * `goplugin`, and python-plugin 0.1.0's greeter. RPCPlugin is blocked here.
 *
 * @module
 */

import assert from "node:assert/strict";
import { type PluginConnection, type ReattachConfig, startPlugin } from "../../host.ts";
import { KV } from "../../gen/kv/kv_pb.ts";
import { PingPong, Test } from "../../gen/grpctest/grpctest_pb.ts";
import { AddHelper, Counter } from "../../gen/counter/counter_pb.ts";
import { Greeter } from "../../gen/greeter/greeter_pb.ts";
import { denoCommand, testNoLeftovers } from "../_util.ts";
import { peers } from "./_peers.ts";
import { type Case, lineOfType, run, spawn } from "./_run.ts";
import { finishFile, interopTest, RPCPLUGIN_BLOCKED, type Variant, VARIANTS } from "./_matrix.ts";
import {
  assertTransport,
  BASIC_HANDSHAKE,
  doubleAndStream,
  exercise,
  GO_PLUGIN_NO_TCP,
  GREETER_HANDSHAKE,
  greeterCommand,
  HELPER_PLUGIN,
  hostOptions,
  hostServesPingPong,
  killGracefully,
  printKvRecords,
  Sinks,
  stdioRoundTrip,
} from "./_common.ts";

const encode = (s: string) => new TextEncoder().encode(s);
const decode = (b: Uint8Array) => new TextDecoder().decode(b);
const UNIX = VARIANTS.filter((v) => v.network === "unix");
const PLAIN_UNIX: Variant = { mtls: false, network: "unix" };

// ---------------------------------------------------------------------------------------------
// plugwire host → plugwire plugin (tests/fixtures/helper_plugin.ts)

for (const v of VARIANTS) {
  interopTest({
    host: "plugwire",
    plugin: "plugwire",
    variant: v,
    feature: "KV, Double, Stream, broker both ways, PrintKV records, stdio, Shutdown",
    async fn(c) {
      const sinks = new Sinks();
      const plugin = await startPlugin({
        cmd: HELPER_PLUGIN,
        handshake: BASIC_HANDSHAKE,
        plugins: { kv: KV, test: Test },
        ...hostOptions(c, v, sinks, { HELPER_NETWORK: v.network }),
      });
      await exercise(plugin, async () => {
        assertTransport(plugin, v);
        const kv = plugin.dispense("kv");
        await kv.put({ key: "k", value: encode("v ünïcode") });
        assert.equal(decode((await kv.get({ key: "k" })).value), "v ünïcode");
        const test = plugin.dispense("test");
        await doubleAndStream(test);
        await hostServesPingPong(plugin, test);
        // The other direction: the plugin serves PingPong under a broker id the host dials.
        const { id } = await test.bidirectional({ id: 0 });
        const connection = await plugin.broker.dial(id);
        try {
          assert.equal((await connection.client(PingPong).ping({})).msg, "pong from plugin");
        } finally {
          connection.close();
        }
        await printKvRecords(test, sinks);
        await stdioRoundTrip(test, sinks);
        await plugin.ping();
      });
    },
  });
}

interopTest({
  host: "plugwire",
  plugin: "plugwire",
  variant: PLAIN_UNIX,
  feature: "negotiation: HELPER_VERSIONS=1,2 vs host {1: KV, 2: Test} → 2",
  async fn(c) {
    const sinks = new Sinks();
    const plugin = await startPlugin({
      cmd: HELPER_PLUGIN,
      handshake: BASIC_HANDSHAKE,
      versionedPlugins: { 1: { kv: KV }, 2: { test: Test } },
      ...hostOptions(c, PLAIN_UNIX, sinks, { HELPER_VERSIONS: "1,2" }),
    });
    await exercise(plugin, async () => {
      assert.equal(plugin.protocolVersion, 2);
      assert.equal((await plugin.client(Test).double({ input: 4 })).output, 8);
    });
  },
});

// ---------------------------------------------------------------------------------------------
// plugwire host → go-plugin plugins

for (const v of VARIANTS) {
  const unsupported = v.network === "tcp" ? GO_PLUGIN_NO_TCP : undefined;

  // go-plugin's own examples/grpc plugin: files kv_<key> in its cwd.
  interopTest({
    host: "plugwire",
    plugin: "go-plugin",
    variant: v,
    feature: "examples/grpc plugin-go-grpc: KV put/get",
    unsupported,
    async fn(c) {
      const sinks = new Sinks();
      const plugin = await startPlugin({
        cmd: [peers.GO_EXAMPLE_KV_PLUGIN],
        handshake: BASIC_HANDSHAKE,
        plugins: { kv: KV },
        ...hostOptions(c, v, sinks),
      });
      await exercise(plugin, async () => {
        assertTransport(plugin, v);
        const kv = plugin.dispense("kv");
        await kv.put({ key: "greeting", value: encode("hi from plugwire") });
        const value = decode((await kv.get({ key: "greeting" })).value);
        assert.equal(value, "hi from plugwire\n\nWritten from plugin-go-grpc");
        assert.equal(await Deno.readTextFile(`${c.dir}/kv_greeting`), value);
      });
    },
  });

  // examples/kv/host.ts, the TS port of the examples/grpc host, as its own process: it starts
  // the Go plugin with `sh -c` (dash forks), so this also proves nothing is orphaned.
  interopTest({
    host: "plugwire",
    plugin: "go-plugin",
    variant: v,
    feature: "examples/kv/host.ts (sh -c) put/get with plugin-go-grpc",
    unsupported,
    async fn(c) {
      const host = denoCommand("examples/kv/host.ts");
      const env = { KV_PLUGIN: peers.GO_EXAMPLE_KV_PLUGIN, KV_AUTOMTLS: v.mtls ? "1" : "0" };
      const put = await run(c, host[0], { args: [...host.slice(1), "put", "k", "v 1"], env });
      assert.equal(put.code, 0, `put: ${put.stdout}${put.stderr}`);
      const get = await run(c, host[0], { args: [...host.slice(1), "get", "k"], env });
      assert.equal(get.code, 0, `get: ${get.stdout}${get.stderr}`);
      assert.equal(get.stdout, "v 1\n\nWritten from plugin-go-grpc\n");
    },
  });

  // Our Go fixture goplugin (go-plugin v1.8.0 plugin.Serve, grpc 1.83).
  const goplugin = (c: Case, sinks: Sinks, env: Record<string, string> = {}) =>
    startPlugin({
      cmd: [peers.GO_FIXTURE_PLUGIN],
      handshake: BASIC_HANDSHAKE,
      plugins: { kv: KV, test: Test },
      ...hostOptions(c, v, sinks, env),
    });

  interopTest({
    host: "plugwire",
    plugin: "go-plugin",
    variant: v,
    feature: "goplugin: Ping, Double, Stream, KV",
    unsupported,
    async fn(c) {
      const sinks = new Sinks();
      const plugin = await goplugin(c, sinks);
      await exercise(plugin, async () => {
        assertTransport(plugin, v);
        await plugin.ping();
        await doubleAndStream(plugin.dispense("test"));
        const kv = plugin.dispense("kv");
        await kv.put({ key: "bin", value: new Uint8Array([0, 255, 10, 13]) });
        assert.deepEqual([...(await kv.get({ key: "bin" })).value], [0, 255, 10, 13]);
        await assert.rejects(kv.get({ key: "nope" }), /NOT_FOUND: key not found: "nope"/);
      });
    },
  });

  interopTest({
    host: "plugwire",
    plugin: "go-plugin",
    variant: v,
    feature: "hclog: goplugin's PrintKV log lines become plugwire log records",
    unsupported,
    async fn(c) {
      const sinks = new Sinks();
      const plugin = await goplugin(c, sinks);
      await exercise(plugin, async () => {
        const [a, b] = await printKvRecords(plugin.dispense("test"), sinks);
        for (const r of [a, b]) {
          assert.equal(r.module, "goplugin.grpctest");
          assert.equal(r.plugin, "goplugin");
          assert.ok(r.timestamp instanceof Date && !isNaN(r.timestamp.getTime()), "timestamp");
          assert.deepEqual(Object.keys(r.fields), ["foo"], `fields of ${r.raw}`);
        }
        assert.deepEqual(a.fields, { foo: "bar" });
        assert.deepEqual(b.fields, { foo: 12 });
      });
    },
  });

  interopTest({
    host: "plugwire",
    plugin: "go-plugin",
    variant: v,
    feature: "broker: goplugin dials a PingPong the host serves (Bidirectional)",
    unsupported,
    async fn(c) {
      const sinks = new Sinks();
      const plugin = await goplugin(c, sinks);
      await exercise(plugin, async () => {
        const test = plugin.dispense("test");
        await hostServesPingPong(plugin, test);
        await hostServesPingPong(plugin, test); // a second id on the same broker stream
      });
    },
  });

  interopTest({
    host: "plugwire",
    plugin: "go-plugin",
    variant: v,
    feature: "stdio: goplugin PrintStdio reaches syncStdout/syncStderr byte-exact",
    unsupported,
    async fn(c) {
      const sinks = new Sinks();
      const plugin = await goplugin(c, sinks);
      await exercise(plugin, async () => {
        await stdioRoundTrip(plugin.dispense("test"), sinks);
      });
    },
  });

  interopTest({
    host: "plugwire",
    plugin: "go-plugin",
    variant: v,
    feature: "Shutdown: kill() of goplugin → Shutdown RPC, exit status 0 within the grace",
    unsupported,
    async fn(c) {
      const sinks = new Sinks();
      const plugin = await goplugin(c, sinks);
      await plugin.dispense("test").double({ input: 1 });
      await killGracefully(plugin);
      // goplugin logs this after go-plugin's Serve returns, which Shutdown alone makes it do.
      assert.ok(
        sinks.records.some((r) => r.message === "plugin.Serve returned; exiting"),
        "goplugin's Serve returned",
      );
    },
  });

  interopTest({
    host: "plugwire",
    plugin: "go-plugin",
    variant: v,
    feature: "negotiation: GOPLUGIN_VERSIONS=1,2 vs host versionedPlugins {1,2} → 2",
    unsupported,
    async fn(c) {
      const sinks = new Sinks();
      const plugin = await startPlugin({
        cmd: [peers.GO_FIXTURE_PLUGIN],
        handshake: BASIC_HANDSHAKE,
        versionedPlugins: { 1: { kv: KV }, 2: { test: Test } },
        ...hostOptions(c, v, sinks, { GOPLUGIN_VERSIONS: "1,2" }),
      });
      await exercise(plugin, async () => {
        assert.equal(plugin.protocolVersion, 2);
        assert.equal((await plugin.client(Test).double({ input: 5 })).output, 10);
      });
    },
  });

  // go-plugin's examples/bidirectional counter plugin: the host serves AddHelper through the
  // broker for each Put, as the Go host's GRPCClient does (NextId, AcceptAndServe, Stop).
  interopTest({
    host: "plugwire",
    plugin: "go-plugin",
    variant: v,
    feature: "broker: examples/bidirectional counter plugin dials the host's AddHelper",
    unsupported,
    async fn(c) {
      const sinks = new Sinks();
      let sums = 0;
      const counterClient = ({ client, broker }: PluginConnection) => {
        const counter = client(Counter);
        return {
          async put(key: string, value: bigint): Promise<void> {
            const id = broker.nextId();
            const server = await broker.acceptAndServe(id, (s) =>
              s.add(AddHelper, {
                sum: ({ a, b }) => {
                  sums++;
                  return { r: a + b };
                },
              }));
            try {
              await counter.put({ addServer: id, key, value });
            } finally {
              await server.close();
            }
          },
          get: async (key: string) => (await counter.get({ key })).value,
        };
      };
      const plugin = await startPlugin({
        cmd: [peers.GO_EXAMPLE_BIDI_PLUGIN],
        handshake: BASIC_HANDSHAKE,
        plugins: { counter: counterClient },
        ...hostOptions(c, v, sinks),
      });
      await exercise(plugin, async () => {
        assertTransport(plugin, v);
        const counter = plugin.dispense("counter");
        await counter.put("hits", 1n);
        await counter.put("hits", 2n);
        assert.equal(await counter.get("hits"), 3n);
        assert.equal(sums, 2, "the plugin called AddHelper.Sum once per Put");
        assert.deepEqual(JSON.parse(await Deno.readTextFile(`${c.dir}/kv_hits`)), { Value: 3 });
      });
    },
  });
}

// gohost (go-plugin's Client) starts goplugin and prints its ReattachConfig; plugwire reattaches.
for (const v of UNIX) {
  interopTest({
    host: "plugwire",
    plugin: "go-plugin",
    variant: v,
    feature: "reattach: gohost reattach-print JSON → plugwire reattaches, calls, kill()",
    unsupported: v.mtls
      ? "go-plugin's ReattachConfig carries no certificates, so a second host cannot speak the first one's AutoMTLS"
      : undefined,
    async fn(c) {
      const gohost = spawn(c, peers.GO_FIXTURE_HOST, {
        args: [
          "-log-level",
          "info",
          "-plugin",
          peers.GO_FIXTURE_PLUGIN,
          "-mode",
          "reattach-print",
          "-hold",
        ],
      });
      await gohost.waitLine((l) => l.includes('"type":"holding"'));
      const line = JSON.parse(await gohost.waitLine((l) => l.includes('"type":"reattach"')));
      const config: ReattachConfig = {
        protocol: line.protocol,
        protocolVersion: line.protocol_version,
        network: line.network,
        address: line.addr,
        pid: line.pid,
      };
      assert.equal(config.network, "unix");
      const sinks = new Sinks();
      const plugin = await startPlugin({
        reattach: config,
        handshake: BASIC_HANDSHAKE,
        plugins: { kv: KV, test: Test },
        logger: sinks.logger,
      });
      await exercise(plugin, async () => {
        assert.equal(plugin.pid, line.pid);
        const test = plugin.dispense("test");
        await doubleAndStream(test);
        await hostServesPingPong(plugin, test);
        const kv = plugin.dispense("kv");
        await kv.put({ key: "r", value: encode("reattached") });
        assert.equal(decode((await kv.get({ key: "r" })).value), "reattached");
      }, { reattached: true }).finally(() => gohost.closeStdin());
      const [status, stdout, stderr] = await Promise.all([
        gohost.process.status,
        gohost.stdout,
        gohost.stderr,
      ]);
      assert.equal(status.code, 0, `gohost: ${stdout}${stderr.slice(-2000)}`);
      const killed = lineOfType(stdout, "killed");
      assert.equal(killed.exited, true);
      assert.equal(killed.exit_code, 0, "goplugin exited 0 after plugwire's Shutdown");
      assert.equal(killed.group_killed, false);
    },
  });
}

// ---------------------------------------------------------------------------------------------
// plugwire host → python-plugin (examples/greeter)

for (const v of VARIANTS) {
  interopTest({
    host: "plugwire",
    plugin: "python-plugin",
    variant: v,
    feature: "examples/greeter: Greet, Count, health Ping, Shutdown",
    note: v.network === "tcp"
      ? "the example has no TCP switch: tests/interop/python/greeter_tcp.py serves it with pyplugin's ServeConfig(force_tcp=True)"
      : undefined,
    async fn(c) {
      const sinks = new Sinks();
      const plugin = await startPlugin({
        cmd: greeterCommand(v.network),
        handshake: GREETER_HANDSHAKE,
        plugins: { greeter: Greeter },
        ...hostOptions(c, v, sinks),
      });
      await exercise(plugin, async () => {
        assertTransport(plugin, v);
        const greeter = plugin.dispense("greeter");
        assert.equal((await greeter.greet({ name: "plugwire" })).message, "hello, plugwire!");
        const counted = await greeter.count({ text: "two words, 3 digits" });
        assert.deepEqual({ letters: counted.letters, words: counted.words }, {
          letters: 14,
          words: 4,
        });
        await plugin.ping();
      });
    },
  });
}

// ---------------------------------------------------------------------------------------------
// plugwire host → RPCPlugin

interopTest({
  host: "plugwire",
  plugin: "RPCPlugin",
  variant: { mtls: true, network: "unix" },
  feature: "countplugin1 count-plugin-server: Count, GetCount",
  blocked: RPCPLUGIN_BLOCKED,
});

finishFile(import.meta.url);
testNoLeftovers();
