import assert from "node:assert/strict";
import {
  formatHclogLine,
  formatHclogTimestamp,
  levelRank,
  type LogLevel,
  StderrLineParser,
} from "../internal/hclog.ts";

const parse = (line: string) => new StderrLineParser().parse(line);
const HCLOG_TIMESTAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/;

Deno.test("levelRank orders trace..error", () => {
  const levels: LogLevel[] = ["trace", "debug", "info", "warn", "error"];
  assert.deepEqual(levels.map(levelRank), [0, 1, 2, 3, 4]);
});

Deno.test("formatHclogTimestamp writes exactly 6 fractional digits and Z", () => {
  const date = new Date("2026-01-02T15:04:05.123Z");
  assert.equal(formatHclogTimestamp(date), "2026-01-02T15:04:05.123000Z");
  assert.equal(formatHclogTimestamp(date, 7), "2026-01-02T15:04:05.123007Z");
  assert.equal(formatHclogTimestamp(date, 5000), "2026-01-02T15:04:05.123999Z");
  assert.match(formatHclogTimestamp(new Date(0)), HCLOG_TIMESTAMP);
});

Deno.test("formatHclogLine: key order, one line, current time has 6 digits", () => {
  const line = formatHclogLine("warn", "hi", { b: 1, "2": "two", a: "x" }, "plugin.kv");
  assert.ok(line.endsWith("}\n"));
  assert.equal(line.indexOf("\n"), line.length - 1);
  const obj = JSON.parse(line);
  assert.match(obj["@timestamp"], HCLOG_TIMESTAMP);
  const keys = [...line.matchAll(/"([^"]+)":/g)].map((m) => m[1]);
  assert.deepEqual(keys, ["@level", "@message", "@module", "@timestamp", "2", "b", "a"]);
  assert.ok(!formatHclogLine("info", "no module").includes("@module"));
});

Deno.test("formatHclogLine: values JSON cannot encode do not throw", () => {
  const cycle: Record<string, unknown> = { name: "c" };
  cycle.self = cycle;
  const shared = { n: 1 };
  const hostile = new Proxy({}, {
    ownKeys() {
      throw new Error("no");
    },
  });
  const line = formatHclogLine(
    "error",
    "bad values",
    {
      big: 12345678901234567890n,
      err: new Error("boom"),
      undef: undefined,
      fn: () => 1,
      sym: Symbol("s"),
      nan: NaN,
      cycle,
      twice: [shared, shared],
      map: new Map([["k", 1n]]),
      set: new Set([1, 2]),
      date: new Date("2026-01-02T00:00:00Z"),
      getter: {
        get x() {
          throw new Error("getter");
        },
      },
      hostile,
      badJson: {
        toJSON() {
          throw new Error("toJSON");
        },
      },
      "@level": "trace",
    },
    undefined,
    new Date("2026-01-02T15:04:05.123Z"),
  );
  const obj = JSON.parse(line);
  assert.equal(obj["@level"], "error");
  assert.equal(obj["@timestamp"], "2026-01-02T15:04:05.123000Z");
  assert.equal(obj.big, "12345678901234567890");
  assert.equal(obj.err, "boom");
  assert.equal(obj.undef, null);
  assert.equal(obj.fn, null);
  assert.equal(obj.sym, "Symbol(s)");
  assert.equal(obj.nan, "NaN");
  assert.deepEqual(obj.cycle, { name: "c", self: "[Circular]" });
  assert.deepEqual(obj.twice, [{ n: 1 }, { n: 1 }]);
  assert.deepEqual(obj.map, { k: "1" });
  assert.deepEqual(obj.set, [1, 2]);
  assert.equal(obj.date, "2026-01-02T00:00:00.000Z");
  assert.deepEqual(obj.getter, { x: "[unserializable]" });
  assert.equal(obj.badJson, "[unserializable]");
  assert.deepEqual(obj.hostile, {});
  // An invalid `now` falls back to the clock instead of throwing.
  assert.match(
    JSON.parse(formatHclogLine("info", "x", {}, "", new Date(NaN)))["@timestamp"],
    HCLOG_TIMESTAMP,
  );
});

