/**
 * The RPCPlugin flavour, plugwire host against plugwire plugin. RPCPlugin's own Go
 * implementation (go.rpcplugin.org/rpcplugin) cannot be fetched here (the Go module proxy
 * refuses it), so these tests pin the flavour's rules from its specification.
 */
import assert from "node:assert/strict";
import { PluginError, startPlugin } from "../host.ts";
import { KV } from "../gen/kv/kv_pb.ts";
import { generateCertificate } from "../internal/mtls.ts";
import { startByHand } from "./_by_hand.ts";
import { HANDSHAKE, helperPlugin, testNoLeftovers, testRoot } from "./_util.ts";

/** Starts the helper plugin by hand (cookie and test root set) and returns what it printed. */
async function firstLine(
  env: Record<string, string>,
): Promise<{ line: string; code: number; stderr: string }> {
  const plugin = await startByHand({
    [HANDSHAKE.magicCookieKey]: HANDSHAKE.magicCookieValue,
    PLUGIN_UNIX_SOCKET_DIR: testRoot(),
    ...env,
  });
  const ended = await plugin.stop();
  return { line: plugin.line, code: ended.status.code, stderr: ended.stderr };
}

Deno.test("rpcplugin: a plugwire host and plugin speak the RPCPlugin flavour over mutual TLS", async () => {
  await using plugin = await startPlugin({
    ...helperPlugin("serve"),
    plugins: { kv: KV },
    protocol: "rpcplugin",
  });
  assert.ok(plugin.reattachConfig().tls, "TLS is on without asking for it");
  const kv = plugin.dispense("kv");
  await kv.put({ key: "k", value: new TextEncoder().encode("v") });
  assert.equal(new TextDecoder().decode((await kv.get({ key: "k" })).value), "v");
});

Deno.test("rpcplugin: the plugin listens on a transport the host lists and pads its certificate", async () => {
  const host = await generateCertificate();
  const { line } = await firstLine({
    PLUGIN_PROTOCOL_VERSIONS: "1",
    PLUGIN_TRANSPORTS: "tcp",
    PLUGIN_MIN_PORT: "0",
    PLUGIN_MAX_PORT: "0",
    PLUGIN_CLIENT_CERT: host.certPem,
  });
  const fields = line.trim().split("|");
  assert.equal(fields[2], "tcp");
  assert.equal(fields[4], "grpc");
  assert.equal(fields[5].length % 4, 0, "padded base64");
});

Deno.test("rpcplugin: TLS is mandatory for the plugin", async () => {
  const { line, code, stderr } = await firstLine({
    PLUGIN_PROTOCOL_VERSIONS: "1",
    PLUGIN_TRANSPORTS: "unix",
  });
  assert.equal(line, "");
  assert.equal(code, 1);
  assert.match(stderr, /RPCPlugin requires TLS/);
});

Deno.test("rpcplugin: the plugin exits when no version is in common", async () => {
  const host = await generateCertificate();
  const { line, code, stderr } = await firstLine({
    PLUGIN_PROTOCOL_VERSIONS: "7",
    PLUGIN_TRANSPORTS: "unix",
    PLUGIN_CLIENT_CERT: host.certPem,
  });
  assert.equal(line, "");
  assert.equal(code, 1);
  assert.match(stderr, /nothing in common/);
});

Deno.test("rpcplugin: the host never falls back to plaintext", async () => {
  await assert.rejects(
    startPlugin({
      ...helperPlugin("mtls-no-cert"),
      plugins: { kv: KV },
      protocol: "rpcplugin",
      allowPlaintextFallback: true,
    }),
    (err) => err instanceof PluginError && err.code === "tls-required",
  );
});

testNoLeftovers();
