// Tests for internal/negotiate.ts: the plugin side of go-plugin's version negotiation
// (docs/protocol.md §3, server.go `protocolVersion`).
import assert from "node:assert/strict";
import { negotiateVersion, parseProtocolVersions } from "../internal/negotiate.ts";

// --- parseProtocolVersions --------------------------------------------------------------------

Deno.test('parseProtocolVersions() reads "3,2" as [3, 2], in the order given', () => {
  assert.deepEqual(parseProtocolVersions("3,2"), { versions: [3, 2], invalid: [] });
  assert.deepEqual(parseProtocolVersions("1"), { versions: [1], invalid: [] });
  assert.deepEqual(parseProtocolVersions("2,3,1"), { versions: [2, 3, 1], invalid: [] });
});

Deno.test('parseProtocolVersions() does not trim entries: "1, 2" offers 1 and skips " 2"', () => {
  assert.deepEqual(parseProtocolVersions("1, 2"), { versions: [1], invalid: [" 2"] });
  assert.deepEqual(parseProtocolVersions("1 ,2"), { versions: [2], invalid: ["1 "] });
});

Deno.test('parseProtocolVersions() reports "x" as invalid', () => {
  assert.deepEqual(parseProtocolVersions("x"), { versions: [], invalid: ["x"] });
  assert.deepEqual(parseProtocolVersions("3,x,2"), { versions: [3, 2], invalid: ["x"] });
  assert.deepEqual(parseProtocolVersions("1.5,0x2,2e0"), {
    versions: [],
    invalid: ["1.5", "0x2", "2e0"],
  });
});

Deno.test("parseProtocolVersions() reports empty entries as invalid, as Go's Atoi fails on them", () => {
  assert.deepEqual(parseProtocolVersions("3,,2"), { versions: [3, 2], invalid: [""] });
  assert.deepEqual(parseProtocolVersions("3,"), { versions: [3], invalid: [""] });
  assert.deepEqual(parseProtocolVersions(","), { versions: [], invalid: ["", ""] });
});

Deno.test("parseProtocolVersions() accepts a sign and leading zeros, like Go's Atoi", () => {
  assert.deepEqual(parseProtocolVersions("+2,007,-1"), { versions: [2, 7, -1], invalid: [] });
});

Deno.test("parseProtocolVersions() returns nothing for an empty or absent value", () => {
  assert.deepEqual(parseProtocolVersions(""), { versions: [], invalid: [] });
  assert.deepEqual(parseProtocolVersions(undefined), { versions: [], invalid: [] });
});

Deno.test({
  name: "parseProtocolVersions() reports an entry out of Go's int range as invalid",
  // Regression (fixed): the /^[+-]?\d+$/ test accepts any length; Go's strconv.Atoi fails with
  // `value out of range` beyond int64, so go-plugin skips the entry (with its stderr warning).
  fn() {
    assert.deepEqual(parseProtocolVersions("99999999999999999999,2"), {
      versions: [2],
      invalid: ["99999999999999999999"],
    });
  },
});

// --- negotiateVersion -------------------------------------------------------------------------

Deno.test("negotiateVersion() picks the highest version both sides have", () => {
  assert.equal(negotiateVersion([1, 3], [2, 3]), 3);
  assert.equal(negotiateVersion([1, 2, 3], [1, 2]), 2);
  assert.equal(negotiateVersion([2, 3], [1, 3]), 3);
  // go-plugin's examples/negotiated: plugin serves 2 (netrpc) and 3 (grpc).
  assert.equal(negotiateVersion([2, 3], [3, 2]), 3);
  assert.equal(negotiateVersion([2, 3], [2]), 2);
});

Deno.test("negotiateVersion() falls back to the plugin's lowest version with none in common", () => {
  // go-plugin serves its lowest and lets the host fail with "incompatible API version".
  assert.equal(negotiateVersion([1, 3], [2, 4]), 1);
  assert.equal(negotiateVersion([3, 2], [7]), 2);
  assert.equal(negotiateVersion([5], [1]), 5);
});

Deno.test("negotiateVersion() serves the plugin's lowest version when the host sent no list", () => {
  // PLUGIN_PROTOCOL_VERSIONS absent: a legacy host.
  assert.equal(negotiateVersion([3, 1, 2], []), 1);
  assert.equal(negotiateVersion([3, 1, 2], parseProtocolVersions(undefined).versions), 1);
});

Deno.test("negotiateVersion() ignores the order of both lists", () => {
  for (const host of [[2, 3], [3, 2]]) {
    for (const plugin of [[1, 2, 3], [3, 2, 1], [2, 1, 3]]) {
      assert.equal(negotiateVersion(plugin, host), 3, `${plugin} vs ${host}`);
    }
  }
  for (const plugin of [[1, 4], [4, 1]]) {
    assert.equal(negotiateVersion(plugin, [2, 3]), 1, `${plugin}`);
  }
});

Deno.test("negotiateVersion() does not reorder the caller's arrays", () => {
  const plugin = [1, 3, 2];
  const host = [2, 1];
  negotiateVersion(plugin, host);
  assert.deepEqual(plugin, [1, 3, 2]);
  assert.deepEqual(host, [2, 1]);
});

Deno.test("negotiateVersion() handles version 0 (possible in go-plugin)", () => {
  assert.equal(negotiateVersion([0], [0]), 0);
  assert.equal(negotiateVersion([0, 1], [0]), 0);
  assert.equal(negotiateVersion([0, 1], [5]), 0);
});

Deno.test("negotiateVersion() with the parsed env skips untrimmed entries", () => {
  // "1, 3": the host really offers only 1 to a go-plugin server.
  assert.equal(negotiateVersion([1, 3], parseProtocolVersions("1, 3").versions), 1);
  assert.equal(negotiateVersion([2, 3], parseProtocolVersions("2, 3").versions), 2);
  assert.equal(negotiateVersion([1, 3], parseProtocolVersions("3,1").versions), 3);
});

Deno.test("negotiateVersion() rejects an empty plugin list with TypeError", () => {
  assert.throws(() => negotiateVersion([], [1]), TypeError);
  assert.throws(() => negotiateVersion([], []), TypeError);
});