Deno.test("round trip: format then parse", () => {
  const now = new Date("2026-03-04T05:06:07.089Z");
  const fields = { foo: "bar", n: 12, nested: { a: [1, "b", null] }, "@caller": "main.go:10" };
  const line = formatHclogLine("trace", "hello world", fields, "plugin.kv", now);
  const record = parse(line);
  assert.deepEqual(record, {
    level: "trace",
    message: "hello world",
    timestamp: now,
    module: "plugin.kv",
    fields,
    raw: line.slice(0, -1),
  });
  for (const level of ["trace", "debug", "info", "warn", "error"] as const) {
    assert.equal(parse(formatHclogLine(level, "m")).level, level);
  }
});

Deno.test("go-plugin TestClient_StderrJSON: non-object JSON is a raw debug line", () => {
  for (const line of ['["HELLO"]', "12345", '{"a":1}', '"str"', "null", "{not json"]) {
    const record = parse(line);
    assert.deepEqual(record, { level: "debug", message: line, fields: {}, raw: line });
  }
});

Deno.test("plain lines: [LEVEL] prefixes, else debug", () => {
  assert.deepEqual(parse("[WARN] hello"), {
    level: "warn",
    message: "hello",
    fields: {},
    raw: "[WARN] hello",
  });
  assert.equal(parse("[TRACE] t").level, "trace");
  assert.equal(parse("[DEBUG] d").level, "debug");
  assert.equal(parse("[INFO]  i  ").message, "i");
  assert.equal(parse("[ERROR] e").level, "error");
  assert.equal(parse("[warn] lower case is not a prefix").level, "debug");
  assert.equal(parse(" [WARN] indented").level, "debug");
  assert.equal(parse("just text").message, "just text");
  assert.deepEqual(parse(""), { level: "debug", message: "", fields: {}, raw: "" });
});

Deno.test("line terminators: trailing \\r and \\n are stripped", () => {
  assert.equal(parse("[INFO] x\r").raw, "[INFO] x");
  assert.equal(parse("[INFO] x\r\n").raw, "[INFO] x");
  const json = '{"@level":"info","@message":"m"}';
  assert.deepEqual(parse(json + "\r"), { level: "info", message: "m", fields: {}, raw: json });
});

Deno.test("panic: the line and every later non-JSON line are error level", () => {
  const parser = new StderrLineParser();
  assert.equal(parser.parse("[INFO] before").level, "info");
  const lines = ["panic: boom", "", "goroutine 1 [running]:", "main.main()", "[WARN] still"];
  for (const line of lines) assert.equal(parser.parse(line).level, "error", line);
  assert.equal(parser.parse("panic: boom").message, "panic: boom");
  // hclog JSON keeps its own level, even after a panic.
  assert.equal(parser.parse('{"@level":"info","@message":"m"}').level, "info");
  assert.equal(parser.parse("12345").level, "error");

  const fatal = new StderrLineParser();
  assert.equal(fatal.parse("fatal error: all goroutines are asleep - deadlock!").level, "error");
  assert.equal(fatal.parse("goroutine 1 [chan receive]:").level, "error");
  // State is per parser.
  assert.equal(new StderrLineParser().parse("main.main()").level, "debug");
});

Deno.test("hclog JSON: @level is case-insensitive; unknown or missing -> raw debug", () => {
  const upper = parse('{"@level":"INFO","@message":"hi"}');
  assert.equal(upper.level, "info");
  assert.equal(upper.message, "hi");
  assert.equal(parse('{"@level":" Warn ","@message":"hi"}').level, "warn");
  for (const line of ['{"@level":"fatal","@message":"hi"}', '{"@message":"no level"}']) {
    assert.deepEqual(parse(line), { level: "debug", message: line, fields: {}, raw: line });
  }
});

