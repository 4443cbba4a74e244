// The plugin author's and host author's API against real plugin processes: partial service
// implementations, interceptors on both sides, response metadata on RpcError, the default call
// timeout, and the AutoMTLS curve (docs/protocol.md §5.4).
import assert from "node:assert/strict";
import { type Interceptor, PluginError, RpcError, startPlugin, Status } from "../host.ts";
import { Test } from "../gen/grpctest/grpctest_pb.ts";
import { KV } from "../gen/kv/kv_pb.ts";
import { Streams } from "../gen/streams/streams_pb.ts";
import {
  denoCommand,
  HANDSHAKE,
  helperPlugin,
  TEST_MARK,
  testNoLeftovers,
  testRoot,
} from "./_util.ts";

function apiPlugin(mode: string, env: Record<string, string> = {}) {
  return {
    cmd: denoCommand("tests/fixtures/api_plugin.ts"),
    env: { PLUGWIRE_TEST_MARK: TEST_MARK, API_MODE: mode, ...env },
    handshake: HANDSHAKE,
    unixSocketDir: testRoot(),
    logger: () => {},
  };
}

Deno.test("grpcPlugin() with methods left out: they answer UNIMPLEMENTED, the rest work", async () => {
  await using plugin = await startPlugin({
    ...apiPlugin("partial"),
    plugins: { test: Test, streams: Streams },
  });
  const test = plugin.dispense("test");
  assert.equal((await test.double({ input: 21 })).output, 42);
  await assert.rejects(
    test.printKV({ key: "a" }),
    (err) =>
      err instanceof RpcError && err.code === Status.UNIMPLEMENTED &&
      err.details === "method PrintKV not implemented",
  );
  await assert.rejects(test.panic({}), (err) => (err as RpcError).code === Status.UNIMPLEMENTED);
  // Streaming methods left out answer UNIMPLEMENTED too.
  const stream = test.stream((async function* () {
    yield { input: 1 };
  })());
  await assert.rejects(
    Array.fromAsync(stream),
    (err) => err instanceof RpcError && err.code === Status.UNIMPLEMENTED,
  );
  const streams = plugin.dispense("streams");
  assert.deepEqual((await Array.fromAsync(streams.count({ value: 3n }))).map((n) => n.value), [
    0n,
    1n,
    2n,
  ]);
  await assert.rejects(
    streams.sum((async function* () {})()),
    (err) => err instanceof RpcError && err.code === Status.UNIMPLEMENTED,
  );
});

Deno.test("grpcPlugin() with strict: a method left out stops the plugin before its handshake", async () => {
  await assert.rejects(
    startPlugin({ ...apiPlugin("partial-strict"), plugins: { test: Test } }),
    (err) =>
      err instanceof PluginError && err.code === "exited-before-connect" &&
      err.stderrTail.some((line) =>
        line.includes("Cannot serve grpctest.Test: no implementation of printKV()")
      ),
  );
});

Deno.test("interceptors on both sides see and change requests, responses and metadata", async () => {
  const seen: string[] = [];
  const received: Array<{ header: Record<string, string>; trailer: Record<string, string> }> = [];
  const token: Interceptor = (next) => async (request) => {
    seen.push(`${request.kind} ${request.path}`);
    request.metadata["x-token"] = "secret";
    const response = await next(request);
    received.push(response);
    return response;
  };
  await using plugin = await startPlugin({
    ...apiPlugin("interceptors"),
    plugins: { streams: Streams },
    interceptors: [token],
  });
  const streams = plugin.dispense("streams");
  // The plugin's interceptor doubles the request: next(2) sees 4 and answers 5.
  assert.equal((await streams.next({ value: 2n })).value, 5n);
  assert.equal(received[0].header["x-seen-token"], "secret");
  assert.equal(received[0].trailer["x-calls"], "1");
  // Server streaming: count(2) runs as count(4); headers and trailers arrive with the stream.
  const counted = await Array.fromAsync(streams.count({ value: 2n }));
  assert.deepEqual(counted.map((n) => n.value), [0n, 1n, 2n, 3n]);
  assert.equal(received[1].header["x-seen-token"], "secret");
  assert.equal(received[1].trailer["x-calls"], "2");
  // Client streaming passes through both chains untouched.
  const sum = await streams.sum((async function* () {
    yield { value: 4n };
    yield { value: 5n };
  })());
  assert.equal(sum.value, 9n);
  assert.deepEqual(seen, [
    "unary /streams.Streams/Next",
    "server_streaming /streams.Streams/Count",
    "client_streaming /streams.Streams/Sum",
  ]);
  // Health checks and the protocol's own streams do not go through the plugin's interceptors.
  await plugin.ping();
});

