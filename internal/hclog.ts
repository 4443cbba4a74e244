/**
 * go-hclog's JSON log lines, written by a plugin on stderr and read back by a host.
 *
 * A go-plugin host reads the plugin's stderr line by line: an hclog JSON object keeps its level,
 * message and key/values; any other line is logged by its `[LEVEL]` prefix, or at debug. Go's host
 * panics on some malformed lines; this parser never throws.
 *
 * @module
 */

/**
 * An hclog level, lowest first.
 *
 * @example Showing a plugin's logs from debug up
 * ```ts
 * import { consoleLogSink, type LogLevel } from "@plugwire/plugwire/host";
 *
 * import assert from "node:assert/strict";
 *
 * const level: LogLevel = "debug";
 * const logger = consoleLogSink(level); // startPlugin({ ..., logger })
 * assert.equal(typeof logger, "function");
 * ```
 */
export type LogLevel = "trace" | "debug" | "info" | "warn" | "error";

/**
 * A log record, as the host receives it from a plugin (or as a plugin emits it).
 *
 * @example Formatting a record as one line of text
 * ```ts
 * import type { LogRecord } from "@plugwire/plugwire/host";
 * import assert from "node:assert/strict";
 *
 * function format({ level, module, message, fields }: LogRecord): string {
 *   const pairs = Object.entries(fields).map(([k, v]) => `${k}=${JSON.stringify(v)}`);
 *   return [level.toUpperCase(), module ?? "-", message, ...pairs].join(" ");
 * }
 * // What a plugin's `logger.named("store").info("opened", { files: 2 })` becomes:
 * const record: LogRecord = {
 *   level: "info",
 *   message: "opened",
 *   module: "store",
 *   fields: { files: 2 },
 *   raw: `{"@level":"info","@message":"opened","@module":"store","files":2}`,
 * };
 * assert.equal(format(record), "INFO store opened files=2");
 * ```
 */
export interface LogRecord {
  /** The level: the hclog @level, the [LEVEL] prefix, error in a panic, else debug. */
  level: LogLevel;
  /** The hclog @message, the text after a [LEVEL] prefix, or the whole line. */
  message: string;
  /** When the plugin wrote it, if the line carried a valid timestamp. */
  timestamp?: Date;
  /** hclog @module, if any. */
  module?: string;
  /** Every other key/value of the JSON object (including @caller etc.), as parsed JSON values. */
  fields: Record<string, unknown>;
  /** The raw line as the plugin wrote it (without the line terminator). */
  raw: string;
}

const LEVELS: readonly LogLevel[] = ["trace", "debug", "info", "warn", "error"];

/**
 * The order of a level: trace 0, debug 1, info 2, warn 3, error 4 (-1 for anything else).
 *
 * @example
 * ```ts
 * import { levelRank } from "./hclog.ts";
 * import assert from "node:assert/strict";
 *
 * const shownAtInfo = (level: "trace" | "warn") => levelRank(level) >= levelRank("info");
 * assert.equal(shownAtInfo("warn"), true);
 * assert.equal(shownAtInfo("trace"), false);
 * ```
 */
export function levelRank(level: LogLevel): number {
  return LEVELS.indexOf(level);
}

/**
 * Formats a Date as hclog's @timestamp: UTC with exactly 6 fractional digits and `Z`, the only
 * shape go-plugin's host accepts (Go layout `2006-01-02T15:04:05.000000Z07:00`).
 *
 * @param date the instant, at millisecond precision; an invalid Date throws a RangeError.
 * @param micros microseconds within that millisecond (0-999), default 0.
 * @example
 * ```ts
 * import { formatHclogTimestamp } from "./hclog.ts";
 * import assert from "node:assert/strict";
 *
 * const stamp = formatHclogTimestamp(new Date("2026-01-02T15:04:05.123Z"), 456);
 * assert.equal(stamp, "2026-01-02T15:04:05.123456Z");
 * ```
 */
export function formatHclogTimestamp(date: Date, micros = 0): string {
  const us = Number.isFinite(micros) ? Math.min(999, Math.max(0, Math.trunc(micros))) : 0;
  // toISOString always ends in ".mmmZ": append the microsecond digits before the Z.
  return date.toISOString().slice(0, -1) + String(us).padStart(3, "0") + "Z";
}

/** The current time with real microseconds when the monotonic clock agrees with the wall clock. */
function nowTimestamp(): string {
  const wall = Date.now();
  const precise = performance.timeOrigin + performance.now();
  // The two clocks drift apart (suspend, NTP): only trust the sub-millisecond digits of the
  // monotonic clock when it names the same millisecond, otherwise pad with zeros.
  const micros = Math.floor(precise) === wall ? Math.floor((precise - wall) * 1000) : 0;
  return formatHclogTimestamp(new Date(wall), micros);
}