Deno.test("hclog JSON: @timestamp must have exactly 6 fractional digits", () => {
  const ok = parse(
    '{"@level":"info","@message":"m","@timestamp":"2026-01-02T15:04:05.123456+02:00"}',
  );
  assert.equal(ok.timestamp?.toISOString(), "2026-01-02T13:04:05.123Z");
  assert.equal(ok.message, "m");

  const js = JSON.stringify({ "@level": "info", "@message": "m", "@timestamp": new Date() });
  assert.deepEqual(parse(js), { level: "debug", message: js, fields: {}, raw: js });
  for (
    const ts of [
      "2026-01-02T15:04:05.123456789Z",
      "2026-01-02T15:04:05Z",
      "2026-02-30T15:04:05.123456Z",
      "2026-01-02T24:00:00.000000Z",
      "2026-01-02 15:04:05.123456Z",
      "2026-01-02T23:59:60.000000Z",
      "2026-01-02T15:04:05.123456+25:00",
      "2026-01-02T15:04:05.123456+00:61",
      "2026-01-02T15:04:05.123456z",
    ]
  ) {
    const line = JSON.stringify({ "@level": "warn", "@message": "m", "@timestamp": ts });
    assert.equal(parse(line).message, line, ts);
  }
  // Edges Go's time.Parse accepts (checked against Go 1.26).
  const at = (ts: string) =>
    parse(JSON.stringify({ "@level": "info", "@timestamp": ts })).timestamp?.toISOString();
  assert.equal(at("0099-12-31T00:00:00.000000-00:00"), "0099-12-31T00:00:00.000Z");
  assert.equal(at("2026-01-02T15:04:05.123456+24:60"), "2026-01-01T14:04:05.123Z");
  // A malformed timestamp makes the line plain text, so a [LEVEL]-less line is debug ...
  assert.equal(parse('{"@level":"warn","@timestamp":"bad"}').level, "debug");
  // ... and a missing one is fine.
  assert.equal(parse('{"@level":"warn","@message":"m"}').timestamp, undefined);
});

Deno.test("hclog JSON: non-string @message/@level/@timestamp do not throw", () => {
  assert.equal(parse('{"@level":"info","@message":{"a":1}}').message, '{"a":1}');
  assert.equal(parse('{"@level":"info","@message":42}').message, "42");
  assert.equal(parse('{"@level":"info","@message":null}').message, "null");
  for (
    const line of [
      '{"@level":3,"@message":"m"}',
      '{"@level":null,"@message":"m"}',
      '{"@level":"info","@message":"m","@timestamp":1700000000}',
    ]
  ) {
    assert.deepEqual(parse(line), { level: "debug", message: line, fields: {}, raw: line });
  }
  const parser = new StderrLineParser();
  parser.parse("panic: x");
  assert.equal(parser.parse('{"@level":3}').level, "error");
});

Deno.test("hclog JSON: extra fields (go-plugin TestClient_logger) and @module", () => {
  const line = JSON.stringify({
    "@level": "info",
    "@message": "test",
    "@module": "plugin.test",
    "@timestamp": "2026-01-02T15:04:05.000001Z",
    "@caller": "/src/main.go:12",
    foo: "bar",
    count: 12,
    nested: { list: [1, { deep: true }], n: null },
    __proto__x: 1,
  });
  const record = parse(line);
  assert.equal(record.module, "plugin.test");
  assert.equal(record.timestamp?.toISOString(), "2026-01-02T15:04:05.000Z");
  assert.deepEqual(record.fields, {
    "@caller": "/src/main.go:12",
    foo: "bar",
    count: 12,
    nested: { list: [1, { deep: true }], n: null },
    __proto__x: 1,
  });
  assert.deepEqual(parse('{"@level":"info","foo":12}').fields, { foo: 12 });
  // A "__proto__" key is data, not a prototype.
  const proto = parse('{"@level":"info","__proto__":{"polluted":1}}').fields;
  assert.deepEqual(Object.keys(proto), ["__proto__"]);
  assert.equal(Object.getPrototypeOf(proto), Object.prototype);
  // A non-string @module is no module name: it stays a field.
  const odd = parse('{"@level":"info","@module":7}');
  assert.equal(odd.module, undefined);
  assert.deepEqual(odd.fields, { "@module": 7 });
});
