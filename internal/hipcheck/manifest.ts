/**
 * A Hipcheck plugin manifest (`plugin.kdl`): what Hipcheck core reads to start a local plugin.
 *
 * @module
 */

import { HipcheckError } from "./errors.ts";

/**
 * The architectures a manifest lists by default: a bundled Deno script runs on each.
 *
 * @example
 * ```ts
 * import { DEFAULT_ARCHES } from "@plugwire/plugwire/hipcheck";
 * import assert from "node:assert/strict";
 *
 * assert.ok(DEFAULT_ARCHES.includes("x86_64-unknown-linux-gnu"));
 * ```
 */
export const DEFAULT_ARCHES: readonly string[] = [
  "x86_64-unknown-linux-gnu",
  "aarch64-unknown-linux-gnu",
  "x86_64-apple-darwin",
  "aarch64-apple-darwin",
];

/**
 * What {@link pluginManifest} writes.
 *
 * @example
 * ```ts
 * import type { ManifestOptions } from "@plugwire/plugwire/hipcheck";
 * import assert from "node:assert/strict";
 *
 * const options: ManifestOptions = {
 *   publisher: "plugwire",
 *   name: "files",
 *   version: "0.1.0",
 *   entrypoint: "files.js",
 * };
 * assert.equal(options.license ?? "MIT", "MIT");
 * ```
 */
export interface ManifestOptions {
  /** The publisher. */
  publisher: string;
  /** The plugin's name. */
  name: string;
  /** The version (`0.1.0`); policy files pin it. */
  version: string;
  /**
   * The command core runs, split on whitespace (no quoting). If its first word is an existing
   * file, core copies that one file into its cache: a bundled single-file plugin with a
   * `#!/usr/bin/env -S deno run -A` line works; use absolute paths in further words.
   */
  entrypoint: string;
  /** The license (default `MIT`). */
  license?: string;
  /** The architectures that run `entrypoint` (default {@link DEFAULT_ARCHES}). */
  arches?: readonly string[];
  /** Plugins this one queries: `{ "dummy/sha256": { version: "0.1.0", manifest: "/abs/plugin.kdl" } }`. */
  dependencies?: Record<string, { version: string; manifest?: string }>;
}

const kdlString = (text: string) => JSON.stringify(text);

/**
 * The text of a `plugin.kdl` manifest.
 *
 * @param options The plugin's identity, version and entrypoint.
 * @returns The manifest.
 *
 * @example The manifest of a bundled plugin
 * ```ts
 * import { pluginManifest } from "@plugwire/plugwire/hipcheck";
 * import assert from "node:assert/strict";
 *
 * const kdl = pluginManifest({
 *   publisher: "plugwire",
 *   name: "files",
 *   version: "0.1.0",
 *   entrypoint: "/opt/plugins/files.js",
 *   arches: ["x86_64-unknown-linux-gnu"],
 *   dependencies: { "dummy/sha256": { version: "0.1.0", manifest: "/opt/plugins/sha256.kdl" } },
 * });
 * assert.equal(
 *   kdl,
 *   [
 *     'publisher "plugwire"',
 *     'name "files"',
 *     'version "0.1.0"',
 *     'license "MIT"',
 *     "entrypoint {",
 *     '  on arch="x86_64-unknown-linux-gnu" "/opt/plugins/files.js"',
 *     "}",
 *     "dependencies {",
 *     '  plugin "dummy/sha256" version="0.1.0" manifest="/opt/plugins/sha256.kdl"',
 *     "}",
 *     "",
 *   ].join("\n"),
 * );
 * ```
 */
export function pluginManifest(options: ManifestOptions): string {
  for (const field of ["publisher", "name", "version", "entrypoint"] as const) {
    if (typeof options[field] !== "string" || options[field].trim() === "") {
      throw new HipcheckError(
        "invalid-definition",
        `plugin.kdl: ${field} must be a non-empty string`,
      );
    }
  }
  const lines = [
    `publisher ${kdlString(options.publisher)}`,
    `name ${kdlString(options.name)}`,
    `version ${kdlString(options.version)}`,
    `license ${kdlString(options.license ?? "MIT")}`,
    "entrypoint {",
    ...(options.arches ?? DEFAULT_ARCHES).map((arch) =>
      `  on arch=${kdlString(arch)} ${kdlString(options.entrypoint)}`
    ),
    "}",
  ];
  const deps = Object.entries(options.dependencies ?? {});
  if (deps.length > 0) {
    lines.push("dependencies {");
    for (const [plugin, dep] of deps) {
      const manifest = dep.manifest === undefined ? "" : ` manifest=${kdlString(dep.manifest)}`;
      lines.push(`  plugin ${kdlString(plugin)} version=${kdlString(dep.version)}${manifest}`);
    }
    lines.push("}");
  }
  return lines.join("\n") + "\n";
}
