// Tests for internal/flavour.ts and internal/hipcheck/flavour.ts: what each protocol flavour
// decides, as start.ts, connection.ts, server.ts and the Hipcheck launcher ask it.
import assert from "node:assert/strict";
import {
  goPluginFlavour,
  hostFlavour,
  pluginFlavour,
  rpcpluginFlavour,
} from "../internal/flavour.ts";
import { hipcheckFlavour } from "../internal/hipcheck/flavour.ts";

const env = (vars: Record<string, string>) => (name: string) => vars[name];

Deno.test("hostFlavour() maps StartOptions.protocol, go-plugin by default", () => {
  assert.equal(hostFlavour(undefined), goPluginFlavour);
  assert.equal(hostFlavour("go-plugin"), goPluginFlavour);
  assert.equal(hostFlavour("rpcplugin"), rpcpluginFlavour);
});

Deno.test("pluginFlavour() is RPCPlugin exactly when the host set PLUGIN_TRANSPORTS", () => {
  assert.equal(pluginFlavour(env({})), goPluginFlavour);
  assert.equal(pluginFlavour(env({ PLUGIN_TRANSPORTS: "unix" })), rpcpluginFlavour);
  assert.equal(pluginFlavour(env({ PLUGIN_TRANSPORTS: "" })), rpcpluginFlavour);
});

Deno.test("goPluginFlavour: no extra env, optional TLS, a controller, the plugin's network", () => {
  assert.deepEqual(goPluginFlavour.hostEnv(), {});
  assert.deepEqual(goPluginFlavour.launchArgs({ port: 1 }), []);
  assert.equal(goPluginFlavour.tlsRequired, false);
  assert.equal(goPluginFlavour.hasController, true);
  assert.equal(goPluginFlavour.exitWithoutCommonVersion, false);
  assert.equal(goPluginFlavour.chooseNetwork(env({}), undefined), "unix");
  assert.equal(goPluginFlavour.chooseNetwork(env({}), "tcp"), "tcp");
  assert.equal(goPluginFlavour.encodeCert("YWJj"), "YWJj");
  assert.equal(goPluginFlavour.encodeCert("YWI"), "YWI"); // go-plugin: unpadded
});

Deno.test("rpcpluginFlavour: PLUGIN_TRANSPORTS, mandatory TLS, no controller, padded cert", () => {
  assert.deepEqual(rpcpluginFlavour.hostEnv(), { PLUGIN_TRANSPORTS: "unix,tcp" });
  assert.equal(rpcpluginFlavour.tlsRequired, true);
  assert.equal(rpcpluginFlavour.hasController, false);
  assert.equal(rpcpluginFlavour.exitWithoutCommonVersion, true);
  const offered = env({ PLUGIN_TRANSPORTS: "tcp,unix" });
  assert.equal(rpcpluginFlavour.chooseNetwork(offered, undefined), "tcp"); // the host's first
  assert.equal(rpcpluginFlavour.chooseNetwork(offered, "unix"), "unix"); // the plugin's, offered
  assert.equal(
    rpcpluginFlavour.chooseNetwork(env({ PLUGIN_TRANSPORTS: "quic" }), "unix"),
    undefined,
  );
  assert.equal(rpcpluginFlavour.encodeCert("YWI"), "YWI=");
  assert.equal(rpcpluginFlavour.encodeCert("YQ"), "YQ==");
});

Deno.test("hipcheckFlavour: no handshake line, --port and --log-level, connect-retry readiness", () => {
  assert.equal(hipcheckFlavour.readiness, "connect-retry");
  assert.equal(goPluginFlavour.readiness, "handshake-line");
  assert.deepEqual(hipcheckFlavour.launchArgs({ port: 50051, logLevel: "info" }), [
    "--port",
    "50051",
    "--log-level",
    "info",
  ]);
  assert.deepEqual(hipcheckFlavour.hostEnv(), {});
  assert.equal(hipcheckFlavour.tlsRequired, false);
  assert.equal(hipcheckFlavour.hasController, false);
  // Its plugin side has its own entry point: never chosen from a go-plugin host's environment.
  assert.equal(hipcheckFlavour.detect(env({ PLUGIN_TRANSPORTS: "tcp" })), false);
});
