/**
 * `plugwire/files`: counts the files of the repository Hipcheck analyses. Its default query
 * takes Hipcheck's target (`{specifier, local: {path, git_ref}, remote, package}`) and returns
 * the number of files under `local.path`, not counting `.git`. It asks `dummy/sha256` (query
 * `sha256`) for the digest of `[count % 256]` and records the concern
 * `sha256 first byte <n>`. With the configuration `max-files N` its default policy is
 * `(lte $ N)`; without, it has none.
 *
 *     deno run -A examples/hipcheck/files.ts --port 50052 --log-level info   # as core runs it
 *
 * @module
 */

import { definePlugin, query, servePlugin } from "../../hipcheck.ts";
import { z } from "zod";
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { bytes } from "./sha256.ts";

/** Hipcheck's target: what every top-level analysis is asked about. */
export const target = z.object({
  specifier: z.string(),
  local: z.object({ path: z.string(), git_ref: z.string() }),
  remote: z.object({ url: z.string(), known_remote: z.unknown() }).loose().nullable().optional(),
  package: z.object({ purl: z.string(), name: z.string(), version: z.string() }).loose()
    .nullable().optional(),
});

/** The configuration: `max-files` in a policy file. */
export const config = z.object({
  maxFiles: z.number().int().nonnegative().optional(),
});

/** The number of files under `dir`, not counting `.git` directories. */
export async function countFiles(dir: string): Promise<number> {
  let count = 0;
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    if (entry.isDirectory()) {
      if (entry.name !== ".git") count += await countFiles(join(dir, entry.name));
    } else {
      count++;
    }
  }
  return count;
}

/** The plugin: publisher `plugwire`, name `files`, one default query `files`. */
export const plugin = definePlugin({
  publisher: "plugwire",
  name: "files",
  config,
  defaultPolicy: ({ maxFiles }) => maxFiles === undefined ? undefined : `(lte $ ${maxFiles})`,
  explanation: "the number of files in the repository, not counting .git",
  queries: {
    files: query({ key: target, output: z.number().int(), default: true }, async (engine, key) => {
      const count = await countFiles(key.local.path);
      const digest = await engine.query("dummy/sha256/sha256", [count % 256], bytes);
      engine.recordConcern(`sha256 first byte ${digest[0]}`);
      return count;
    }),
  },
});

if (import.meta.main) await servePlugin(plugin);
