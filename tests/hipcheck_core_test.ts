/**
 * The TypeScript Hipcheck core (internal/hipcheck/core.ts, launcher.ts): its pieces, and the
 * core driving plugwire's own Hipcheck plugins (examples/hipcheck/, tests/fixtures/). The
 * Python SDK's example plugin is driven in tests/interop/hipcheck_test.ts.
 *
 * @module
 */

import assert from "node:assert/strict";
import { canonicalJson, HipcheckCoreHost, parseTarget } from "../internal/hipcheck/core.ts";
import { HipcheckCoreError } from "../internal/hipcheck/core_errors.ts";
import { launchHipcheckPlugin, parseHipcheckLogLine } from "../internal/hipcheck/launcher.ts";
import { PluginError, type PluginLogRecord } from "../host.ts";
import { TEST_MARK, testNoLeftovers } from "./_util.ts";

Deno.test("hipcheck core: stderr lines in core's format become log records", () => {
  const rust = parseHipcheckLogLine(
    '{"level":"WARN","fields":{"message":"slow \\"disk\\"","took_ms":12},"target":"hipcheck_sdk::x"}',
  );
  assert.deepEqual(
    { level: rust?.level, message: rust?.message, module: rust?.module, fields: rust?.fields },
    {
      level: "warn",
      message: 'slow "disk"',
      module: "hipcheck_sdk::x",
      fields: { took_ms: 12 },
    },
  );
  // The Python SDK's logging names, which core cannot parse, keep their meaning here.
  assert.equal(
    parseHipcheckLogLine('{"target": "example", "level": "WARNING", "fields": { "message": "w" } }')
      ?.level,
    "warn",
  );
  assert.equal(
    parseHipcheckLogLine('{"level":"CRITICAL","fields":{"message":"c"},"target":"t"}')?.level,
    "error",
  );
  // The Python SDK builds its lines by concatenation: a `"` in the message makes them invalid
  // JSON (core drops them); the record is recovered from the known shape.
  const python = parseHipcheckLogLine(
    '{"target": "example", "level": "ERROR", "fields": { "message": "bad "key"" } }',
  );
  assert.deepEqual([python?.level, python?.module, python?.message], [
    "error",
    "example",
    'bad "key"',
  ]);
  // Not core's format: undefined (the launcher then applies go-plugin's plain-text rules).
  assert.equal(parseHipcheckLogLine("Traceback (most recent call last):"), undefined);
  assert.equal(parseHipcheckLogLine('{"level":"LOUD","fields":{"message":"x"}}'), undefined);
  assert.equal(parseHipcheckLogLine("[1,2]"), undefined);
});

Deno.test("hipcheck core: targets and memo keys", () => {
  assert.deepEqual(parseTarget("mitre/example"), {
    publisher: "mitre",
    plugin: "example",
    query: "",
  });
  assert.deepEqual(parseTarget("dummy/sha256/sha256"), {
    publisher: "dummy",
    plugin: "sha256",
    query: "sha256",
  });
  for (const bad of ["", "mitre", "/x", "a//q", "a/b/c/d"]) {
    assert.throws(
      () => parseTarget(bad),
      (e) => e instanceof HipcheckCoreError && e.code === "bad-target",
      bad,
    );
  }
  // Equal keys up to field order share one memo entry; arrays keep their order.
  assert.equal(
    canonicalJson({ local: { path: "p", git_ref: "r" }, specifier: "s" }),
    canonicalJson({ specifier: "s", local: { git_ref: "r", path: "p" } }),
  );
  assert.notEqual(canonicalJson([1, 2]), canonicalJson([2, 1]));
  assert.throws(() => canonicalJson(undefined), TypeError);
});

const FAST = { backoffMs: 20, maxConnectAttempts: 3, jitterPercent: 0 };

Deno.test("hipcheck core: a plugin that exits at once is respawned, then reported", async () => {
  const logs: PluginLogRecord[] = [];
  const err = await launchHipcheckPlugin({
    cmd: ["sh", "-c", 'echo "no python here: $*" >&2; exit 3', "sh"],
    name: "demo/broken",
    logLevel: "warn",
    env: { PLUGWIRE_TEST_MARK: TEST_MARK },
    logger: (r) => logs.push(r),
    connect: { ...FAST, maxSpawnAttempts: 2 },
  }).then(() => assert.fail("started"), (e) => e);
  assert.ok(err instanceof PluginError);
  assert.equal(err.code, "exited-before-connect");
  assert.match(err.message, /demo\/broken exited with status 3 .*\(spawn 2 of 2\)/);
  // Core's command line: the entrypoint, then --port P --log-level L.
  assert.match(err.stderrTail.at(-1)!, /^no python here: --port \d+ --log-level warn$/);
  const spawns = logs.filter((r) => r.level === "warn" && /spawn \d of 2/.test(r.message));
  assert.equal(spawns.length, 2);
  // Each spawn got a port of its own (the plain stderr line is kept as a debug record).
  const ports = logs.filter((r) => r.level === "debug").map((r) =>
    /--port (\d+)/.exec(r.message)?.[1]
  );
  assert.equal(ports.length, 2);
});

Deno.test("hipcheck core: a plugin that never listens is killed after core's attempts", async () => {
  const err = await launchHipcheckPlugin({
    cmd: ["sh", "-c", "exec sleep 30", "sh"],
    name: "demo/deaf",
    logLevel: "error",
    env: { PLUGWIRE_TEST_MARK: TEST_MARK },
    logger: () => {},
    connect: { ...FAST, maxSpawnAttempts: 1 },
  }).then(() => assert.fail("started"), (e) => e);
  assert.ok(err instanceof PluginError);
  assert.equal(err.code, "connection-failed");
  assert.match(err.message, /could not be reached on 127\.0\.0\.1:\d+ after 3 connection attempts/);
});

Deno.test("hipcheck core: aborting a start kills the plugin", async () => {
  const abort = new AbortController();
  const started = launchHipcheckPlugin({
    cmd: ["sh", "-c", "exec sleep 30", "sh"],
    name: "demo/slow",
    logLevel: "error",
    env: { PLUGWIRE_TEST_MARK: TEST_MARK },
    logger: () => {},
    connect: { backoffMs: 1000, maxConnectAttempts: 10 },
    signal: abort.signal,
  });
  setTimeout(() => abort.abort(new Error("user gave up")), 200);
  const err = await started.then(() => assert.fail("started"), (e) => e);
  assert.ok(err instanceof PluginError);
  assert.equal(err.code, "closed");
});

Deno.test("hipcheck core: plugin lists are checked before anything starts", async () => {
  const spec = { publisher: "demo", name: "x", cmd: "sleep 30" };
  await assert.rejects(
    HipcheckCoreHost.start({ plugins: [spec, spec] }),
    (e) =>
      e instanceof HipcheckCoreError && e.code === "setup-failed" && /listed twice/.test(e.message),
  );
  await assert.rejects(
    HipcheckCoreHost.start({ plugins: [{ ...spec, name: "a/b" }] }),
    (e) => e instanceof HipcheckCoreError && e.code === "bad-target",
  );
});

testNoLeftovers();
