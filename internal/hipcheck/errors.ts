/**
 * The errors of the Hipcheck plugin layer: {@link HipcheckError} for queries and definitions,
 * {@link ConfigError} for configuration (one kind per Hipcheck `ConfigurationStatus`).
 *
 * @module
 */

import { ConfigurationStatus } from "../../gen/hipcheck/v1/hipcheck_pb.ts";
import type { SchemaIssue } from "./schema.ts";

/**
 * What went wrong in a query or a plugin definition:
 * - `invalid-definition`: the plugin or a query is declared wrongly (two defaults, a bad name);
 * - `invalid-arguments`: the plugin's command line lacks a valid `--port`;
 * - `invalid-key` / `invalid-output`: a key or output does not match its schema (see `issues`);
 * - `unknown-query`: no endpoint of that name;
 * - `handler`: the query's handler threw;
 * - `sub-query-failed`: a query to another plugin failed, or its answer did not match;
 * - `protocol`: the peer broke the query protocol.
 *
 * @example Telling a bad key from a failing handler
 * ```ts
 * import { HipcheckError, type HipcheckErrorCode } from "@plugwire/plugwire/hipcheck";
 * import assert from "node:assert/strict";
 *
 * function blame(code: HipcheckErrorCode): "caller" | "plugin" {
 *   return code === "invalid-key" || code === "unknown-query" ? "caller" : "plugin";
 * }
 * assert.equal(blame(new HipcheckError("invalid-key", "at [0]: too big").code), "caller");
 * ```
 */
export type HipcheckErrorCode =
  | "invalid-definition"
  | "invalid-arguments"
  | "invalid-key"
  | "invalid-output"
  | "unknown-query"
  | "handler"
  | "sub-query-failed"
  | "protocol";

/**
 * An error of the Hipcheck plugin layer, with a {@link HipcheckErrorCode} and, for schema
 * mismatches, the issues naming each path.
 *
 * @example What a query that got a bad key throws
 * ```ts
 * import { definePlugin, HipcheckError, query, runQuery } from "@plugwire/plugwire/hipcheck";
 * import { z } from "zod";
 * import assert from "node:assert/strict";
 *
 * const plugin = definePlugin({
 *   publisher: "demo",
 *   name: "len",
 *   queries: { len: query({ key: z.string(), output: z.number() }, (_e, key) => key.length) },
 * });
 * await assert.rejects(runQuery(plugin, "len", 42), (err) => {
 *   assert.ok(err instanceof HipcheckError);
 *   assert.equal(err.code, "invalid-key");
 *   assert.deepEqual(err.issues?.[0].path, []);
 *   return true;
 * });
 * ```
 */
export class HipcheckError extends Error {
  /** What went wrong. */
  readonly code: HipcheckErrorCode;
  /** For `invalid-key` and `invalid-output`: each mismatch and its path. */
  readonly issues?: readonly SchemaIssue[];

  /**
   * Makes the error.
   *
   * @param code What went wrong.
   * @param message The details.
   * @param options The issues of a schema mismatch; the cause.
   */
  constructor(
    code: HipcheckErrorCode,
    message: string,
    options: { issues?: readonly SchemaIssue[]; cause?: unknown } = {},
  ) {
    super(message, { cause: options.cause });
    this.name = "HipcheckError";
    this.code = code;
    if (options.issues) this.issues = options.issues;
  }
}

/**
 * The kinds of configuration error, one per Hipcheck `ConfigurationStatus` that is not
 * `NONE` (success):
 *
 * | kind | status | core prints |
 * | --- | --- | --- |
 * | `unspecified` | 0 | configuration error |
 * | `missing-required` | 2 | configuration is missing required fields |
 * | `unrecognized` | 3 | configuration contains unrecognized fields |
 * | `invalid-value` | 4 | configuration contains invalid values |
 * | `internal-error` | 5 | plugin experienced an internal error |
 * | `file-not-found` | 6 | a necessary file was not found |
 * | `parse-error` | 7 | plugin failed to parse data |
 * | `env-var-not-set` | 8 | a necessary environment variable was not set |
 * | `missing-program` | 9 | plugin could not find or run a needed program |
 *
 * @example
 * ```ts
 * import { ConfigError, type ConfigErrorKind } from "@plugwire/plugwire/hipcheck";
 * import assert from "node:assert/strict";
 *
 * const kind: ConfigErrorKind = ConfigError.fileNotFound("/etc/rules.kdl").kind;
 * assert.equal(kind, "file-not-found");
 * ```
 */
export type ConfigErrorKind =
  | "unspecified"
  | "missing-required"
  | "unrecognized"
  | "invalid-value"
  | "internal-error"
  | "file-not-found"
  | "parse-error"
  | "env-var-not-set"
  | "missing-program";

