/**
 * Interop: a plugwire host attaches to a real go-plugin v1.8.0 plugin started in debug mode
 * (go-plugin's ServeConfig.Test, what a Terraform provider's `-debug` does): our Go fixture
 * `goplugin` with `GOPLUGIN_DEBUG` prints the TF_REATTACH_PROVIDERS line with terraform-plugin-go's
 * field names, and plugwire reads it (docs/protocol.md §9.2, §9.3).
 *
 * @module
 */

import assert from "node:assert/strict";
import { parseReattachProviders, type PluginClient, startPlugin } from "../../host.ts";
import { KV } from "../../gen/kv/kv_pb.ts";
import { Test } from "../../gen/grpctest/grpctest_pb.ts";
import { testNoLeftovers } from "../_util.ts";
import { startDebugProcess } from "../_debug_process.ts";
import { peers, peersMissing } from "./_peers.ts";

Deno.test({
  name: "a plugwire host attaches to a go-plugin plugin in debug mode and leaves it running",
  ignore: peersMissing !== undefined,
  async fn() {
    const name = "registry.terraform.io/plugwire/goplugin";
    const debug = await startDebugProcess([peers.GO_FIXTURE_PLUGIN], { GOPLUGIN_DEBUG: name });
    try {
      // The Go side's JSON, field by field: what Terraform's debug mode reads.
      const entry = JSON.parse(debug.providers)[name];
      assert.deepEqual(Object.keys(entry), ["Protocol", "ProtocolVersion", "Pid", "Test", "Addr"]);
      assert.deepEqual(Object.keys(entry.Addr), ["Network", "String"]);
      const reattach = parseReattachProviders(debug.providers, name);
      assert.deepEqual(reattach, {
        protocol: "grpc",
        protocolVersion: 1,
        network: "unix",
        address: entry.Addr.String,
        pid: debug.process.pid,
        test: true,
      });
      for (let round = 0; round < 2; round++) {
        const plugin: PluginClient<{ kv: typeof KV; test: typeof Test }> = await startPlugin({
          reattach,
          handshake: {
            protocolVersion: 1,
            magicCookieKey: "BASIC_PLUGIN",
            magicCookieValue: "hello",
          },
          plugins: { kv: KV, test: Test },
          logger: () => {},
        });
        const kv = plugin.dispense("kv");
        if (round === 0) await kv.put({ key: "k", value: new TextEncoder().encode("v") });
        // The second host sees what the first one stored: the same process served both.
        assert.equal(new TextDecoder().decode((await kv.get({ key: "k" })).value), "v");
        assert.equal((await plugin.dispense("test").double({ input: 4 })).output, 8);
        await plugin.kill(); // Test: true, so not ours to stop
        assert.equal(plugin.hasExited, false);
      }
      const status = await debug.interrupt();
      assert.equal(status.success, true);
      assert.throws(() => Deno.statSync(reattach.address)); // go-plugin removed its socket
    } finally {
      try {
        debug.process.kill("SIGKILL");
        await debug.process.status;
      } catch {
        // Already gone.
      }
    }
  },
});

testNoLeftovers();
