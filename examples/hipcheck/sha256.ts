/**
 * `dummy/sha256`: the contract of Hipcheck's own Rust test plugin, in TypeScript. Its default
 * query, also named `sha256`, takes an array of byte values and returns their SHA-256 digest as
 * an array of numbers: `[1]` gives `[75, 245, 18, …]`.
 *
 *     deno run -A examples/hipcheck/sha256.ts --port 50051 --log-level info   # as core runs it
 *
 * @module
 */

import { definePlugin, query, servePlugin } from "../../hipcheck.ts";
import { z } from "zod";

/** An array of byte values, the key and the output of the query. */
export const bytes = z.array(z.number().int().min(0).max(255));

/** The SHA-256 digest of `data`, as byte values. */
export async function sha256(data: number[]): Promise<number[]> {
  const digest = await crypto.subtle.digest("SHA-256", new Uint8Array(data));
  return [...new Uint8Array(digest)];
}

/** The plugin: publisher `dummy`, name `sha256`, one query `sha256` that is the default. */
export const plugin = definePlugin({
  publisher: "dummy",
  name: "sha256",
  explanation: "the SHA-256 digest of the given bytes",
  queries: {
    sha256: query({ key: bytes, output: bytes, default: true }, (_engine, data) => sha256(data)),
  },
});

if (import.meta.main) await servePlugin(plugin);
