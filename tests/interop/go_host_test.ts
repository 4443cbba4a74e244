/**
 * Interop, row "go-plugin host": go-plugin v1.8.0's Client, in go-plugin's own example hosts
 * (`kv-host-go`, `counter-host-go`) and in our Go fixture `gohost`, drives plugwire plugins
 * (and python-plugin's greeter). Go hosts start plugins with `sh -c`, which forks on dash: every
 * case checks that no process outlives it. Also the RPCPlugin host row (blocked here).
 *
 * @module
 */

import assert from "node:assert/strict";
import { startPlugin } from "../../host.ts";
import { KV } from "../../gen/kv/kv_pb.ts";
import { Test } from "../../gen/grpctest/grpctest_pb.ts";
import { testNoLeftovers } from "../_util.ts";
import { peers } from "./_peers.ts";
import {
  type Case,
  jsonLines,
  lineOfType,
  processesWithEnv,
  run,
  type RunResult,
  shellCommand,
} from "./_run.ts";
import { finishFile, interopTest, RPCPLUGIN_BLOCKED, type Variant, VARIANTS } from "./_matrix.ts";
import {
  BASIC_HANDSHAKE,
  COUNTER_PLUGIN,
  greeterCommand,
  HELPER_PLUGIN,
  hostOptions,
  KV_EXAMPLE_PLUGIN,
  Sinks,
  STDIO_ERR,
  STDIO_OUT,
} from "./_common.ts";

const EXAMPLE_NO_MTLS =
  "go-plugin's example hosts set no AutoMTLS (ClientConfig in examples/grpc and examples/bidirectional main.go); the gohost tests cover AutoMTLS";

/** Runs gohost (go-plugin v1.8.0 Client) with the variant's -automtls. */
function gohost(c: Case, v: Variant, args: string[], env: Record<string, string> = {}) {
  return run(c, peers.GO_FIXTURE_HOST, {
    args: [...(v.mtls ? ["-automtls"] : []), ...args],
    env,
  });
}

/** gohost succeeded, connected over the variant's network and shut the plugin down gracefully. */
function assertGohostOk(r: RunResult, v: Variant, versions = 1): Record<string, unknown>[] {
  const lines = jsonLines(r.stdout);
  const errors = lines.filter((l) => l.type === "error");
  assert.deepEqual(errors, [], `gohost errors; stderr tail:\n${r.stderr.slice(-3000)}`);
  assert.equal(r.code, 0, `gohost exit ${r.code}:\n${r.stdout}\n${r.stderr.slice(-3000)}`);
  const connected = lineOfType(r.stdout, "connected");
  assert.equal(connected.network, v.network);
  assert.equal(connected.tls, v.mtls, "go-plugin dials with TLS exactly when AutoMTLS");
  assert.equal(connected.negotiated_version, versions);
  const killed = lineOfType(r.stdout, "killed");
  assert.deepEqual(
    {
      graceful: killed.graceful,
      exited: killed.exited,
      exit_code: killed.exit_code,
      group_killed: killed.group_killed,
      leftovers_killed: killed.leftovers_killed,
      signal: killed.signal,
    },
    {
      graceful: true,
      exited: true,
      exit_code: 0,
      group_killed: false,
      leftovers_killed: undefined,
      signal: undefined,
    },
    "Kill: Shutdown RPC, the plugin exits 0 by itself, nothing left in its process group",
  );
  return lines;
}

/** The gohost -mode grpctest steps all passed, with the exact stdio bytes. */
function assertGrpctest(lines: Record<string, unknown>[], steps: string[]): void {
  for (const step of steps) {
    const line = lines.find((l) => l.type === step);
    assert.ok(line?.ok === true, `step ${step}: ${JSON.stringify(line)}`);
  }
  if (steps.includes("stdio")) {
    const stdio = lines.find((l) => l.type === "stdio")!;
    assert.equal(stdio.stdout, STDIO_OUT);
    assert.equal(stdio.stderr, STDIO_ERR);
  }
  if (steps.includes("stream")) {
    assert.deepEqual(lines.find((l) => l.type === "stream")!.outputs, [2, 4, 6, 8, 10]);
  }
  if (steps.includes("bidirectional")) {
    const b = lines.find((l) => l.type === "bidirectional")!;
    assert.equal(b.returned_id, b.id);
    assert.equal(b.pings, 1);
  }
}

/** The plugin's PrintKV hclog lines, re-logged by go-plugin's host on gohost's stderr. */
function assertForwardedPrintKv(stderr: string): void {
  const logged = jsonLines(stderr).filter((l) => l["@message"] === "PrintKV called");
  assert.equal(logged.length, 2, `PrintKV lines on gohost's stderr:\n${stderr.slice(-3000)}`);
  for (const l of logged) assert.equal(l["@level"], "info");
  assert.equal(logged[0].foo, "bar");
  assert.equal(logged[1].foo, 12);
}

