/**
 * Log lines in the shape Hipcheck core reads from a plugin's stderr:
 * `{"level":"ERROR","fields":{"message":"…"},"target":"<plugin name>"}`, one per line. Levels
 * are upper case (core drops `WARNING` and `CRITICAL`), and the line is real JSON (core drops
 * lines that do not parse, such as the Python SDK's for messages with quotes or newlines).
 *
 * @module
 */

import { writeRealStderr } from "../runtime.ts";

/**
 * The levels core passes with `--log-level`, lowest first; `off` writes nothing.
 *
 * @example
 * ```ts
 * import type { HipcheckLogLevel } from "@plugwire/plugwire/hipcheck";
 * import assert from "node:assert/strict";
 *
 * const level: HipcheckLogLevel = "warn";
 * assert.ok(["off", "error", "warn", "info", "debug", "trace"].includes(level));
 * ```
 */
export type HipcheckLogLevel = "off" | "error" | "warn" | "info" | "debug" | "trace";

const RANK: Record<HipcheckLogLevel, number> = {
  off: 0,
  error: 1,
  warn: 2,
  info: 3,
  debug: 4,
  trace: 5,
};

/** Whether `value` names a level (any case). */
export function parseLogLevel(value: string | undefined): HipcheckLogLevel | undefined {
  const lower = value?.toLowerCase();
  return lower !== undefined && lower in RANK ? lower as HipcheckLogLevel : undefined;
}

/**
 * A plugin's log, in Hipcheck core's format. `fields` go next to `message` in the line's
 * `fields` object.
 *
 * @example Logging from a query handler
 * ```ts
 * import { definePlugin, mockEngine, query } from "@plugwire/plugwire/hipcheck";
 * import { z } from "zod";
 * import assert from "node:assert/strict";
 *
 * const plugin = definePlugin({
 *   publisher: "demo",
 *   name: "echo",
 *   queries: {
 *     echo: query({ key: z.string(), output: z.string() }, (engine, key) => {
 *       engine.log.info("echoing", { length: key.length });
 *       return key;
 *     }),
 *   },
 * });
 * const lines: string[] = [];
 * const engine = mockEngine({}, { log: (line) => lines.push(line) });
 * assert.equal(await plugin.queries.echo.handler(engine, "hi"), "hi");
 * assert.deepEqual(JSON.parse(lines[0]), {
 *   level: "INFO",
 *   fields: { message: "echoing", length: 2 },
 *   target: "mock",
 * });
 * ```
 */
export interface HipcheckLogger {
  /** Logs at ERROR: the only level Hipcheck core shows by default. */
  error(message: string, fields?: Record<string, unknown>): void;
  /** Logs at WARN. */
  warn(message: string, fields?: Record<string, unknown>): void;
  /** Logs at INFO. */
  info(message: string, fields?: Record<string, unknown>): void;
  /** Logs at DEBUG. */
  debug(message: string, fields?: Record<string, unknown>): void;
  /** Logs at TRACE. */
  trace(message: string, fields?: Record<string, unknown>): void;
}

/** One line of Hipcheck's plugin log format (with its newline). */
export function formatHipcheckLogLine(
  level: Exclude<HipcheckLogLevel, "off">,
  target: string,
  message: string,
  fields: Record<string, unknown> = {},
): string {
  let fieldsJson: string;
  try {
    fieldsJson = JSON.stringify({ ...fields, message });
  } catch {
    // A field JSON cannot carry (a cycle, a bigint) must not lose the message.
    fieldsJson = JSON.stringify({ message });
  }
  return `{"level":"${level.toUpperCase()}","fields":${fieldsJson},"target":${
    JSON.stringify(target)
  }}\n`;
}

/**
 * A logger writing Hipcheck lines at `level` and above, for target `target` (core shows it as
 * `plugin::<target>`), to `write` (default: the process's stderr).
 */
export function hipcheckLogger(
  target: string,
  level: HipcheckLogLevel,
  write: (line: string) => void = writeRealStderr,
): HipcheckLogger {
  const at =
    (lvl: Exclude<HipcheckLogLevel, "off">) =>
    (message: string, fields?: Record<string, unknown>) => {
      if (RANK[lvl] <= RANK[level]) write(formatHipcheckLogLine(lvl, target, message, fields));
    };
  return {
    error: at("error"),
    warn: at("warn"),
    info: at("info"),
    debug: at("debug"),
    trace: at("trace"),
  };
}
