/**
 * plugwire against RPCPlugin's Go implementation (go.rpcplugin.org/rpcplugin v0.3.1, its count
 * example). The Go module proxy of the project's machines refuses that module, so these run
 * only where it can be built: `PEERS_RPCPLUGIN=1 bash tests/interop/peers.sh` writes
 * RPCPLUGIN_COUNT_SERVER and RPCPLUGIN_COUNT_CLIENT, or set them by hand.
 */
import assert from "node:assert/strict";
import { startPlugin } from "../../host.ts";
import { Counter } from "../../gen/countplugin1/countplugin1_pb.ts";
import { COUNT_HANDSHAKE } from "./fixtures/count_plugin.ts";
import { denoCommand, TEST_MARK, testNoLeftovers } from "../_util.ts";
import { peers } from "./_peers.ts";

const server = Deno.env.get("RPCPLUGIN_COUNT_SERVER") ?? peers.RPCPLUGIN_COUNT_SERVER;
const client = Deno.env.get("RPCPLUGIN_COUNT_CLIENT") ?? peers.RPCPLUGIN_COUNT_CLIENT;
const why = "RPCPlugin's Go module cannot be fetched here (the Go module proxy answers 403)";
/** The reason, in the name of a test that cannot run here. */
const blocked = (available: string | undefined) => available ? "" : ` [blocked: ${why}]`;

for (const protocol of ["rpcplugin", "go-plugin"] as const) {
  Deno.test({
    name: `interop: plugwire host → RPCPlugin Go count server (${protocol} mode, mTLS)` +
      blocked(server),
    ignore: !server,
    async fn() {
      await using plugin = await startPlugin({
        cmd: [server!],
        env: { PLUGWIRE_TEST_MARK: TEST_MARK },
        handshake: COUNT_HANDSHAKE,
        plugins: { counter: Counter },
        protocol,
        autoMtls: true,
        logger: () => {},
      });
      const counter = plugin.dispense("counter");
      await counter.count({});
      await counter.count({});
      assert.equal((await counter.getCount({})).count, 2n);
    },
  });
}

Deno.test({
  name: "interop: RPCPlugin Go count client → plugwire plugin" + blocked(client),
  ignore: !client,
  async fn() {
    const out = await new Deno.Command("timeout", {
      args: ["-s", "INT", "6", client!, ...denoCommand("tests/interop/fixtures/count_plugin.ts")],
      env: { PLUGWIRE_TEST_MARK: TEST_MARK },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(out.stderr);
    assert.match(stderr, /server reports count is 2/, stderr);
  },
});

testNoLeftovers();
