/**
 * A plugin's stderr on the host, against real processes: hclog JSON lines and `[LEVEL]` lines
 * become records for the `logger` sink, every raw line reaches the `stderr` sink byte-exact,
 * malformed lines do not hurt the host, the default sink prints hclog-style text, and a plugin
 * flooding its real stdout after the handshake does not stall.
 */

import assert from "node:assert/strict";
import { type PluginLogRecord, startPlugin } from "../host.ts";
import { KV } from "../gen/kv/kv_pb.ts";
import { eventually, helperPlugin, repoUrl, runDenoEval, testNoLeftovers } from "./_util.ts";

const encode = (s: string) => new TextEncoder().encode(s);
const decode = (b: Uint8Array) => new TextDecoder().decode(b);

const BAD_TYPES_LINE = '{"@level":7,"@message":["not","a","string"],"@timestamp":1}';
const NUMBER_MESSAGE_LINE =
  '{"@level":"info","@message":12345,"@timestamp":"2026-01-02T15:04:05.123456Z"}';

/** The hclog warning both stderr modes write first, named "helper" by the host. */
function assertHelperWarning(record: PluginLogRecord): void {
  assert.equal(record.level, "warn");
  assert.equal(record.message, "json warning");
  assert.equal(record.module, "helper");
  assert.equal(record.plugin, "helper");
  assert.deepEqual(record.fields, { answer: 42, nested: { a: 1 } });
  assert.ok(record.timestamp instanceof Date, "no timestamp");
  assert.ok(Math.abs(Date.now() - record.timestamp.getTime()) < 60_000, `${record.timestamp}`);
}

/** The three plain and malformed lines, as records. */
function assertOtherLines(records: PluginLogRecord[]): void {
  assert.deepEqual(records[0], {
    level: "error",
    message: "a plain error line",
    fields: {},
    raw: "[ERROR] a plain error line",
    plugin: "helper",
  });
  // A non-string @level is no hclog line (Go's host would panic): the whole line, at debug.
  assert.deepEqual(records[1], {
    level: "debug",
    message: BAD_TYPES_LINE,
    fields: {},
    raw: BAD_TYPES_LINE,
    plugin: "helper",
  });
  // A non-string @message keeps its level and time, with the message as JSON text.
  assert.deepEqual(records[2], {
    level: "info",
    message: "12345",
    fields: {},
    raw: NUMBER_MESSAGE_LINE,
    timestamp: new Date("2026-01-02T15:04:05.123Z"),
    plugin: "helper",
  });
}

Deno.test("stderr lines become records for `logger`, and reach `stderr` byte-exact", async () => {
  const records: PluginLogRecord[] = [];
  const lines: string[] = [];
  const plugin = await startPlugin({
    ...helperPlugin("stderr-real"),
    plugins: { kv: KV },
    name: "helper",
    logger: (record) => records.push(record),
    stderr: (line) => lines.push(line),
  });
  try {
    await eventually("the four stderr lines", () => records.length >= 4);
    assertHelperWarning(records[0]);
    assertOtherLines(records.slice(1, 4));
    assert.deepEqual(lines.slice(0, 4), [
      records[0].raw + "\n",
      "[ERROR] a plain error line\n",
      BAD_TYPES_LINE + "\n",
      NUMBER_MESSAGE_LINE + "\n",
    ]);

    // The malformed lines did not hurt the host: calls work, and later logs still arrive.
    const kv = plugin.dispense("kv");
    await kv.put({ key: "k", value: encode("v") });
    assert.equal(decode((await kv.get({ key: "k" })).value), "v");
    await eventually("the put log", () => records.some((r) => r.message === "put"));
    const put = records.find((r) => r.message === "put")!;
    assert.equal(put.level, "info");
    assert.deepEqual(put.fields, { key: "k" });
    assert.equal(put.plugin, "helper");
    // One raw line per record, each with its "\n".
    assert.deepEqual(lines, records.map((r) => r.raw + "\n"));
  } finally {
    await plugin.kill();
  }
  assert.deepEqual(await plugin.exited, { code: 0, signal: null });
});

Deno.test("stderr-json: the plugin's hclog warning is a record named by `name`", async () => {
  const records: PluginLogRecord[] = [];
  const plugin = await startPlugin({
    ...helperPlugin("stderr-json"),
    plugins: { kv: KV },
    name: "helper",
    logger: (record) => records.push(record),
  });
  try {
    await eventually("the hclog warning", () => records.length >= 1);
    assertHelperWarning(records[0]);
  } finally {
    await plugin.kill();
  }
});

