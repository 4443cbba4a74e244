/**
 * Checksummed plugins (go-plugin's SecureConfig): the host hashes the executable before it
 * starts anything and refuses a mismatch.
 *
 * @module
 */

import { PluginError } from "./errors.ts";
import { readFile } from "./runtime.ts";

/**
 * The expected digest of a plugin executable.
 *
 * @example Refusing an executable that is not the expected one
 * ```ts
 * import { type Checksum, PluginError, startPlugin } from "@plugwire/plugwire/host";
 * import assert from "node:assert/strict";
 *
 * // Usually the output of `sha256sum ./kv-plugin`, recorded when the plugin was installed.
 * const checksum: Checksum = { algorithm: "SHA-256", digest: "00".repeat(32) };
 * await assert.rejects(
 *   startPlugin({
 *     cmd: ["sh"], // hashed before anything runs: sh's digest is not all zeros
 *     handshake: { protocolVersion: 1, magicCookieKey: "BASIC_PLUGIN", magicCookieValue: "hello" },
 *     plugins: {},
 *     checksum,
 *   }),
 *   (err) => err instanceof PluginError && err.code === "checksum-mismatch",
 * );
 * ```
 */
export interface Checksum {
  /** A WebCrypto digest name. @default {"SHA-256"} */
  algorithm?: "SHA-256" | "SHA-384" | "SHA-512" | "SHA-1";
  /** The digest, as bytes or lowercase/uppercase hex. */
  digest: Uint8Array | string;
}

function hexToBytes(hex: string): Uint8Array {
  if (!/^([0-9a-fA-F]{2})+$/.test(hex)) {
    throw new PluginError("misconfigured", "checksum digest is not a hex string");
  }
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  return out;
}

/** Compares in time that does not depend on where the bytes differ. */
function equalConstantTime(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i];
  return diff === 0;
}

/** Throws a {@link PluginError} unless the file at `path` has the expected digest. */
export async function verifyChecksum(path: string, checksum: Checksum): Promise<void> {
  if (checksum.digest.length === 0) throw new PluginError("misconfigured", "no checksum provided");
  const expected = typeof checksum.digest === "string"
    ? hexToBytes(checksum.digest)
    : checksum.digest;
  if (expected.length === 0) throw new PluginError("misconfigured", "no checksum provided");
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (cause) {
    throw new PluginError("checksum-mismatch", `error verifying checksum: ${String(cause)}`, {
      cause,
      path,
    });
  }
  const algorithm = checksum.algorithm ?? "SHA-256";
  const actual = new Uint8Array(await crypto.subtle.digest(algorithm, bytes as BufferSource));
  if (!equalConstantTime(actual, expected)) {
    throw new PluginError(
      "checksum-mismatch",
      `checksums did not match: ${path} is not the plugin executable the host expects ` +
        `(${algorithm}); rebuild or reinstall it, or update the checksum`,
      { path },
    );
  }
}
