// go-plugin's reattach JSON (docs/protocol.md §9.2, §9.3): reading and writing
// TF_REATTACH_PROVIDERS, and a plugwire plugin in debug mode attached by a plugwire host.
import assert from "node:assert/strict";
import {
  formatReattachProviders,
  parseReattachProviders,
  PluginError,
  type ReattachConfig,
  startPlugin,
} from "../host.ts";
import { Streams } from "../gen/streams/streams_pb.ts";
import { denoCommand, HANDSHAKE, testNoLeftovers } from "./_util.ts";
import { startDebugProcess } from "./_debug_process.ts";

const ENTRY = {
  Protocol: "grpc",
  ProtocolVersion: 6,
  Pid: 4242,
  Test: true,
  Addr: { Network: "unix", String: "/tmp/plugin123" },
};
const CONFIG: ReattachConfig = {
  protocol: "grpc",
  protocolVersion: 6,
  network: "unix",
  address: "/tmp/plugin123",
  pid: 4242,
  test: true,
};

Deno.test("parseReattachProviders() reads a TF_REATTACH_PROVIDERS map and a single entry", () => {
  const map = JSON.stringify({ "registry.terraform.io/hashicorp/time": ENTRY });
  assert.deepEqual(parseReattachProviders(map), CONFIG); // one entry: no name needed
  assert.deepEqual(parseReattachProviders(map, "registry.terraform.io/hashicorp/time"), CONFIG);
  assert.deepEqual(parseReattachProviders(ENTRY), CONFIG);
  const tcp = { ...ENTRY, Test: false, Addr: { Network: "tcp", String: "127.0.0.1:1234" } };
  assert.deepEqual(parseReattachProviders(JSON.stringify(tcp)), {
    protocol: "grpc",
    protocolVersion: 6,
    network: "tcp",
    address: "127.0.0.1:1234",
    pid: 4242,
  });
});

Deno.test("formatReattachProviders() writes Go's field names, and reads back the same", () => {
  const json = formatReattachProviders({ a: CONFIG, b: { ...CONFIG, test: undefined, pid: 7 } });
  const parsed = JSON.parse(json);
  assert.deepEqual(Object.keys(parsed.a), ["Protocol", "ProtocolVersion", "Pid", "Test", "Addr"]);
  assert.deepEqual(Object.keys(parsed.a.Addr), ["Network", "String"]);
  assert.deepEqual(parsed.a, ENTRY);
  assert.equal(parsed.b.Test, false);
  assert.deepEqual(parseReattachProviders(json, "a"), CONFIG);
  // TLS settings and the socket directory have no place in go-plugin's form.
  const withTls = { ...CONFIG, tls: { cert: "c", key: "k", ca: "a" }, socketDir: "/tmp/x" };
  assert.deepEqual(JSON.parse(formatReattachProviders({ a: withTls })).a, ENTRY);
});

Deno.test("parseReattachProviders() refuses bad input with a typed error", () => {
  const cases: Array<[unknown, string, RegExp]> = [
    ["{not json", "misconfigured", /not JSON/],
    ["[]", "misconfigured", /expected a JSON object/],
    [{ a: ENTRY, b: ENTRY }, "misconfigured", /give the provider's name/],
    [{ ...ENTRY, Protocol: "netrpc" }, "unsupported-protocol", /"netrpc"/],
    [{ ...ENTRY, Protocol: "" }, "unsupported-protocol", /"netrpc"/],
    [{ ...ENTRY, Addr: { Network: "udp", String: "x" } }, "unknown-network", /udp/],
    [{ ...ENTRY, Addr: { Network: "unix" } }, "misconfigured", /Addr needs/],
    [{ ...ENTRY, Pid: "12" }, "misconfigured", /Pid/],
    [{ ...ENTRY, ProtocolVersion: 1.5 }, "misconfigured", /ProtocolVersion/],
    [{ ...ENTRY, Test: "yes" }, "misconfigured", /Test/],
  ];
  for (const [input, code, message] of cases) {
    assert.throws(
      () => parseReattachProviders(typeof input === "string" ? input : JSON.stringify(input)),
      (err) => err instanceof PluginError && err.code === code && message.test(err.message),
      JSON.stringify(input),
    );
  }
  assert.throws(
    () => parseReattachProviders(JSON.stringify({ a: ENTRY }), "b"),
    (err) => err instanceof PluginError && /no provider "b"/.test(err.message),
  );
});

Deno.test("serve({ debug }): prints Terraform's line; a host attaches, and kill() leaves it running", async () => {
  const name = "registry.example/test/streams";
  const debug = await startDebugProcess(denoCommand("tests/fixtures/api_plugin.ts"), {
    API_MODE: "debug",
    API_DEBUG_NAME: name,
  });
  try {
    assert.match(
      debug.printed,
      /^Provider started\. To attach Terraform CLI, set the TF_REATTACH_PROVIDERS environment variable with the following:\n\n\tTF_REATTACH_PROVIDERS='\{/,
    );
    const reattach = parseReattachProviders(debug.providers, name);
    assert.equal(reattach.pid, debug.process.pid);
    assert.equal(reattach.test, true);
    assert.equal(reattach.network, "unix");
    for (let round = 0; round < 2; round++) {
      const plugin = await startPlugin({
        reattach,
        handshake: HANDSHAKE,
        plugins: { streams: Streams },
        logger: () => {},
      });
      assert.equal((await plugin.dispense("streams").next({ value: 41n })).value, 42n);
      assert.equal(plugin.reattachConfig().test, true);
      await plugin.kill(); // a debug plugin is not ours to stop
      assert.equal(plugin.hasExited, false);
    }
    // The user's Ctrl-C stops it, and its socket goes with it.
    const status = await debug.interrupt();
    assert.equal(status.code, 0);
    assert.throws(() => Deno.statSync(reattach.address));
  } finally {
    try {
      debug.process.kill("SIGKILL");
      await debug.process.status;
    } catch {
      // Already gone.
    }
  }
});

testNoLeftovers();