Deno.test({
  name: "stderr-json: lines written with console.error before serve() reach `logger`",
  // Regression: the output capture once held stderr from module load, sending console.error
  // before serve() to GRPCStdio (syncStderr, discarded by default) instead of the real stderr
  // that go-plugin's host logs (a Go plugin swaps os.Stderr only after its handshake).
  async fn() {
    const records: PluginLogRecord[] = [];
    const plugin = await startPlugin({
      ...helperPlugin("stderr-json"),
      plugins: { kv: KV },
      name: "helper",
      logger: (record) => records.push(record),
    });
    try {
      await eventually("the four stderr lines", () => records.length >= 4);
      assertHelperWarning(records[0]);
      assertOtherLines(records.slice(1, 4));
    } finally {
      await plugin.kill();
    }
  },
});

Deno.test("consoleLogSink: hclog-style text on stderr, filtered by level", async () => {
  const out = await runDenoEval(`
    import { consoleLogSink } from ${JSON.stringify(repoUrl("host.ts"))};
    const record = {
      level: "warn",
      message: "disk almost full",
      fields: { free: 42, path: "/var", nested: { a: 1 } },
      raw: "",
      plugin: "kv",
      module: "store",
      timestamp: new Date("2026-01-02T15:04:05.123Z"),
    };
    consoleLogSink("info")(record);
    consoleLogSink("info")({ ...record, level: "debug", message: "hidden" });
    consoleLogSink("error")({ ...record, message: "below error" });
    consoleLogSink("debug")({ level: "debug", message: "shown", fields: {}, raw: "", plugin: "kv" });
    consoleLogSink()({ level: "error", message: "boom", fields: {}, raw: "", plugin: "kv" });
  `);
  assert.equal(out.code, 0, out.stderr);
  assert.equal(out.stdout, "");
  const lines = out.stderr.split("\n");
  assert.equal(lines.length, 4, out.stderr);
  assert.equal(
    lines[0],
    '2026-01-02T15:04:05.123Z [WARN]  kv.store: disk almost full: free=42 path=/var nested={"a":1}',
  );
  assert.match(lines[1], /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z \[DEBUG\] kv: shown$/);
  assert.match(lines[2], /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z \[ERROR\] kv: boom$/);
  assert.equal(lines[3], "");
});

Deno.test("a host without `logger` prints the plugin's records at info and above", async () => {
  // Waits for the five raw lines (four before the handshake, the put log), then stops.
  const out = await runDenoEval(
    `
    import { startPlugin } from ${JSON.stringify(repoUrl("host.ts"))};
    import { KV } from ${JSON.stringify(repoUrl("gen/kv/kv_pb.ts"))};
    const { logger: _, ...options } = JSON.parse(Deno.env.get("HOST_OPTIONS"));
    let lines = 0;
    await using plugin = await startPlugin({
      ...options,
      plugins: { kv: KV },
      name: "helper",
      stderr: () => lines++,
    });
    await plugin.dispense("kv").put({ key: "k", value: new Uint8Array([1]) });
    while (lines < 5) await new Promise((r) => setTimeout(r, 20));
  `,
    { env: { HOST_OPTIONS: JSON.stringify(helperPlugin("stderr-real")) } },
  );
  assert.equal(out.code, 0, out.stderr);
  const ts = "\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{3}Z";
  const lines = out.stderr.split("\n");
  assert.equal(lines.length, 5, out.stderr);
  assert.match(
    lines[0],
    new RegExp(
      `^${ts} \\[WARN\\]  helper\\.helper: json warning: ` +
        `answer=42 nested=\\{"a":1\\}$`,
    ),
  );
  assert.match(lines[1], new RegExp(`^${ts} \\[ERROR\\] helper: a plain error line$`));
  // The debug line (the malformed one) is below the default level.
  assert.equal(lines[2], "2026-01-02T15:04:05.123Z [INFO]  helper: 12345");
  assert.match(lines[3], new RegExp(`^${ts} \\[INFO\\]  helper: put: key=k$`));
  assert.equal(lines[4], "");
});

Deno.test("a plugin flooding its real stdout after the handshake does not stall", async () => {
  const plugin = await startPlugin({ ...helperPlugin("stdout-flood"), plugins: { kv: KV } });
  try {
    const kv = plugin.dispense("kv");
    // The plugin answers only once its synchronous 1 MiB write is done, i.e. the host drained it.
    const flooded = await kv.get({ key: "flooded" }, { timeoutMs: 20_000 });
    assert.equal(decode(flooded.value), String(1024 * 1024));
    await kv.put({ key: "after", value: encode("flood") });
    assert.equal(decode((await kv.get({ key: "after" })).value), "flood");
    await plugin.ping();
  } finally {
    await plugin.kill();
  }
  assert.deepEqual(await plugin.exited, { code: 0, signal: null });
});

testNoLeftovers();
