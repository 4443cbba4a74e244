/**
 * Application protocol version negotiation, as go-plugin v1.8 does it on the plugin side
 * (docs/protocol.md §3): the plugin picks the highest version both sides have; with none in common,
 * or no list from the host, it serves its lowest and lets the host refuse it.
 *
 * @module
 */

import { atoi } from "./handshake.ts";

/** The result of parsing `PLUGIN_PROTOCOL_VERSIONS`. */
export interface ParsedVersions {
  /** The versions the host offers, in the order given. */
  versions: number[];
  /** Entries that were not integers (go-plugin skips them with a warning). */
  invalid: string[];
}

/**
 * Parses the host's `PLUGIN_PROTOCOL_VERSIONS` (`"3,2"`). Entries are not trimmed, as in
 * go-plugin: `"1, 2"` offers 1 and skips `" 2"`.
 *
 * @example
 * ```ts
 * import { parseProtocolVersions } from "./negotiate.ts";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(parseProtocolVersions("3,x,2"), { versions: [3, 2], invalid: ["x"] });
 * assert.deepEqual(parseProtocolVersions("1, 2"), { versions: [1], invalid: [" 2"] });
 * ```
 */
export function parseProtocolVersions(value: string | undefined): ParsedVersions {
  const result: ParsedVersions = { versions: [], invalid: [] };
  if (!value) return result;
  for (const entry of value.split(",")) {
    const version = atoi(entry);
    if (typeof version === "number") result.versions.push(version);
    else result.invalid.push(entry);
  }
  return result;
}

/**
 * Chooses the version a plugin serves: the highest of `pluginVersions` that the host also
 * offers, else the plugin's lowest.
 *
 * @example
 * ```ts
 * import { negotiateVersion } from "./negotiate.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(negotiateVersion([2, 3], [1, 3]), 3);
 * assert.equal(negotiateVersion([2, 3], [7]), 2); // the host then fails the handshake
 * ```
 */
export function negotiateVersion(
  pluginVersions: readonly number[],
  hostVersions: readonly number[],
): number {
  if (pluginVersions.length === 0) {
    throw new TypeError("Cannot negotiate a protocol version: the plugin offers none");
  }
  const descending = [...pluginVersions].sort((a, b) => b - a);
  return descending.find((v) => hostVersions.includes(v)) ?? descending[descending.length - 1];
}
