/**
 * Interop: the AutoMTLS curve option (docs/protocol.md §5.4) against a real go-plugin v1.8.0
 * plugin. A plugwire host with a P-384 certificate (what grpcio/BoringSSL peers need) talks
 * mutual TLS to our Go fixture `goplugin`, which answers with go-plugin's P-521 certificate.
 *
 * @module
 */

import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { startPlugin } from "../../host.ts";
import { KV } from "../../gen/kv/kv_pb.ts";
import { TEST_MARK, testNoLeftovers, testRoot } from "../_util.ts";
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

testNoLeftovers();
