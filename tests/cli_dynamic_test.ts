/**
 * internal/dynamic.ts against real plugins: plugwire's KV example and helper plugin, go-plugin's
 * Go KV example, python-plugin's greeter (descriptors without JSON names) and a
 * pyvider-rpcplugin plugin (no reflection at all).
 *
 * @module
 */

import assert from "node:assert/strict";
import { type PluginClient, RpcError, startPlugin, Status } from "../host.ts";
import { ServerReflection as ReflectionV1 } from "../gen/core/grpc/reflection/v1/reflection_pb.ts";
import { type ClientSource, DynamicError, loadServices } from "../internal/dynamic.ts";
import {
  denoCommand,
  HANDSHAKE,
  helperPlugin,
  TEST_MARK,
  testNoLeftovers,
  testRoot,
} from "./_util.ts";
import { peers, peersMissing } from "./interop/_peers.ts";

const GREETER_HANDSHAKE = {
  protocolVersion: 1,
  magicCookieKey: "GREETER_PLUGIN",
  magicCookieValue: "hello-from-pyplugin",
};

/** Starts a plugin for one test, in a scratch cwd (the KV plugins write files there). */
async function withPlugin(
  cmd: string[],
  fn: (plugin: PluginClient) => Promise<void>,
  options: { handshake?: typeof HANDSHAKE; autoMtls?: boolean; env?: Record<string, string> } = {},
): Promise<void> {
  const cwd = await Deno.makeTempDir({ prefix: "plugwire-dynamic-" });
  try {
    const plugin = await startPlugin({
      cmd,
      handshake: options.handshake ?? HANDSHAKE,
      plugins: {},
      env: { PLUGWIRE_TEST_MARK: TEST_MARK, ...options.env },
      unixSocketDir: testRoot(),
      autoMtls: options.autoMtls,
      logger: () => {},
      cwd,
    });
    try {
      await fn(plugin);
    } finally {
      await plugin.kill();
    }
  } finally {
    await Deno.remove(cwd, { recursive: true });
  }
}

/** Base64 of the UTF-8 bytes of `text` (btoa alone takes Latin-1). */
function utf8Base64(text: string): string {
  return btoa(String.fromCharCode(...new TextEncoder().encode(text)));
}

async function kvRoundTrip(plugin: PluginClient, signature: string): Promise<void> {
  const services = await loadServices(plugin);
  const kv = services.list().find((s) => s.service === "proto.KV");
  assert.ok(kv, "proto.KV listed");
  assert.equal(kv.internal, false);
  assert.deepEqual(
    kv.methods.map((m) => [m.path, m.kind, m.input, m.output]),
    [
      ["proto.KV/Get", "unary", "proto.GetRequest", "proto.GetResponse"],
      ["proto.KV/Put", "unary", "proto.PutRequest", "proto.Empty"],
    ],
  );
  assert.ok(services.list().find((s) => s.service === "plugin.GRPCController")?.internal);
  assert.deepEqual(
    await services.callUnary("proto.KV/Put", { key: "k", value: utf8Base64("hi ü") }),
    {},
  );
  const reply = await services.callUnary("/proto.KV/Get", { key: "k" }) as { value: string };
  const text = new TextDecoder().decode(Uint8Array.from(atob(reply.value), (c) => c.charCodeAt(0)));
  assert.equal(text, `hi ü\n\nWritten from ${signature}`);
  // The plugin's own errors come through as RpcErrors.
  await assert.rejects(
    services.callUnary("proto.KV.Get", { key: "absent" }),
    (err: unknown) => err instanceof RpcError && err.code !== Status.OK,
  );
}

Deno.test("dynamic: plugwire's KV example over AutoMTLS, JSON in and out", async () => {
  await withPlugin(
    denoCommand("examples/kv/plugin.ts"),
    (plugin) => kvRoundTrip(plugin, "plugin-plugwire"),
    { autoMtls: true },
  );
});

Deno.test("dynamic: typed errors for bad JSON, unknown methods and wrong kinds", async () => {
  const helper = helperPlugin("serve");
  await withPlugin(helper.cmd as string[], async (plugin) => {
    const services = await loadServices(plugin);
    assert.equal(services.reflectionVersion, "v1");
    const badValue = await services.callUnary("proto.KV/Get", { key: 3 }).catch((e) => e);
    assert.ok(badValue instanceof DynamicError);
    assert.equal(badValue.code, "invalid-json");
    assert.equal(badValue.status, Status.INVALID_ARGUMENT);
    assert.equal(badValue.field, "key");
    assert.match(badValue.message, /proto\.GetRequest.*expected string, got 3/);

    const unknownKey = await services.callUnary("proto.KV/Get", { kee: "a" }).catch((e) => e);
    assert.ok(unknownKey instanceof DynamicError);
    assert.equal(unknownKey.field, "kee");

    const noMethod = await services.callUnary("proto.KV/Delete", {}).catch((e) => e);
    assert.ok(noMethod instanceof DynamicError);
    assert.equal(noMethod.code, "not-found");
    assert.equal(noMethod.status, Status.NOT_FOUND);
    assert.match(noMethod.message, /its methods: Get, Put/);

    const noService = await services.callUnary("nope.Svc/Get", {}).catch((e) => e);
    assert.ok(noService instanceof DynamicError);
    assert.equal(noService.code, "not-found");
    assert.match(noService.message, /proto\.KV/);
    assert.doesNotMatch(noService.message, /GRPCController/); // internal services not offered

    assert.throws(
      () => services.callServerStream("proto.KV/Get", { key: "a" }),
      (e: unknown) => e instanceof DynamicError && e.code === "unsupported-method",
    );
    await assert.rejects(
      services.callUnary("grpctest.Test/Stream", {}),
      (e: unknown) => e instanceof DynamicError && e.status === Status.UNIMPLEMENTED,
    );
  }, { env: helper.env });
});

