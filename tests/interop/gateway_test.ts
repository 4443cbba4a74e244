/**
 * The gateway serving real third-party go-plugin plugins: go-plugin's own Go KV example
 * (plugin-go-grpc v1.8.0) and python-plugin's greeter, each started and supervised by the
 * gateway, every method called as JSON through the plugin's reflection service.
 */

import assert from "node:assert/strict";
import { startGateway } from "../../gateway.ts";
import { TEST_MARK, testNoLeftovers } from "../_util.ts";
import { BASIC_HANDSHAKE, GREETER_HANDSHAKE } from "./_common.ts";
import { peers, peersMissing } from "./_peers.ts";

const handshake = (h: typeof BASIC_HANDSHAKE) =>
  `{ protocol_version = ${h.protocolVersion}, magic_cookie_key = "${h.magicCookieKey}", ` +
  `magic_cookie_value = "${h.magicCookieValue}" }`;

Deno.test({
  name: "gateway: go-plugin's Go KV plugin and python-plugin's greeter as JSON endpoints",
  ignore: peersMissing !== undefined,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "plugwire-gw-interop-" });
    try {
      await Deno.writeTextFile(
        `${dir}/gw.toml`,
        `listen = "127.0.0.1:0"
[plugins.kv-go]
public = true
cmd = [${JSON.stringify(peers.GO_EXAMPLE_KV_PLUGIN)}]
handshake = ${handshake(BASIC_HANDSHAKE)}
[plugins.greeter-py]
public = true
cmd = [${JSON.stringify(peers.PY_VENV_PYTHON)}, ${JSON.stringify(peers.PY_GREETER_PLUGIN)}]
handshake = ${handshake(GREETER_HANDSHAKE)}
`,
      );
      await using gateway = await startGateway({
        config: `${dir}/gw.toml`,
        handleSignals: false,
        log: () => {},
        pluginEnv: { PLUGWIRE_TEST_MARK: TEST_MARK },
      });
      const call = async (path: string, body: unknown) => {
        const response = await fetch(`${gateway.url}/plugins/${path}`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify(body),
        });
        return { status: response.status, json: await response.json() };
      };
      // The Go plugin writes kv_<key> files in its working directory (the config's folder).
      const put = await call("kv-go/proto.KV/Put", { key: "lang", value: btoa("go") });
      assert.deepEqual(put, { status: 200, json: {} });
      const get = await call("kv-go/proto.KV/Get", { key: "lang" });
      assert.equal(get.status, 200);
      assert.match(atob(get.json.value), /^go/);
      assert.ok(await Deno.stat(`${dir}/kv_lang`).then(() => true, () => false));
      const missing = await call("kv-go/proto.KV/Get", { key: "none" });
      assert.ok(missing.status >= 400, JSON.stringify(missing));
      assert.equal(typeof missing.json.code, "string");

      const greet = await call("greeter-py/greeter.Greeter/Greet", { name: "Ada" });
      assert.deepEqual(greet, { status: 200, json: { message: "hello, Ada!" } });
      const count = await call("greeter-py/greeter.Greeter/Count", { text: "one two" });
      assert.deepEqual(count.json, { letters: 6, words: 2 });

      const status = gateway.status();
      assert.deepEqual(status.map((p) => [p.id, p.state, p.tls, p.version]), [
        ["kv-go", "ready", true, 1],
        ["greeter-py", "ready", true, 1],
      ]);
      assert.deepEqual(status[0].methods, ["proto.KV/Get", "proto.KV/Put"]);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

testNoLeftovers();
