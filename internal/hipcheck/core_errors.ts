/**
 * The typed failures of the TypeScript Hipcheck core (the host side): one class with a code,
 * carrying what the plugin said (its concerns, its configuration status and message).
 *
 * @module
 */

import { ConfigurationStatus } from "../../gen/hipcheck/v1/hipcheck_pb.ts";

/**
 * What went wrong in the Hipcheck core:
 * - `bad-target`: a target is not `publisher/plugin[/query]`;
 * - `bad-key`: a key is not a JSON value (undefined, a bigint, a cycle…);
 * - `unknown-plugin`: no running plugin has that publisher and name (core: "No such plugin");
 * - `unknown-query`: the plugin did not list that endpoint in `GetQuerySchemas`;
 * - `query-failed`: the plugin answered UNSPECIFIED; `concerns` hold what it recorded;
 * - `query-cycle`: a query waits, through sub-queries, on itself; `cycle` lists the path;
 * - `bad-reply`: the plugin broke the query protocol (output count, invalid JSON, order);
 * - `config`: `SetConfiguration` returned a status other than NONE (`status`, `detail`);
 * - `setup-failed`: a setup call failed (a gRPC error, unparsable schemas);
 * - `closed`: the plugin's stream ended or the core was closed before the answer came.
 *
 * @example Telling the user what to fix
 * ```ts
 * import { HipcheckCoreError, type HipcheckCoreErrorCode } from "@plugwire/plugwire/hipcheck";
 * import assert from "node:assert/strict";
 *
 * function advice(code: HipcheckCoreErrorCode): string {
 *   switch (code) {
 *     case "config":
 *       return "fix the analysis's configuration in the policy file";
 *     case "query-cycle":
 *       return "two plugins ask each other: break the loop";
 *     default:
 *       return "see the plugin's log";
 *   }
 * }
 * const err = new HipcheckCoreError("query-cycle", "query cycle: a/b 1 -> c/d 1 -> a/b 1");
 * assert.equal(advice(err.code), "two plugins ask each other: break the loop");
 * ```
 */
export type HipcheckCoreErrorCode =
  | "bad-target"
  | "bad-key"
  | "unknown-plugin"
  | "unknown-query"
  | "query-failed"
  | "query-cycle"
  | "bad-reply"
  | "config"
  | "setup-failed"
  | "closed";

/** Core's wording for each configuration status (`hipcheck/src/plugin/types.rs`). @internal */
export const CONFIG_STATUS_TEXT: Readonly<Record<ConfigurationStatus, string>> = {
  [ConfigurationStatus.UNSPECIFIED]: "configuration error",
  [ConfigurationStatus.NONE]: "no error",
  [ConfigurationStatus.MISSING_REQUIRED_CONFIGURATION]: "configuration is missing required fields",
  [ConfigurationStatus.UNRECOGNIZED_CONFIGURATION]: "configuration contains unrecognized fields",
  [ConfigurationStatus.INVALID_CONFIGURATION_VALUE]: "configuration contains invalid values",
  [ConfigurationStatus.INTERNAL_ERROR]: "plugin experienced an internal error",
  [ConfigurationStatus.FILE_NOT_FOUND]: "a necessary file was not found",
  [ConfigurationStatus.PARSE_ERROR]: "plugin failed to parse data",
  [ConfigurationStatus.ENV_VAR_NOT_SET]: "a necessary environment variable was not set",
  [ConfigurationStatus.MISSING_PROGRAM]: "plugin could not find or run a needed program",
};

/**
 * Details of a {@link HipcheckCoreError}.
 *
 * @example A configuration error as the core reports it
 * ```ts
 * import { HipcheckCoreError, type HipcheckCoreErrorOptions } from "@plugwire/plugwire/hipcheck";
 * import assert from "node:assert/strict";
 *
 * const options: HipcheckCoreErrorOptions = {
 *   plugin: "plugwire/files",
 *   status: 4, // INVALID_CONFIGURATION_VALUE
 *   detail: "'-1' for 'max-files', reason: 'must be >= 0'",
 * };
 * const err = new HipcheckCoreError("config", "configuration contains invalid values", options);
 * assert.equal(err.status, 4);
 * assert.deepEqual(err.concerns, []);
 * ```
 */
export interface HipcheckCoreErrorOptions {
  /** The underlying error. */
  cause?: unknown;
  /** The plugin concerned, `publisher/name`. */
  plugin?: string;
  /** The query concerned, `publisher/plugin/query` (`""` query: the default). */
  target?: string;
  /** What the plugin recorded before failing. */
  concerns?: string[];
  /** For `config`: the `ConfigurationStatus` number the plugin returned. */
  status?: number;
  /** For `config`: the plugin's own message. */
  detail?: string;
  /** For `query-cycle`: the queries of the cycle, first = last. */
  cycle?: string[];
}

/**
 * A failure of the TypeScript Hipcheck core; switch on {@link HipcheckCoreError.code}. A
 * failed query carries the plugin's concerns (Hipcheck core 3.15 drops them); a refused
 * configuration its `ConfigurationStatus` number and message, as the plugin sent them.
 *
 * @example Showing why a query failed
 * ```ts
 * import { HipcheckCoreError } from "@plugwire/plugwire/hipcheck";
 * import assert from "node:assert/strict";
 *
 * function explain(err: unknown): string {
 *   if (!(err instanceof HipcheckCoreError)) return String(err);
 *   if (err.code === "config") return `${err.plugin}: status ${err.status}: ${err.detail}`;
 *   if (err.code === "query-failed") return `${err.target}: ${err.concerns.join("; ")}`;
 *   return err.message;
 * }
 * const failed = new HipcheckCoreError("query-failed", "test/fixture/fail 1 failed", {
 *   target: "test/fixture/fail 1",
 *   concerns: ["recorded before the failure"],
 * });
 * assert.equal(explain(failed), "test/fixture/fail 1: recorded before the failure");
 * ```
 */
export class HipcheckCoreError extends Error {
  /** What went wrong. */
  readonly code: HipcheckCoreErrorCode;
  /** The plugin concerned, `publisher/name`, when there is one. */
  readonly plugin?: string;
  /** The query concerned, `publisher/plugin/query`, when there is one. */
  readonly target?: string;
  /** What the plugin recorded before failing (empty when nothing). */
  readonly concerns: readonly string[];
  /** For `config`: the `ConfigurationStatus` number the plugin returned (2-9, or 0). */
  readonly status?: number;
  /** For `config`: the plugin's own message. */
  readonly detail?: string;
  /** For `query-cycle`: the queries of the cycle, the first repeated at the end. */
  readonly cycle?: readonly string[];

  /**
   * Creates an error.
   *
   * @param code What went wrong.
   * @param message A sentence for a person.
   * @param options What the plugin said, and the cause.
   */
  constructor(
    code: HipcheckCoreErrorCode,
    message: string,
    options: HipcheckCoreErrorOptions = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "HipcheckCoreError";
    this.code = code;
    this.concerns = options.concerns ?? [];
    if (options.plugin !== undefined) this.plugin = options.plugin;
    if (options.target !== undefined) this.target = options.target;
    if (options.status !== undefined) this.status = options.status;
    if (options.detail !== undefined) this.detail = options.detail;
    if (options.cycle !== undefined) this.cycle = options.cycle;
  }
}
