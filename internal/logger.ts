/**
 * Loggers. A plugin logs hclog JSON lines on its real stderr, which a go-plugin host (Go or
 * plugwire) turns into structured records; a host receives those records through a
 * {@link LogSink}.
 *
 * @module
 */

import { formatHclogLine, levelRank, type LogLevel, type LogRecord } from "./hclog.ts";
import { getEnv, writeRealStderr } from "./runtime.ts";

/** A structured logger. */
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

/** Options of {@link pluginLogger}. */
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

/** A logger writing hclog JSON lines, named `module`. */
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

/** A record from a plugin's stderr, as the host receives it. */
export interface PluginLogRecord extends LogRecord {
  /** The plugin's name (its executable's base name unless the host named it). */
  plugin: string;
}

/** Receives a plugin's log records on the host side. */
export type LogSink = (record: PluginLogRecord) => void;

/**
 * The host's default sink: records at `minLevel` or above, as hclog-style text lines on the
 * host's stderr (`2026-01-02T15:04:05.000Z [INFO]  kv: message: key=value`).
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
