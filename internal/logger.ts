/**
 * Loggers. A plugin logs hclog JSON lines on its real stderr, which a go-plugin host (Go or
 * plugwire) turns into structured records; a host receives those records through a
 * {@link LogSink}.
 *
 * @module
 */

import { formatHclogLine, levelRank, type LogLevel, type LogRecord } from "./hclog.ts";
import { getEnv, writeRealStderr } from "./runtime.ts";

/**
 * A structured logger.
 *
 * @example Handing a named logger with fields down
 * ```ts
 * import { type Logger, pluginLogger } from "@plugwire/plugwire/plugin";
 * import assert from "node:assert/strict";
 *
 * function openStore(log: Logger, path: string): void {
 *   log.named("store").with({ path }).info("opened");
 * }
 * const lines: string[] = [];
 * openStore(pluginLogger("kv", { write: (line) => lines.push(line) }), "/tmp/kv");
 * const record = JSON.parse(lines[0]);
 * assert.equal(record["@module"], "kv.store");
 * assert.equal(record["@message"], "opened");
 * assert.equal(record.path, "/tmp/kv");
 * ```
 */
export interface Logger {
  /** Logs at trace level. */
  trace(message: string, fields?: Record<string, unknown>): void;
  /** Logs at debug level. */
  debug(message: string, fields?: Record<string, unknown>): void;
  /** Logs at info level. */
  info(message: string, fields?: Record<string, unknown>): void;
  /** Logs at warn level. */
  warn(message: string, fields?: Record<string, unknown>): void;
  /** Logs at error level. */
  error(message: string, fields?: Record<string, unknown>): void;
  /** A logger whose module name is this one's plus `.name`. */
  named(name: string): Logger;
  /** A logger that adds `fields` to every record. */
  with(fields: Record<string, unknown>): Logger;
}

/**
 * Options of {@link pluginLogger}.
 *
 * @example Warnings and errors only, written to an array
 * ```ts
 * import { pluginLogger, type PluginLoggerOptions } from "@plugwire/plugwire/plugin";
 * import assert from "node:assert/strict";
 *
 * const lines: string[] = [];
 * const options: PluginLoggerOptions = { level: "warn", write: (line) => lines.push(line) };
 * const log = pluginLogger("cache", options);
 * log.info("hit", { key: "a" });
 * log.warn("evicted", { key: "b" });
 * assert.equal(lines.length, 1);
 * ```
 */
export interface PluginLoggerOptions {
  /**
   * The lowest level written. Default: `PLUGWIRE_LOG_LEVEL` from the environment, else `trace`,
   * because the host filters by its own level, as go-plugin hosts do.
   */
  level?: LogLevel;
  /** Where lines go (default: the process's real stderr, even while output is captured). */
  write?: (line: string) => void;
}

const LEVELS: readonly LogLevel[] = ["trace", "debug", "info", "warn", "error"];

function isLevel(value: string | undefined): value is LogLevel {
  return value !== undefined && (LEVELS as readonly string[]).includes(value);
}

/**
 * A logger writing hclog JSON lines, named `module`. The plugin's `logger` is one with no name.
 *
 * @param module The module name in each line (`@module`); empty for none.
 * @param options The lowest level and where lines go.
 * @returns The logger.
 *
 * @example A logger of one's own module
 * ```ts
 * import { pluginLogger } from "@plugwire/plugwire/plugin";
 * import assert from "node:assert/strict";
 *
 * const lines: string[] = [];
 * const log = pluginLogger("cache", { write: (line) => lines.push(line) }); // default: stderr
 * log.debug("warming", { entries: 3 });
 * const { "@level": level, "@module": module, entries } = JSON.parse(lines[0]);
 * assert.deepEqual([level, module, entries], ["debug", "cache", 3]);
 * ```
 */
export function pluginLogger(module = "", options: PluginLoggerOptions = {}): Logger {
  const envLevel = getEnv("PLUGWIRE_LOG_LEVEL")?.toLowerCase();
  const level = options.level ?? (isLevel(envLevel) ? envLevel : "trace");
  const write = options.write ?? writeRealStderr;
  return makeLogger(module, {}, levelRank(level), write);
}