const ALL_STEPS = ["ping", "double", "printkv", "bidirectional", "stdio", "stream"];

// ---------------------------------------------------------------------------------------------
// go-plugin's examples/grpc host (kv-host-go) → plugwire KV plugin

for (const v of VARIANTS) {
  interopTest({
    host: "go-plugin",
    plugin: "plugwire",
    variant: v,
    feature: v.network === "unix"
      ? "examples/grpc host kv-host-go → examples/kv/plugin.ts: put, get"
      : "examples/grpc host kv-host-go → KV plugin (KV_NETWORK=tcp): put, get",
    unsupported: v.mtls ? EXAMPLE_NO_MTLS : undefined,
    async fn(c) {
      const argv = KV_EXAMPLE_PLUGIN;
      const env = { KV_PROTO: "grpc", KV_PLUGIN: shellCommand(argv), KV_NETWORK: v.network };
      const put = await run(c, peers.GO_EXAMPLE_KV_HOST, { args: ["put", "k", "v ü"], env });
      assert.equal(put.code, 0, `put: ${put.stdout}\n${put.stderr.slice(-3000)}`);
      if (v.network === "tcp") assert.match(put.stderr, /serving: .*network=tcp/, put.stderr);
      const get = await run(c, peers.GO_EXAMPLE_KV_HOST, { args: ["get", "k"], env });
      assert.equal(get.code, 0, `get: ${get.stdout}\n${get.stderr.slice(-3000)}`);
      assert.equal(get.stdout, "v ü\n\nWritten from plugin-plugwire\n");
      assert.equal(
        await Deno.readTextFile(`${c.dir}/kv_k`),
        "v ü\n\nWritten from plugin-plugwire",
      );
    },
  });
}

// ---------------------------------------------------------------------------------------------
// gohost (go-plugin Client, grpc 1.83) → plugwire helper plugin

for (const v of VARIANTS) {
  interopTest({
    host: "go-plugin",
    plugin: "plugwire",
    variant: v,
    feature:
      "gohost grpctest: Ping, Double, PrintKV log forwarding, Bidirectional (plugin dials host's broker id), stdio, Stream, Shutdown",
    async fn(c) {
      const r = await gohost(c, v, ["-plugin", shellCommand(HELPER_PLUGIN), "-mode", "grpctest"], {
        HELPER_NETWORK: v.network,
      });
      const lines = assertGohostOk(r, v);
      assertGrpctest(lines, ALL_STEPS);
      assertForwardedPrintKv(r.stderr);
    },
  });

  interopTest({
    host: "go-plugin",
    plugin: "plugwire",
    variant: v,
    feature: "gohost kv-roundtrip: Put, Get (binary-safe value)",
    async fn(c) {
      const value = "ünï\tcode\r\nline";
      const r = await gohost(
        c,
        v,
        ["-plugin", shellCommand(HELPER_PLUGIN), "-mode", "kv-roundtrip", "key", value],
        { HELPER_NETWORK: v.network },
      );
      assertGohostOk(r, v);
      assert.equal(lineOfType(r.stdout, "kv-get").value, value);
    },
  });
}

for (const v of VARIANTS.filter((v) => v.network === "unix")) {
  interopTest({
    host: "go-plugin",
    plugin: "plugwire",
    variant: v,
    feature: "negotiation: gohost -versions 1,2 vs HELPER_VERSIONS=1,2 → 2 (Test served on 2)",
    async fn(c) {
      const r = await gohost(c, v, [
        "-versions",
        "1,2",
        "-plugin",
        shellCommand(HELPER_PLUGIN),
        "-mode",
        "grpctest",
        "-steps",
        "ping,double,stream",
      ], { HELPER_VERSIONS: "1,2" });
      assertGrpctest(assertGohostOk(r, v, 2), ["ping", "double", "stream"]);
    },
  });
}