const STATUS: Record<ConfigErrorKind, ConfigurationStatus> = {
  "unspecified": ConfigurationStatus.UNSPECIFIED,
  "missing-required": ConfigurationStatus.MISSING_REQUIRED_CONFIGURATION,
  "unrecognized": ConfigurationStatus.UNRECOGNIZED_CONFIGURATION,
  "invalid-value": ConfigurationStatus.INVALID_CONFIGURATION_VALUE,
  "internal-error": ConfigurationStatus.INTERNAL_ERROR,
  "file-not-found": ConfigurationStatus.FILE_NOT_FOUND,
  "parse-error": ConfigurationStatus.PARSE_ERROR,
  "env-var-not-set": ConfigurationStatus.ENV_VAR_NOT_SET,
  "missing-program": ConfigurationStatus.MISSING_PROGRAM,
};

const quote = (value: unknown) => typeof value === "string" ? value : JSON.stringify(value);

/**
 * A configuration the plugin cannot take. `SetConfiguration` answers with its status and
 * message (never with a gRPC error); Hipcheck core then stops with
 * `"<the status's generic text>: <message>"`. Make one with the static methods; messages follow
 * Hipcheck's Rust SDK. A `configure` hook may throw any of them.
 *
 * @example A configure hook that needs a program and an environment variable
 * ```ts
 * import { ConfigError } from "@plugwire/plugwire/hipcheck";
 * import assert from "node:assert/strict";
 *
 * function configure(env: Record<string, string | undefined>) {
 *   if (!env.GITHUB_TOKEN) throw ConfigError.envVarNotSet("GITHUB_TOKEN", "reads the GitHub API");
 * }
 * assert.throws(() => configure({}), (err) => {
 *   assert.ok(err instanceof ConfigError);
 *   assert.equal(err.kind, "env-var-not-set");
 *   assert.equal(err.status, 8);
 *   assert.equal(err.message, '"GITHUB_TOKEN". Purpose: reads the GitHub API');
 *   return true;
 * });
 * ```
 */
export class ConfigError extends Error {
  /** Which kind of configuration error. */
  readonly kind: ConfigErrorKind;

  /**
   * Makes the error; the static methods make each kind with Hipcheck's message format.
   *
   * @param kind Which kind.
   * @param message The message sent to core (after core's generic text for the kind).
   */
  constructor(kind: ConfigErrorKind, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "ConfigError";
    this.kind = kind;
  }

  /** The `ConfigurationStatus` number sent to core. */
  get status(): number {
    return STATUS[this.kind];
  }

  /**
   * A required field is missing (status 2).
   *
   * @param field The field, as the policy file names it (`max-files`).
   * @param type Its type, in words.
   * @param possibleValues Values it could take, if few.
   */
  static missingRequired(field: string, type: string, possibleValues: unknown[] = []): ConfigError {
    const values = possibleValues.length
      ? `; possible values: ${possibleValues.map(quote).join(", ")}`
      : "";
    return new ConfigError("missing-required", `'${field}' of type '${type}'${values}`);
  }

  /**
   * A field the plugin does not know (status 3).
   *
   * @param field The field.
   * @param value Its value.
   * @param possibleFieldNames The fields it might have meant, closest first.
   */
  static unrecognized(
    field: string,
    value: unknown,
    possibleFieldNames: string[] = [],
  ): ConfigError {
    const names = possibleFieldNames.length
      ? `; did you mean ${possibleFieldNames.map((n) => `'${n}'`).join(" or ")}?`
      : "";
    return new ConfigError("unrecognized", `'${field}' with value '${quote(value)}'${names}`);
  }

  /**
   * A field's value is not acceptable (status 4).
   *
   * @param field The field (or a path in it: `rules[2].name`).
   * @param value The value given.
   * @param reason Why not.
   */
  static invalidValue(field: string, value: unknown, reason: string): ConfigError {
    return new ConfigError(
      "invalid-value",
      `'${quote(value)}' for '${field}', reason: '${reason}'`,
    );
  }

  /**
   * The plugin failed in a way that is not the user's fault (status 5).
   *
   * @param message What happened.
   */
  static internal(message: string): ConfigError {
    return new ConfigError(
      "internal-error",
      `the plugin encountered an error, probably due to incorrect assumptions: ${message}`,
    );
  }

  /**
   * A file the configuration names does not exist (status 6).
   *
   * @param path The file.
   */
  static fileNotFound(path: string): ConfigError {
    return new ConfigError("file-not-found", path);
  }

  /**
   * Data the configuration points at cannot be parsed (status 7).
   *
   * @param source What was parsed (a file name, "configuration").
   * @param message The parser's message.
   */
  static parseError(source: string, message: string): ConfigError {
    return new ConfigError("parse-error", `${source} could not be parsed correctly: ${message}`);
  }

  /**
   * A needed environment variable is not set (status 8).
   *
   * @param name The variable.
   * @param purpose What it is for.
   */
  static envVarNotSet(name: string, purpose: string): ConfigError {
    return new ConfigError("env-var-not-set", `"${name}". Purpose: ${purpose}`);
  }

  /**
   * A needed program cannot be found or run (status 9).
   *
   * @param program The program.
   */
  static missingProgram(program: string): ConfigError {
    return new ConfigError("missing-program", program);
  }

  /**
   * Anything else (status 0).
   *
   * @param message What is wrong.
   */
  static unspecified(message: string): ConfigError {
    return new ConfigError("unspecified", message);
  }
}