Deno.test("RpcError carries the response metadata: the plugin's trailers and headers", async () => {
  await using plugin = await startPlugin({
    ...apiPlugin("interceptors"),
    plugins: { streams: Streams },
  });
  // No token: the plugin's interceptor refuses with a trailer.
  await assert.rejects(
    plugin.dispense("streams").next({ value: 1n }),
    (err) =>
      err instanceof RpcError && err.code === Status.UNAUTHENTICATED &&
      err.metadata["x-reason"] === "none",
  );
  // A method's own RpcError metadata reaches the host, through a streaming call too.
  const next = plugin.dispense("streams").next;
  await assert.rejects(
    next({ value: 0n }, { metadata: { "x-token": "t" } }),
    (err) =>
      err instanceof RpcError && err.code === Status.INVALID_ARGUMENT &&
      err.metadata["x-detail"] === "zero",
  );
  await assert.rejects(
    Array.fromAsync(plugin.dispense("streams").count({ value: 1n })),
    (err) => RpcError.from(err).metadata["x-reason"] === "none",
  );
});

Deno.test("a streaming method that throws: the caller gets its status and metadata", async () => {
  await using plugin = await startPlugin({
    ...apiPlugin("streams"),
    plugins: { streams: Streams },
  });
  const streams = plugin.dispense("streams");
  // Before the first message (this hung before grpc_server.ts emitted the error itself).
  await assert.rejects(
    // A deadline, so that a regression fails instead of hanging.
    Array.fromAsync(streams.count({ value: 999n }, { timeoutMs: 10_000 })),
    (err) =>
      err instanceof RpcError && err.code === Status.NOT_FOUND && err.details === "no stream" &&
      err.metadata["x-detail"] === "999",
  );
  // Mid-stream, on a bidirectional call.
  const replies: bigint[] = [];
  await assert.rejects(
    (async () => {
      const requests = (async function* () {
        yield { value: 1n };
        yield { value: 999n };
      })();
      for await (const reply of streams.double(requests, { timeoutMs: 10_000 })) {
        replies.push(reply.value);
      }
    })(),
    (err) => err instanceof RpcError && err.code === Status.OUT_OF_RANGE,
  );
  assert.deepEqual(replies, [2n]);
  assert.equal((await streams.next({ value: 1n })).value, 2n); // the connection is fine
});

Deno.test("callTimeoutMs: calls without a timeout of their own get it, and end DEADLINE_EXCEEDED", async () => {
  const timeouts: Array<number | undefined> = [];
  await using plugin = await startPlugin({
    ...apiPlugin("streams"),
    plugins: { streams: Streams },
    callTimeoutMs: 300,
    interceptors: [(next) => (request) => {
      timeouts.push(request.timeoutMs);
      return next(request);
    }],
  });
  const streams = plugin.dispense("streams");
  assert.equal((await streams.next({ value: 1n })).value, 2n);
  assert.equal((await streams.next({ value: 1n }, { timeoutMs: 60_000 })).value, 2n);
  await assert.rejects(
    streams.next({ value: 1000n }), // never answers
    (err) => err instanceof RpcError && err.code === Status.DEADLINE_EXCEEDED,
  );
  assert.deepEqual(timeouts, [300, 60_000, 300]);
  // The plugin's long-lived protocol streams (broker, stdio) are not cut by the default.
  await new Promise((resolve) => setTimeout(resolve, 400));
  await plugin.ping();
  assert.equal((await streams.next({ value: 3n })).value, 4n);
});

Deno.test("RpcError.from() maps aborts, timeouts, grpc-js errors and plain errors", () => {
  const own = new RpcError(Status.NOT_FOUND, "x");
  assert.equal(RpcError.from(own), own);
  assert.equal(RpcError.from(new DOMException("stop", "AbortError")).code, Status.CANCELLED);
  assert.equal(
    RpcError.from(new DOMException("late", "TimeoutError")).code,
    Status.DEADLINE_EXCEEDED,
  );
  const fromGrpc = RpcError.from(
    Object.assign(new Error("14 UNAVAILABLE: gone"), { code: 14, details: "gone" }),
  );
  assert.equal(fromGrpc.code, Status.UNAVAILABLE);
  assert.equal(fromGrpc.details, "gone");
  const plain = RpcError.from("boom");
  assert.equal(plain.code, Status.UNKNOWN);
  assert.equal(plain.details, "boom");
  assert.equal(RpcError.from({ code: 99, message: "odd" }).code, Status.UNKNOWN);
});