// plugwire host starts the helper plugin and hands its reattachConfig() to gohost -reattach.
for (const v of VARIANTS) {
  interopTest({
    host: "go-plugin",
    plugin: "plugwire",
    variant: v,
    feature: "reattach: plugwire host's reattachConfig() → gohost -reattach: grpctest, Kill",
    unsupported: v.mtls
      ? "go-plugin's ReattachConfig has no fields for certificates, so it cannot reattach to an AutoMTLS plugin"
      : undefined,
    async fn(c) {
      const sinks = new Sinks();
      const plugin = await startPlugin({
        cmd: HELPER_PLUGIN,
        handshake: BASIC_HANDSHAKE,
        plugins: { kv: KV, test: Test },
        ...hostOptions(c, v, sinks, { HELPER_NETWORK: v.network }),
      });
      try {
        assert.equal((await plugin.dispense("test").double({ input: 2 })).output, 4);
        const config = plugin.reattachConfig();
        const json = JSON.stringify({
          protocol: config.protocol,
          protocol_version: config.protocolVersion,
          network: config.network,
          addr: config.address,
          pid: config.pid,
          test: false,
        });
        await plugin.close(); // hand over: disconnect, leave the plugin running
        const r = await gohost(c, v, ["-reattach", json, "-mode", "grpctest"]);
        const lines = jsonLines(r.stdout);
        assert.deepEqual(lines.filter((l) => l.type === "error"), [], r.stderr.slice(-3000));
        assert.equal(r.code, 0);
        assertGrpctest(lines, ALL_STEPS);
        const killed = lineOfType(r.stdout, "killed");
        assert.equal(killed.graceful, true, "go-plugin saw the plugin exit after Shutdown");
        assert.deepEqual(await plugin.exited, { code: 0, signal: null });
      } finally {
        await plugin.kill();
      }
    },
  });
}

// ---------------------------------------------------------------------------------------------
// go-plugin's examples/bidirectional host (counter-host-go) → plugwire counter plugin

for (const v of VARIANTS) {
  interopTest({
    host: "go-plugin",
    plugin: "plugwire",
    variant: v,
    feature:
      "broker: examples/bidirectional host counter-host-go → counter_plugin.ts dials the host's AddHelper",
    unsupported: v.mtls ? EXAMPLE_NO_MTLS : undefined,
    async fn(c) {
      const env = { COUNTER_PLUGIN: shellCommand(COUNTER_PLUGIN), COUNTER_NETWORK: v.network };
      for (const n of ["1", "2"]) {
        const put = await run(c, peers.GO_EXAMPLE_BIDI_HOST, { args: ["put", "hits", n], env });
        assert.equal(put.code, 0, `put ${n}: ${put.stdout}\n${put.stderr.slice(-3000)}`);
        assert.equal(put.stdout, "");
      }
      const get = await run(c, peers.GO_EXAMPLE_BIDI_HOST, { args: ["get", "hits"], env });
      assert.equal(get.code, 0, `get: ${get.stdout}\n${get.stderr.slice(-3000)}`);
      assert.equal(get.stdout, "3\n");
      assert.equal(await Deno.readTextFile(`${c.dir}/kv_hits`), '{"Value":3}');
      // The plugin's error reaches the Go host. That host then calls os.Exit(1), which skips
      // its deferred client.Kill(): the plugin is orphaned, Go's own plugin just the same (a
      // quirk of the example), so this case reaps it here.
      const missing = await run(c, peers.GO_EXAMPLE_BIDI_HOST, { args: ["get", "nope"], env });
      assert.equal(missing.code, 1);
      assert.match(missing.stdout, /^Error: rpc error: code = Unknown desc = .*kv_nope/);
      const orphans = processesWithEnv("PLUGWIRE_INTEROP_CASE", c.id);
      assert.ok(orphans.length > 0, "the example host leaves its plugin running after os.Exit");
      for (const pid of orphans) {
        try {
          Deno.kill(pid, "SIGKILL");
        } catch {
          // Gone meanwhile.
        }
      }
      c.notes.push("counter-host-go's os.Exit(1) on error orphans its plugin: reaped by the test");
    },
  });
}

// ---------------------------------------------------------------------------------------------
// gohost → python-plugin greeter (no plugwire: the go-plugin × python-plugin cell)

for (const v of VARIANTS) {
  interopTest({
    host: "go-plugin",
    plugin: "python-plugin",
    variant: v,
    feature: "gohost → examples/greeter: handshake, health Ping, Shutdown",
    note: v.network === "tcp"
      ? "served by tests/interop/python/greeter_tcp.py (pyplugin ServeConfig(force_tcp=True))"
      : undefined,
    async fn(c) {
      const r = await gohost(c, v, [
        "-cookie",
        "GREETER_PLUGIN=hello-from-pyplugin",
        "-plugin",
        shellCommand(greeterCommand(v.network)),
        "-mode",
        "ping",
      ]);
      assertGohostOk(r, v);
      assert.equal(lineOfType(r.stdout, "ping").ok, true);
    },
  });
}

// ---------------------------------------------------------------------------------------------
// RPCPlugin host → plugwire plugin

interopTest({
  host: "RPCPlugin",
  plugin: "plugwire",
  variant: { mtls: true, network: "unix" },
  feature: "count-plugin-client → plugwire countplugin1 server",
  blocked: RPCPLUGIN_BLOCKED,
});

finishFile(import.meta.url);
testNoLeftovers();
