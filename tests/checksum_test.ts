// Tests for internal/checksum.ts: go-plugin's SecureConfig check (client.go `SecureConfig.Check`
// and its use in `Start`: "checksums did not match", "no checksum provided",
// "error verifying checksum: …"). Expected digests come from node:crypto, not WebCrypto.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { type Checksum, verifyChecksum } from "../internal/checksum.ts";
import { PluginError, type PluginErrorCode } from "../internal/errors.ts";

const CONTENT = new TextEncoder().encode("#!/bin/sh\necho 'plugwire checksum test'\n");

/** Runs `fn` with a temp file holding CONTENT; removes the directory afterwards. */
async function withPluginFile(fn: (path: string, dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "plugwire-checksum-" });
  try {
    const path = `${dir}/plugin`;
    await Deno.writeFile(path, CONTENT, { mode: 0o755 });
    await fn(path, dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function digest(algorithm: string, data: Uint8Array = CONTENT): Buffer {
  return createHash(algorithm).update(data).digest();
}

/** Asserts that verifyChecksum rejects with this code; returns the error. */
async function rejects(
  path: string,
  checksum: Checksum,
  code: PluginErrorCode,
): Promise<PluginError> {
  let caught: unknown;
  try {
    await verifyChecksum(path, checksum);
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof PluginError, `expected a PluginError, got ${caught}`);
  assert.equal(caught.code, code);
  return caught;
}

Deno.test("verifyChecksum() accepts a matching SHA-256 hex digest (the default algorithm)", async () => {
  await withPluginFile(async (path) => {
    const hex = digest("sha256").toString("hex");
    await verifyChecksum(path, { digest: hex });
    await verifyChecksum(path, { algorithm: "SHA-256", digest: hex });
    await verifyChecksum(path, { digest: hex.toUpperCase() });
  });
});

Deno.test("verifyChecksum() accepts a matching digest given as bytes", async () => {
  await withPluginFile(async (path) => {
    await verifyChecksum(path, { digest: new Uint8Array(digest("sha256")) });
  });
});

Deno.test("verifyChecksum() supports SHA-512, SHA-384 and SHA-1", async () => {
  await withPluginFile(async (path) => {
    await verifyChecksum(path, { algorithm: "SHA-512", digest: digest("sha512").toString("hex") });
    await verifyChecksum(path, { algorithm: "SHA-384", digest: digest("sha384").toString("hex") });
    await verifyChecksum(path, { algorithm: "SHA-1", digest: new Uint8Array(digest("sha1")) });
  });
});

Deno.test("verifyChecksum() rejects a mismatch with go-plugin's 'checksums did not match'", async () => {
  await withPluginFile(async (path) => {
    const other = digest("sha256", new TextEncoder().encode("another binary"));
    for (const wrong of [other.toString("hex"), new Uint8Array(other)]) {
      const err = await rejects(path, { digest: wrong }, "checksum-mismatch");
      assert.ok(err.message.startsWith("checksums did not match"), err.message);
      assert.ok(err.message.includes(path), err.message);
      assert.equal(err.path, path);
    }
  });
});

Deno.test("verifyChecksum() rejects a file changed after the checksum was taken", async () => {
  await withPluginFile(async (path) => {
    const hex = digest("sha256").toString("hex");
    await verifyChecksum(path, { digest: hex });
    await Deno.writeFile(path, new TextEncoder().encode("\n"), { append: true });
    const err = await rejects(path, { digest: hex }, "checksum-mismatch");
    assert.ok(err.message.startsWith("checksums did not match"), err.message);
  });
});

Deno.test("verifyChecksum() rejects a digest of another algorithm or length as a mismatch", async () => {
  await withPluginFile(async (path) => {
    // The right SHA-256 digest checked as SHA-512, and a truncated digest.
    const sha256 = digest("sha256");
    for (
      const checksum of [
        { algorithm: "SHA-512", digest: sha256.toString("hex") },
        { digest: sha256.subarray(0, 16).toString("hex") },
        { digest: new Uint8Array([...sha256, 0]) },
      ] as Checksum[]
    ) {
      const err = await rejects(path, checksum, "checksum-mismatch");
      assert.ok(err.message.startsWith("checksums did not match"), err.message);
    }
  });
});

Deno.test("verifyChecksum() rejects a malformed hex digest as misconfigured", async () => {
  await withPluginFile(async (path) => {
    for (
      const hex of [
        "zz",
        "abc",
        "0x" + "00".repeat(32),
        "ab cd",
        digest("sha256").toString("base64"),
      ]
    ) {
      const err = await rejects(path, { digest: hex }, "misconfigured");
      assert.equal(err.message, "checksum digest is not a hex string", hex);
    }
  });
});

Deno.test("verifyChecksum() rejects an empty byte digest with 'no checksum provided'", async () => {
  await withPluginFile(async (path) => {
    const err = await rejects(path, { digest: new Uint8Array() }, "misconfigured");
    assert.match(err.message, /no checksum provided/);
  });
  // go-plugin checks for an empty checksum before it opens the file.
  const err = await rejects(
    "/nonexistent/plugwire-plugin",
    { digest: new Uint8Array() },
    "misconfigured",
  );
  assert.match(err.message, /no checksum provided/);
});

Deno.test({
  name: "verifyChecksum() rejects an empty hex digest with 'no checksum provided'",
  // Regression (fixed): hexToBytes("") fails its /^([0-9a-fA-F]{2})+$/ test first, so an empty string reports
  // "checksum digest is not a hex string". go-plugin's SecureConfig.Check returns
  // ErrSecureConfigNoChecksum ("no checksum provided") for any zero-length checksum.
  async fn() {
    await withPluginFile(async (path) => {
      const err = await rejects(path, { digest: "" }, "misconfigured");
      assert.match(err.message, /no checksum provided/);
    });
  },
});

Deno.test("verifyChecksum() reports a missing file as 'error verifying checksum'", async () => {
  await withPluginFile(async (_path, dir) => {
    const missing = `${dir}/no-such-plugin`;
    const err = await rejects(
      missing,
      { digest: digest("sha256").toString("hex") },
      "checksum-mismatch",
    );
    assert.ok(err.message.startsWith("error verifying checksum: "), err.message);
    assert.equal(err.path, missing);
    assert.ok(err.cause !== undefined);
  });
});
