/**
 * Hipcheck plugins, run through plugwire's TypeScript Hipcheck core: `POST
 * /hipcheck/<publisher>/<name>[/<query>]` with the key as the JSON body.
 *
 * @module
 */

import type { HipcheckPluginSection } from "./config.ts";
import type { Instance } from "./slot.ts";

/** A running Hipcheck plugin. */
export interface HipcheckInstance extends Instance {
  /** `publisher/name`, as the plugin's routes use it. */
  readonly name: string;
  /** Runs one query (`""` is the default query) with a JSON key; resolves to its JSON output. */
  query(query: string, key: unknown, timeoutMs: number): Promise<unknown>;
}

/** Starts a Hipcheck plugin through the TypeScript Hipcheck core. */
export function startHipcheckPlugin(
  section: HipcheckPluginSection,
  _log: (line: string) => void,
  _extraEnv: Record<string, string> = {},
): Promise<HipcheckInstance> {
  return Promise.reject(
    new Error(`${section.id}: the TypeScript Hipcheck core is not available in this build yet`),
  );
}
