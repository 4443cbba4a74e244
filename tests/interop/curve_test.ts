/**
 * Interop: the AutoMTLS curve option (docs/protocol.md §5.4) against real go-plugin v1.8.0
 * peers. A plugwire host with a P-384 certificate (what grpcio/BoringSSL peers need) talks
 * mutual TLS to our Go fixture `goplugin`, which answers with go-plugin's P-521 certificate; and
 * go-plugin's host (`gohost`) talks to a plugwire plugin whose certificate is P-384.
 *
 * @module
 */

import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { startPlugin } from "../../host.ts";
import { KV } from "../../gen/kv/kv_pb.ts";
import { denoCommand, TEST_MARK, testNoLeftovers, testRoot } from "../_util.ts";
import { peers, peersMissing } from "./_peers.ts";

for (const curve of ["P-384", "P-521"] as const) {
  Deno.test({
    name: `a plugwire host with an AutoMTLS ${curve} certificate talks to a go-plugin plugin`,
    ignore: peersMissing !== undefined,
    async fn() {
      await using plugin = await startPlugin({
        cmd: [peers.GO_FIXTURE_PLUGIN],
        env: { PLUGWIRE_TEST_MARK: TEST_MARK },
        handshake: {
          protocolVersion: 1,
          magicCookieKey: "BASIC_PLUGIN",
          magicCookieValue: "hello",
        },
        plugins: { kv: KV },
        autoMtls: true,
        autoMtlsCurve: curve,
        unixSocketDir: testRoot(),
        logger: () => {},
      });
      const kv = plugin.dispense("kv");
      await kv.put({ key: "c", value: new TextEncoder().encode(curve) });
      assert.equal(new TextDecoder().decode((await kv.get({ key: "c" })).value), curve);
      const { tls } = plugin.reattachConfig();
      const own = new X509Certificate(tls!.cert).publicKey.asymmetricKeyDetails?.namedCurve;
      const go = new X509Certificate(tls!.ca).publicKey.asymmetricKeyDetails?.namedCurve;
      assert.equal(own, curve === "P-384" ? "secp384r1" : "secp521r1");
      assert.equal(go, "secp521r1"); // go-plugin's own is always P-521
    },
  });
}

Deno.test({
  name: "go-plugin's host talks AutoMTLS to a plugwire plugin with a P-384 certificate",
  ignore: peersMissing !== undefined,
  async fn() {
    const out = await new Deno.Command(peers.GO_FIXTURE_HOST, {
      args: [
        "-automtls",
        "-plugin",
        denoCommand("tests/fixtures/api_plugin.ts").join(" "),
        "-mode",
        "kv-roundtrip",
        "k",
        "p-384",
      ],
      env: { PLUGWIRE_TEST_MARK: TEST_MARK, API_MODE: "streams", API_CURVE: "P-384" },
      stdin: "null",
      stderr: "null",
    }).output();
    const lines = new TextDecoder().decode(out.stdout).trim().split("\n").map((l) => JSON.parse(l));
    assert.equal(out.success, true, JSON.stringify(lines));
    assert.equal(lines.find((l) => l.type === "connected")?.tls, true);
    assert.equal(lines.find((l) => l.type === "kv-get")?.value, "p-384");
    assert.equal(lines.find((l) => l.type === "killed")?.graceful, true);
  },
});

testNoLeftovers();
