/**
 * Query targets: `"publisher/plugin"` (the default endpoint) or `"publisher/plugin/query"`, as
 * `engine.query()` and a core's `query()` take them.
 *
 * @module
 */

import { HipcheckError } from "./errors.ts";

/** A target split into its parts; `query` is `""` for the default endpoint. */
export interface QueryTarget {
  /** The publisher. */
  publisher: string;
  /** The plugin. */
  plugin: string;
  /** The endpoint, `""` for the default one. */
  query: string;
}

/**
 * Splits `"publisher/plugin[/query]"`. Throws {@link HipcheckError} (`sub-query-failed`) for
 * anything else; a trailing `/` means the default endpoint, as in Hipcheck's SDKs.
 */
export function parseTarget(target: string): QueryTarget {
  const parts = typeof target === "string" ? target.split("/") : [];
  if ((parts.length === 2 || parts.length === 3) && parts[0] !== "" && parts[1] !== "") {
    return { publisher: parts[0], plugin: parts[1], query: parts[2] ?? "" };
  }
  throw new HipcheckError(
    "sub-query-failed",
    `${
      JSON.stringify(target)
    } is not a query target ("publisher/plugin" or "publisher/plugin/query")`,
  );
}

/** `publisher/plugin` or `publisher/plugin/query`: the canonical text of a target. */
export function formatTarget(target: QueryTarget): string {
  return target.query === ""
    ? `${target.publisher}/${target.plugin}`
    : `${target.publisher}/${target.plugin}/${target.query}`;
}
