import assert from "node:assert/strict";
import { chooseTransport, padBase64 } from "../internal/rpcplugin.ts";

Deno.test("chooseTransport() takes the host's first transport unless the plugin's preference is listed", () => {
  assert.equal(chooseTransport("tcp,unix", undefined), "tcp");
  assert.equal(chooseTransport("tcp,unix", "unix"), "unix");
  assert.equal(chooseTransport("unix", "tcp"), "unix");
  assert.equal(chooseTransport("quic, unix", undefined), "unix");
  assert.equal(chooseTransport("quic", undefined), undefined);
});

Deno.test("padBase64() restores standard base64 padding", () => {
  assert.equal(padBase64("YQ"), "YQ==");
  assert.equal(padBase64("YWI"), "YWI=");
  assert.equal(padBase64("YWJj"), "YWJj");
});