for (const curve of ["P-521", "P-384"] as const) {
  Deno.test(`autoMtlsCurve ${curve}: host and plugin certificates on that curve, calls work`, async () => {
    const { X509Certificate } = await import("node:crypto");
    await using plugin = await startPlugin({
      ...apiPlugin("streams", { API_CURVE: curve }),
      plugins: { streams: Streams },
      autoMtls: true,
      autoMtlsCurve: curve,
    });
    assert.equal((await plugin.dispense("streams").next({ value: 1n })).value, 2n);
    const tls = plugin.reattachConfig().tls!;
    const expected = curve === "P-521" ? "secp521r1" : "secp384r1";
    for (const pem of [tls.cert, tls.ca]) {
      const key = new X509Certificate(pem).publicKey;
      assert.equal(key.asymmetricKeyDetails?.namedCurve, expected);
    }
  });
}

Deno.test("versionedPlugins: dispense() is typed by the negotiated version; no protocolVersion needed", async () => {
  const { magicCookieKey, magicCookieValue } = HANDSHAKE;
  for (const [offered, expected] of [["1,2", 2], ["1", 1]] as const) {
    await using plugin = await startPlugin({
      ...helperPlugin("serve", { HELPER_VERSIONS: offered }),
      handshake: { magicCookieKey, magicCookieValue },
      versionedPlugins: { 1: { kv: KV }, 2: { test: Test } },
    });
    assert.equal(plugin.protocolVersion, expected);
    if (plugin.protocolVersion === 2) {
      assert.equal((await plugin.dispense("test").double({ input: 5 })).output, 10);
      // @ts-expect-error: version 2's plugin set has no "kv"
      assert.throws(() => plugin.dispense("kv"), PluginError);
    } else {
      await plugin.dispense("kv").put({ key: "v", value: new Uint8Array([1]) });
      // @ts-expect-error: version 1's plugin set has no "test"
      assert.throws(() => plugin.dispense("test"), PluginError);
    }
  }
});

Deno.test("startPlugin() refuses plugins without handshake.protocolVersion", async () => {
  const { magicCookieKey, magicCookieValue } = HANDSHAKE;
  await assert.rejects(
    startPlugin({
      ...helperPlugin("serve"),
      handshake: { magicCookieKey, magicCookieValue },
      plugins: { kv: KV },
    }),
    (err) =>
      err instanceof PluginError && err.code === "misconfigured" &&
      /handshake\.protocolVersion/.test(err.message),
  );
});

for (const autoMtls of [false, true]) {
  Deno.test(`PluginClient says what it is connected to${autoMtls ? " (AutoMTLS)" : ""}`, async () => {
    await using plugin = await startPlugin({
      ...apiPlugin("streams"),
      plugins: { streams: Streams },
      autoMtls,
    });
    assert.equal(plugin.tls, autoMtls);
    assert.equal(plugin.network, "unix");
    const fields = plugin.handshakeLine!.split("|");
    assert.deepEqual(fields.slice(0, 5), ["1", "1", "unix", plugin.address, "grpc"]);
    const peer = await plugin.peerCertificate();
    if (!autoMtls) {
      assert.equal(fields[5], "");
      assert.equal(peer, undefined);
    } else {
      // The certificate on the TLS session is the one the handshake announced.
      const fromHandshake = Uint8Array.from(
        atob(fields[5] + "=".repeat((4 - fields[5].length % 4) % 4)),
        (c) => c.charCodeAt(0),
      );
      assert.deepEqual([...peer!], [...fromHandshake]);
    }
    const reattached = await startPlugin({
      reattach: plugin.reattachConfig(),
      handshake: HANDSHAKE,
      plugins: { streams: Streams },
      logger: () => {},
    });
    assert.equal(reattached.handshakeLine, undefined);
    assert.equal(reattached.tls, autoMtls);
    await reattached.close();
  });
}

testNoLeftovers();