function makeLogger(
  module: string,
  base: Record<string, unknown>,
  min: number,
  write: (line: string) => void,
): Logger {
  const at = (level: LogLevel) => (message: string, fields?: Record<string, unknown>) => {
    if (levelRank(level) < min) return;
    write(formatHclogLine(level, message, fields ? { ...base, ...fields } : base, module));
  };
  return {
    trace: at("trace"),
    debug: at("debug"),
    info: at("info"),
    warn: at("warn"),
    error: at("error"),
    named: (name) => makeLogger(module ? `${module}.${name}` : name, base, min, write),
    with: (fields) => makeLogger(module, { ...base, ...fields }, min, write),
  };
}

/**
 * A record from a plugin's stderr, as the host receives it.
 *
 * @example Counting errors per plugin
 * ```ts
 * import type { LogSink, PluginLogRecord } from "@plugwire/plugwire/host";
 * import assert from "node:assert/strict";
 *
 * const errors = new Map<string, number>();
 * const countErrors: LogSink = (record: PluginLogRecord) => {
 *   if (record.level === "error") errors.set(record.plugin, (errors.get(record.plugin) ?? 0) + 1);
 * };
 * countErrors({ plugin: "kv", level: "error", message: "disk full", fields: {}, raw: "" });
 * assert.equal(errors.get("kv"), 1);
 * ```
 */
export interface PluginLogRecord extends LogRecord {
  /** The plugin's name (its executable's base name unless the host named it). */
  plugin: string;
}

/**
 * Receives a plugin's log records on the host side.
 *
 * @example Silencing one noisy module of a plugin
 * ```ts
 * import { consoleLogSink, type LogSink } from "@plugwire/plugwire/host";
 * import assert from "node:assert/strict";
 *
 * const show = consoleLogSink("debug");
 * const logger: LogSink = (record) => {
 *   if (record.module !== "cache") show(record);
 * };
 * // startPlugin({ ..., logger }); here, checked with records of our own:
 * const seen: string[] = [];
 * const recording: LogSink = (record) => {
 *   if (record.module !== "cache") seen.push(record.message);
 * };
 * recording({ plugin: "kv", module: "cache", level: "debug", message: "hit", fields: {}, raw: "" });
 * recording({ plugin: "kv", module: "store", level: "debug", message: "put", fields: {}, raw: "" });
 * assert.deepEqual(seen, ["put"]);
 * logger({ plugin: "kv", module: "cache", level: "debug", message: "hit", fields: {}, raw: "" });
 * ```
 */
export type LogSink = (record: PluginLogRecord) => void;

/**
 * The host's default sink: records at `minLevel` or above, as hclog-style text lines on the
 * host's stderr (`2026-01-02T15:04:05.000Z [INFO]  kv: message: key=value`).
 *
 * @param minLevel The lowest level shown.
 * @returns A sink, for the `logger` option of `startPlugin`.
 *
 * @example Showing a plugin's debug records
 * ```ts
 * import { consoleLogSink } from "@plugwire/plugwire/host";
 *
 * const logger = consoleLogSink("debug"); // startPlugin({ ..., logger })
 * logger({ plugin: "kv", level: "debug", message: "get", fields: { key: "a" }, raw: "" });
 * // stderr: 2026-01-02T15:04:05.000Z [DEBUG] kv: get: key=a
 * ```
 */
export function consoleLogSink(minLevel: LogLevel = "info"): LogSink {
  const min = levelRank(minLevel);
  return (record) => {
    if (levelRank(record.level) < min) return;
    const when = (record.timestamp ?? new Date()).toISOString();
    const tag = `[${record.level.toUpperCase()}]`.padEnd(7);
    const name = record.module ? `${record.plugin}.${record.module}` : record.plugin;
    const kv = Object.entries(record.fields)
      .map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`)
      .join(" ");
    writeRealStderr(`${when} ${tag} ${name}: ${record.message}${kv ? ": " + kv : ""}\n`);
  };
}
