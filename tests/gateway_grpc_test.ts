/**
 * The gateway serving a real go-plugin plugin (the test helper plugin, a plugwire plugin in a
 * subprocess, over AutoMTLS): JSON transcoding through reflection with Connect's conventions,
 * NDJSON server streams, the deadline as the gRPC deadline, crash restart, reload that swaps
 * processes, the control routes and metrics.
 */

import assert from "node:assert/strict";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";
import { KV } from "../gen/kv/kv_pb.ts";
import { Streams } from "../gen/streams/streams_pb.ts";
import { type Gateway, startGateway } from "../gateway.ts";
import { pidAlive } from "../internal/runtime.ts";
import { denoCommand, eventually, HANDSHAKE, TEST_MARK, testNoLeftovers } from "./_util.ts";

const KEY = "grpc-test-key";

async function gatewayWith(extra = ""): Promise<{
  gateway: Gateway;
  dir: string;
  file: string;
  toml: string;
  [Symbol.asyncDispose](): Promise<void>;
}> {
  const dir = await Deno.makeTempDir({ prefix: "plugwire-gw-grpc-" });
  const file = `${dir}/plugwire.toml`;
  const cmd = JSON.stringify(denoCommand("tests/fixtures/helper_plugin.ts"));
  const toml = `listen = "127.0.0.1:0"
[auth]
keys = ["${KEY}"]
[plugins.helper]
cmd = ${cmd}
handshake = { protocol_version = ${HANDSHAKE.protocolVersion}, magic_cookie_key = "${HANDSHAKE.magicCookieKey}", magic_cookie_value = "${HANDSHAKE.magicCookieValue}" }
env = { HELPER_MODE = "serve" }
${extra}`;
  await Deno.writeTextFile(file, toml);
  const gateway = await startGateway({
    config: file,
    handleSignals: false,
    log: () => {},
    pluginEnv: { PLUGWIRE_TEST_MARK: TEST_MARK },
    restartBackoffMs: 50,
  });
  return {
    gateway,
    dir,
    file,
    toml,
    async [Symbol.asyncDispose]() {
      await gateway.stop();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

async function rpc(
  gateway: Gateway,
  method: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: Headers; text: string; json: unknown }> {
  const response = await fetch(`${gateway.url}/plugins/helper/${method}`, {
    method: "POST",
    headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
  const text = await response.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: response.status, headers: response.headers, text, json };
}

Deno.test("gRPC plugin: unary methods as JSON, errors as Connect {code, message} with Connect's statuses", async () => {
  await using s = await gatewayWith();
  const put = await rpc(s.gateway, "proto.KV/Put", { key: "a", value: btoa("hi") });
  assert.deepEqual([put.status, put.json], [200, {}]);
  assert.equal(put.headers.get("content-type"), "application/json");
  const get = await rpc(s.gateway, "proto.KV/Get", { key: "a" });
  assert.deepEqual([get.status, get.json], [200, { value: btoa("hi") }]);
  const missing = await rpc(s.gateway, "proto.KV/Get", { key: "nope" });
  assert.deepEqual([missing.status, missing.json], [404, {
    code: "not_found",
    message: "no key nope",
  }]);
  const badField = await rpc(s.gateway, "proto.KV/Get", { key: 5 });
  assert.equal(badField.status, 400);
  assert.equal((badField.json as { code: string }).code, "invalid_argument");
  const unknownField = await rpc(s.gateway, "proto.KV/Get", { nokey: "x" });
  assert.equal(unknownField.status, 400);
  const noMethod = await rpc(s.gateway, "proto.KV/Delete", {});
  assert.deepEqual([noMethod.status, (noMethod.json as { code: string }).code], [404, "not_found"]);
  const bidi = await rpc(s.gateway, "streams.Streams/Double", {});
  assert.deepEqual([bidi.status, (bidi.json as { code: string }).code], [501, "unimplemented"]);
  const notJson = await rpc(s.gateway, "proto.KV/Get", "{", {});
  assert.equal(notJson.status, 400);
  const text = await rpc(s.gateway, "proto.KV/Get", "key=a", { "content-type": "text/plain" });
  assert.equal(text.status, 415);
  const anonymous = await fetch(`${s.gateway.url}/plugins/helper/proto.KV/Get`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: "{}",
  });
  await anonymous.body?.cancel();
  assert.equal(anonymous.status, 401);
});

Deno.test("gRPC plugin: a server stream is NDJSON; the deadline reaches the plugin as the gRPC deadline", async () => {
  await using s = await gatewayWith();
  const count = await rpc(s.gateway, "streams.Streams/Count", { value: "3" });
  assert.equal(count.status, 200);
  assert.equal(count.headers.get("content-type"), "application/x-ndjson");
  assert.deepEqual(count.text.trim().split("\n").map((l) => JSON.parse(l)), [
    {},
    { value: "1" },
    { value: "2" },
  ]);
  // 100000 numbers, one every 5 ms, with a 300 ms deadline: the stream ends with the
  // deadline's error as its last line.
  const cut = await rpc(s.gateway, "streams.Streams/Count", { value: "100000" }, {
    "connect-timeout-ms": "300",
  });
  const lines = cut.text.trim().split("\n").map((l) => JSON.parse(l));
  assert.ok(lines.length > 1 && lines.length < 1000, `${lines.length} lines`);
  assert.deepEqual(lines.at(-1), {
    error: {
      code: "deadline_exceeded",
      message: (lines.at(-1) as { error: { message: string } }).error.message,
    },
  });
});

Deno.test("gRPC plugin: /-/plugins, /-/readyz and /-/metrics describe it", async () => {
  await using s = await gatewayWith();
  await rpc(s.gateway, "proto.KV/Put", { key: "m", value: "" });
  const response = await fetch(`${s.gateway.url}/-/plugins`, {
    headers: { authorization: `Bearer ${KEY}` },
  });
  const { plugins } = await response.json();
  assert.equal(plugins.length, 1);
  const [helper] = plugins;
  assert.equal(helper.id, "helper");
  assert.equal(helper.kind, "grpc");
  assert.equal(helper.state, "ready");
  assert.equal(helper.version, 1);
  assert.equal(helper.tls, true);
  assert.ok(pidAlive(helper.pid));
  assert.equal(helper.calls, 1);
  assert.ok(helper.latencyMs.p50 > 0);
  for (
    const m of ["proto.KV/Get", "proto.KV/Put", "streams.Streams/Count", "grpctest.Test/Double"]
  ) {
    assert.ok(helper.methods.includes(m), m);
  }
  assert.ok(!helper.methods.some((m: string) => m.startsWith("grpc.health")));
  const ready = await fetch(`${s.gateway.url}/-/readyz`);
  assert.deepEqual([ready.status, await ready.json()], [200, { ready: true }]);
  const metrics = await fetch(`${s.gateway.url}/-/metrics`, {
    headers: { authorization: `Bearer ${KEY}` },
  });
  const text = await metrics.text();
  assert.match(text, /^plugwire_plugin_requests_total\{plugin="helper"\} 1$/m);
  assert.match(text, /^plugwire_plugin_up\{plugin="helper",kind="grpc"\} 1$/m);
  assert.match(text, /^plugwire_plugin_request_duration_seconds_count\{plugin="helper"\} 1$/m);
});

Deno.test("gRPC plugin: a crashed plugin is restarted with backoff and serves again", async () => {
  await using s = await gatewayWith();
  const firstPid = s.gateway.status()[0].pid!;
  const crash = await rpc(s.gateway, "grpctest.Test/Panic", { message: "on purpose" });
  assert.ok(crash.status >= 500, `status ${crash.status}`);
  await eventually("the restart", () => {
    const st = s.gateway.status()[0];
    return st.restarts === 1 && st.state === "ready";
  }, 20_000);
  const st = s.gateway.status()[0];
  assert.notEqual(st.pid, firstPid);
  assert.ok(!pidAlive(firstPid));
  assert.match(st.lastError ?? "", /exited/);
  const put = await rpc(s.gateway, "proto.KV/Put", { key: "b", value: "" });
  assert.equal(put.status, 200);
});

Deno.test("gRPC plugin: reload starts a new process, switches, stops the old; a failing one leaves the old serving", async () => {
  await using s = await gatewayWith();
  const oldPid = s.gateway.status()[0].pid!;
  const reload = await fetch(`${s.gateway.url}/-/plugins/helper/reload`, {
    method: "POST",
    headers: { authorization: `Bearer ${KEY}` },
  });
  assert.equal(reload.status, 200);
  const { plugin } = await reload.json();
  assert.notEqual(plugin.pid, oldPid);
  assert.ok(!pidAlive(oldPid), "the old process was stopped");
  assert.equal((await rpc(s.gateway, "proto.KV/Put", { key: "c", value: "" })).status, 200);

  // A configuration whose plugin cannot start: the reload fails, the old process serves on.
  await Deno.writeTextFile(
    s.file,
    s.toml.replace(`HELPER_MODE = "serve"`, `HELPER_MODE = "exit-early"`),
  );
  const all = await fetch(`${s.gateway.url}/-/reload`, {
    method: "POST",
    headers: { authorization: `Bearer ${KEY}` },
  });
  assert.equal(all.status, 409);
  const result = await all.json();
  assert.ok(result.failed.helper, JSON.stringify(result));
  const st = s.gateway.status()[0];
  assert.equal(st.pid, plugin.pid);
  assert.equal(st.state, "ready");
  assert.match(st.lastError ?? "", /reload failed/);
  assert.equal((await rpc(s.gateway, "proto.KV/Put", { key: "d", value: "" })).status, 200);
});

Deno.test("gRPC plugin: versions = [...] negotiates the highest common protocol version", async () => {
  await using s = await gatewayWith("");
  // The same helper, now offering versions 1 and 2 (version 2 serves grpctest.Test only).
  await Deno.writeTextFile(
    s.file,
    s.toml.replace(`HELPER_MODE = "serve"`, `HELPER_MODE = "serve", HELPER_VERSIONS = "1,2"`) +
      "versions = [1, 2]\n",
  );
  const reload = await fetch(`${s.gateway.url}/-/reload`, {
    method: "POST",
    headers: { authorization: `Bearer ${KEY}` },
  });
  assert.equal(reload.status, 200, await reload.text());
  const [helper] = s.gateway.status();
  assert.equal(helper.version, 2);
  assert.ok(helper.methods.includes("grpctest.Test/Double"));
  assert.ok(!helper.methods.includes("proto.KV/Get"));
  const doubled = await rpc(s.gateway, "grpctest.Test/Double", { input: 21 });
  assert.deepEqual(doubled.json, { output: 42 });
});

Deno.test("gRPC plugin: a real Connect client (connect-web, JSON and binary) calls it through the gateway", async () => {
  await using s = await gatewayWith();
  const transport = createConnectTransport({
    baseUrl: `${s.gateway.url}/plugins/helper`,
    useBinaryFormat: false,
    interceptors: [(next) => (request) => {
      request.header.set("authorization", `Bearer ${KEY}`);
      return next(request);
    }],
  });
  const kv = createClient(KV, transport);
  await kv.put({ key: "connect", value: new TextEncoder().encode("hi") });
  assert.equal(new TextDecoder().decode((await kv.get({ key: "connect" })).value), "hi");
  // The gateway's error body and status map back onto Connect's codes.
  const err = await kv.get({ key: "absent" }).catch((e) => e);
  assert.ok(err instanceof ConnectError, String(err));
  assert.equal(err.code, Code.NotFound);
  assert.equal(err.rawMessage, "no key absent");
  const streams = createClient(Streams, transport);
  assert.equal((await streams.next({ value: 41n })).value, 42n);
  const deadline = await streams.next({ value: 1n }, { timeoutMs: 60_000 });
  assert.equal(deadline.value, 2n);
  // Connect's binary unary (application/proto) too.
  const binary = createClient(
    KV,
    createConnectTransport({
      baseUrl: `${s.gateway.url}/plugins/helper`,
      useBinaryFormat: true,
      interceptors: [(next) => (request) => {
        request.header.set("authorization", `Bearer ${KEY}`);
        return next(request);
      }],
    }),
  );
  assert.equal(new TextDecoder().decode((await binary.get({ key: "connect" })).value), "hi");
  const binaryErr = await binary.get({ key: "absent" }).catch((e) => e);
  assert.equal((binaryErr as ConnectError).code, Code.NotFound);
  const anonymous = createClient(
    KV,
    createConnectTransport({
      baseUrl: `${s.gateway.url}/plugins/helper`,
      useBinaryFormat: false,
    }),
  );
  const denied = await anonymous.get({ key: "connect" }).catch((e) => e);
  assert.equal((denied as ConnectError).code, Code.Unauthenticated);
});

testNoLeftovers();