const RESERVED = new Set(["@level", "@message", "@module", "@timestamp"]);

/**
 * Formats one hclog JSON line (ending in "\n"), as go-hclog's JSON format writes it: "@level",
 * "@message", "@module" (only if non-empty), "@timestamp", then the extra fields in their order.
 * Never throws: values JSON cannot encode are converted (Error -> its message, bigint -> decimal
 * string, undefined and functions -> null, a cycle -> "[Circular]"), extra fields named like the
 * four hclog keys are dropped (they would corrupt the record), and an invalid `now` falls back to
 * the current time.
 *
 * @example
 * ```ts
 * import { formatHclogLine } from "./hclog.ts";
 * import assert from "node:assert/strict";
 *
 * const line = formatHclogLine("info", "started", { port: 1234 }, "plugin.kv");
 * // {"@level":"info","@message":"started","@module":"plugin.kv","@timestamp":"…","port":1234}\n
 * assert.ok(line.startsWith('{"@level":"info","@message":"started","@module":"plugin.kv"'));
 * assert.ok(line.endsWith('"port":1234}\n'));
 * ```
 */
export function formatHclogLine(
  level: LogLevel,
  message: string,
  fields: Record<string, unknown> = {},
  module?: string,
  now?: Date,
): string {
  const timestamp = now && !Number.isNaN(now.getTime())
    ? formatHclogTimestamp(now)
    : nowTimestamp();
  const entries: [string, unknown][] = [["@level", level], ["@message", String(message)]];
  if (module) entries.push(["@module", module]);
  entries.push(["@timestamp", timestamp]);
  for (const [key, value] of safeEntries(fields)) {
    if (!RESERVED.has(key)) entries.push([key, toJsonValue(value, new Set())]);
  }
  // Built as text, not as an object, which would move integer-like keys ("2") ahead of "@level":
  // the four hclog keys always lead the line, whatever the field names, so it reads well.
  const body = entries.map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v)}`).join(",");
  return `{${body}}\n`;
}

const UNSERIALIZABLE = "[unserializable]";

/** Own enumerable entries; a throwing getter or Proxy trap costs only the values it guards. */
function safeEntries(value: object): [string, unknown][] {
  let keys: string[];
  try {
    keys = Object.keys(value);
  } catch {
    return [];
  }
  return keys.map((key) => {
    try {
      return [key, (value as Record<string, unknown>)[key]];
    } catch {
      return [key, UNSERIALIZABLE];
    }
  });
}

/**
 * Converts any value into one JSON.stringify encodes without throwing or silently dropping it,
 * close to what hclog does in Go: Error -> its message (Go logs err.Error()), bigint -> decimal
 * string, NaN/±Infinity and symbols -> their string, undefined and functions -> null, Map -> object,
 * Set -> array, a reference cycle -> "[Circular]". `ancestors` holds the objects being converted
 * above this one, so a value shared by two branches is not mistaken for a cycle.
 */
function toJsonValue(value: unknown, ancestors: Set<object>): unknown {
  try {
    switch (typeof value) {
      case "string":
      case "boolean":
        return value;
      case "number":
        return Number.isFinite(value) ? value : String(value);
      case "bigint":
      case "symbol":
        return value.toString();
      case "undefined":
      case "function":
        return null;
    }
    if (value === null) return null;
    const obj = value as object;
    if (obj instanceof Error) return obj.message;
    if (ancestors.has(obj)) return "[Circular]";
    ancestors.add(obj);
    try {
      const toJSON = (obj as { toJSON?: unknown }).toJSON;
      if (typeof toJSON === "function") return toJsonValue(toJSON.call(obj), ancestors);
      if (obj instanceof Map) return toJsonValue(Object.fromEntries(obj), ancestors);
      if (obj instanceof Set) return toJsonValue([...obj], ancestors);
      if (Array.isArray(obj)) return obj.map((v) => toJsonValue(v, ancestors));
      // fromEntries defines own properties, so a "__proto__" key stays data.
      return Object.fromEntries(safeEntries(obj).map(([k, v]) => [k, toJsonValue(v, ancestors)]));
    } finally {
      ancestors.delete(obj);
    }
  } catch {
    // A throwing toJSON or Proxy trap: keep the log line, lose only this value.
    return UNSERIALIZABLE;
  }
}

// go-plugin's host parses @timestamp with Go layout "2006-01-02T15:04:05.000000Z07:00".
const TIMESTAMP =
  /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})\.(\d{6})(?:Z|([+-])(\d{2}):(\d{2}))$/;

/** Parses an hclog @timestamp as Go's time.Parse would accept it, else undefined. */
function parseHclogTimestamp(text: string): Date | undefined {
  const m = TIMESTAMP.exec(text);
  if (!m) return undefined;
  const [year, month, day, hour, min, sec, frac, oh, om] = [1, 2, 3, 4, 5, 6, 7, 9, 10].map((i) =>
    Number(m[i] ?? 0)
  );
  // setUTCFullYear, unlike Date.UTC, does not map years 0-99 to 1900-1999.
  const d = new Date(0);
  d.setUTCFullYear(year, month - 1, day);
  d.setUTCHours(hour, min, sec, Math.floor(frac / 1000));
  // Go's time.Parse rejects out-of-range fields (month 13, Feb 30, 24:00, leap second 60) but
  // allows zone offsets up to +24:60 (checked against Go 1.26).
  if (
    d.getUTCFullYear() !== year || d.getUTCMonth() !== month - 1 || d.getUTCDate() !== day ||
    hour > 23 || min > 59 || sec > 59 || oh > 24 || om > 60
  ) return undefined;
  const offset = (m[8] === "-" ? -1 : 1) * (oh * 60 + om) * 60_000;
  return new Date(d.getTime() - offset);
}

const PREFIXES: readonly [string, LogLevel][] = [
  ["[TRACE]", "trace"],
  ["[DEBUG]", "debug"],
  ["[INFO]", "info"],
  ["[WARN]", "warn"],
  ["[ERROR]", "error"],
];

/**
 * A stateful parser of a plugin's stderr, one line at a time, with go-plugin's semantics and
 * without its crashes. State: once a line starts with `panic: ` or `fatal error: `, every later
 * non-hclog line (the stack trace) is at error level, as in go-plugin's host. Use one parser per
 * plugin process.
 *
 * @example
 * ```ts
 * import { StderrLineParser } from "./hclog.ts";
 * import assert from "node:assert/strict";
 *
 * const parser = new StderrLineParser();
 * assert.equal(parser.parse("[WARN] disk almost full").level, "warn");
 * assert.deepEqual(parser.parse(`{"@level":"info","@message":"hi","port":1}`).fields, { port: 1 });
 * assert.equal(parser.parse("panic: boom").level, "error");
 * assert.equal(parser.parse("main.main()").level, "error"); // the stack trace
 * ```
 */
export class StderrLineParser {
  #panicking = false;

  /**
   * Returns the record for a line (its terminator, "\n" or "\r\n", may be included or not).
   *
   * @example
   * ```ts
   * import { StderrLineParser } from "./hclog.ts";
   * import assert from "node:assert/strict";
   *
   * const record = new StderrLineParser().parse("12345\r\n");
   * assert.equal(record.level, "debug");
   * assert.equal(record.raw, "12345");
   * ```
   */
  parse(line: string): LogRecord {
    const raw = line.replace(/\r?\n?$/, "");
    return parseHclogJson(raw) ?? this.#parsePlain(raw);
  }

  #parsePlain(raw: string): LogRecord {
    let level: LogLevel = "debug";
    let message = raw;
    const prefix = PREFIXES.find(([p]) => raw.startsWith(p));
    if (prefix) {
      level = prefix[1];
      message = raw.slice(prefix[0].length).trim();
    } else if (raw.startsWith("panic: ") || raw.startsWith("fatal error: ")) {
      this.#panicking = true;
    }
    if (this.#panicking) level = "error";
    return { level, message, fields: {}, raw };
  }
}

/**
 * The record for an hclog JSON line, or undefined when go-plugin would treat the line as plain
 * text: not a JSON object, a malformed @timestamp, or (our choice where Go's host panics on its
 * type assertion) a non-string @level or @timestamp. A non-string @message is kept as its JSON
 * text, since the level and time still make the line a valid record. A non-string @module is
 * no module name, so it stays in `fields`.
 */
function parseHclogJson(raw: string): LogRecord | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    return undefined;
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) return undefined;
  const { "@level": lvl, "@message": msg, "@timestamp": ts, "@module": mod, ...rest } =
    parsed as Record<string, unknown>;

  if (lvl !== undefined && typeof lvl !== "string") return undefined;
  let timestamp: Date | undefined;
  if (ts !== undefined) {
    if (typeof ts !== "string") return undefined;
    timestamp = parseHclogTimestamp(ts);
    if (!timestamp) return undefined;
  }
  // Like hclog.LevelFromString: trimmed, case-insensitive; anything else is not hclog output,
  // so go-plugin logs the whole line verbatim at debug.
  const level = LEVELS.find((l) => l === lvl?.trim().toLowerCase());
  if (!level) return { level: "debug", message: raw, fields: {}, raw };

  const record: LogRecord = {
    level,
    message: msg === undefined ? "" : typeof msg === "string" ? msg : JSON.stringify(msg),
    fields: rest,
    raw,
  };
  if (timestamp) record.timestamp = timestamp;
  if (typeof mod === "string") record.module = mod;
  else if (mod !== undefined) record.fields = { "@module": mod, ...rest };
  return record;
}