Deno.test("dynamic: a server stream as JSON replies; defaults emitted on request", async () => {
  const helper = helperPlugin("serve");
  await withPlugin(helper.cmd as string[], async (plugin) => {
    const canonical = await loadServices(plugin);
    assert.deepEqual(
      await Array.fromAsync(canonical.callServerStream("streams.Streams/Count", { value: "3" })),
      [{}, { value: "1" }, { value: "2" }], // int64 as a JSON string; zero omitted
    );
    const withDefaults = await loadServices(plugin, { emitDefaults: true });
    assert.deepEqual(
      await Array.fromAsync(withDefaults.callServerStream("streams.Streams/Count", { value: "2" })),
      [{ value: "0" }, { value: "1" }],
    );
    // Stopping early cancels the call; the plugin still answers afterwards.
    for await (
      const reply of canonical.callServerStream("streams.Streams/Count", { value: "50" })
    ) {
      assert.deepEqual(reply, {});
      break;
    }
    assert.deepEqual(await canonical.callUnary("grpctest.Test/Double", { input: "21" }), {
      output: 42,
    });
  }, { env: helper.env });
});

Deno.test("dynamic: falls back to reflection v1alpha when v1 is not served", async () => {
  const helper = helperPlugin("serve");
  await withPlugin(helper.cmd as string[], async (plugin) => {
    let v1Asked = 0;
    // The real plugin, except that its v1 reflection service answers UNIMPLEMENTED.
    const source: ClientSource = {
      client(service) {
        if ((service as unknown) !== ReflectionV1) return plugin.client(service);
        v1Asked++;
        return {
          serverReflectionInfo: () =>
            (async function* () {
              yield* [];
              throw new RpcError(Status.UNIMPLEMENTED, "unknown service");
            })(),
        } as unknown as ReturnType<typeof plugin.client<typeof service>>;
      },
    };
    const services = await loadServices(source);
    assert.equal(v1Asked, 1);
    assert.equal(services.reflectionVersion, "v1alpha");
    assert.deepEqual(await services.callUnary("grpctest.Test/Double", { input: "4" }), {
      output: 8,
    });
  }, { env: helper.env });
});

Deno.test({
  name: "dynamic: go-plugin's Go KV example plugin",
  ignore: peersMissing !== undefined,
  fn: () => withPlugin([peers.GO_EXAMPLE_KV_PLUGIN], (p) => kvRoundTrip(p, "plugin-go-grpc")),
});

Deno.test({
  name: "dynamic: python-plugin's greeter (descriptors without JSON names), AutoMTLS",
  ignore: peersMissing !== undefined,
  fn: () =>
    withPlugin([peers.PY_VENV_PYTHON, peers.PY_GREETER_PLUGIN], async (plugin) => {
      const services = await loadServices(plugin);
      const greeter = services.list().find((s) => s.service === "greeter.Greeter");
      assert.deepEqual(greeter?.methods.map((m) => m.name), ["Greet", "Count"]);
      assert.deepEqual(await services.callUnary("greeter.Greeter/Greet", { name: "Ada" }), {
        message: "hello, Ada!",
      });
      assert.deepEqual(
        await services.callUnary("greeter.Greeter/Count", { text: "one two" }),
        { letters: 6, words: 2 },
      );
    }, { handshake: GREETER_HANDSHAKE, autoMtls: true }),
});

const pyvider = peers as unknown as Record<string, string | undefined>;
Deno.test({
  name: "dynamic: a pyvider-rpcplugin plugin serves no reflection: a typed error",
  ignore: peersMissing !== undefined,
  fn: () =>
    withPlugin([pyvider.PYVIDER_PYTHON!, pyvider.PYVIDER_PLUGIN!], async (plugin) => {
      const err = await loadServices(plugin).catch((e) => e);
      assert.ok(err instanceof DynamicError, String(err));
      assert.equal(err.code, "reflection-unavailable");
      assert.equal(err.status, Status.UNIMPLEMENTED);
      assert.match(err.message, /neither grpc\.reflection\.v1 nor v1alpha/);
    }),
});

testNoLeftovers();
