/**
 * The TypeScript Hipcheck core (internal/hipcheck/core.ts, launcher.ts): its pieces, and the
 * core driving plugwire's own Hipcheck plugins (examples/hipcheck/, tests/fixtures/). The
 * Python SDK's example plugin is driven in tests/interop/hipcheck_test.ts.
 *
 * @module
 */

import assert from "node:assert/strict";
import { assertNode20, bundleForNode } from "./_node.ts";
import { canonicalJson, HipcheckCoreHost, parseTarget } from "../internal/hipcheck/core.ts";
import { HipcheckCoreError } from "../internal/hipcheck/core_errors.ts";
import { launchHipcheckPlugin, parseHipcheckLogLine } from "../internal/hipcheck/launcher.ts";
import { PluginError, type PluginLogRecord } from "../host.ts";
import {
  type HipcheckCore,
  HipcheckCoreError as PublicCoreError,
  type HipcheckCoreOptions,
  type HipcheckCorePluginSpec,
  startHipcheckCore,
} from "../hipcheck.ts";
import { sha256 } from "../examples/hipcheck/sha256.ts";
import { denoCommand, TEST_MARK, testNoLeftovers } from "./_util.ts";

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

// ---------------------------------------------------------------------------------------------
// The core driving plugwire's own Hipcheck plugins, each a real process started as core does.

const SHA256 = {
  publisher: "dummy",
  name: "sha256",
  cmd: denoCommand("examples/hipcheck/sha256.ts"),
};
const FIXTURE = {
  publisher: "test",
  name: "fixture",
  cmd: denoCommand("tests/fixtures/hipcheck_plugin.ts"),
};
const WIRE = {
  publisher: "test",
  name: "wire",
  cmd: denoCommand("tests/fixtures/hipcheck_wire_plugin.ts"),
};
const LOOP = {
  publisher: "test",
  name: "loop",
  cmd: denoCommand("tests/fixtures/hipcheck_core_plugin.ts"),
};
const files = (config?: Record<string, unknown>): HipcheckCorePluginSpec => ({
  publisher: "plugwire",
  name: "files",
  cmd: denoCommand("examples/hipcheck/files.ts"),
  config,
});

/** Deno starts in well under a second, but the machine may be loaded: a roomier budget. */
function startCore(
  plugins: HipcheckCorePluginSpec[],
  logs: PluginLogRecord[] = [],
  extra: Partial<HipcheckCoreOptions> = {},
) {
  return startHipcheckCore({
    ...extra,
    plugins,
    logLevel: "info",
    logger: (record) => logs.push(record),
    env: { PLUGWIRE_TEST_MARK: TEST_MARK },
    connect: { backoffMs: 200, maxConnectAttempts: 20 },
  });
}

async function rejection(promise: Promise<unknown>): Promise<PublicCoreError> {
  const err = await promise.then(() => assert.fail("expected a rejection"), (e) => e);
  assert.ok(err instanceof PublicCoreError, String(err?.stack ?? err));
  return err;
}

Deno.test("hipcheck core: plugwire/files asks dummy/sha256 through the core", async () => {
  const repo = await Deno.makeTempDir({ prefix: "plugwire-hc-repo-" });
  try {
    for (const name of ["a.txt", "b.txt", "sub/c.txt", ".git/HEAD", ".git/objects/x"]) {
      await Deno.mkdir(`${repo}/${name}`.replace(/\/[^/]+$/, ""), { recursive: true });
      await Deno.writeTextFile(`${repo}/${name}`, name);
    }
    await using core = await startCore([files({ "max-files": 10 }), SHA256]);
    const [info] = core.plugins;
    assert.equal(info.defaultPolicyExpression, "(lte $ 10)");
    assert.equal(info.explanation, "the number of files in the repository, not counting .git");
    assert.deepEqual(info.queries.map((q) => q.name).sort(), ["", "files"]);
    const target = {
      specifier: repo,
      local: { path: repo, git_ref: "master" },
      remote: null,
      package: null,
    };
    const result = await core.query("plugwire/files", target);
    const [first] = await sha256([3]);
    assert.deepEqual(result, { output: 3, concerns: [`sha256 first byte ${first}`] });
  } finally {
    await Deno.remove(repo, { recursive: true });
  }
  // Without configuration, no default policy.
  await using bare = await startCore([files(), SHA256]);
  assert.equal(bare.plugins[0].defaultPolicyExpression, "");
});

Deno.test("hipcheck core: configuration errors come back with their status and message", async () => {
  const cases: [HipcheckCorePluginSpec, number, RegExp][] = [
    [files({ "max-files": -1 }), 4, /max-files/],
    [files({ "max-file": 5 }), 3, /'max-file' with value '5'; did you mean 'max-files'\?/],
    [{ ...FIXTURE, config: {} }, 2, /'mode'/],
    [{ ...FIXTURE, config: { mode: "a", "rules-file": "/nonexistent" } }, 6, /\/nonexistent/],
    [{ ...FIXTURE, config: { mode: "a", "rules-file": "parse" } }, 7, /rules\.kdl/],
    [{ ...FIXTURE, config: { mode: "a", "rules-file": "env" } }, 8, /FIXTURE_TOKEN/],
    [{ ...FIXTURE, config: { mode: "a", "rules-file": "program" } }, 9, /fixture-tool/],
    [{ ...FIXTURE, config: { mode: "a", "rules-file": "unspecified" } }, 0, /something else/],
  ];
  await Promise.all(cases.map(async ([spec, status, detail]) => {
    const err = await rejection(startCore([spec]));
    const what = `${JSON.stringify(spec.config)}: ${err.message}`;
    assert.equal(err.code, "config", what);
    assert.equal(err.status, status, what);
    assert.equal(err.plugin, `${spec.publisher}/${spec.name}`);
    assert.match(err.detail!, detail, what);
    // Worded as core words it: "Plugin '<p>': <generic text for the status>: <message>".
    assert.ok(err.message.startsWith(`Plugin '${spec.publisher}/${spec.name}': `), what);
    assert.ok(err.message.endsWith(`: ${err.detail}`), what);
  }));
});

Deno.test("hipcheck core: a failing query carries the plugin's concerns and error", async () => {
  const logs: PluginLogRecord[] = [];
  await using core = await startCore([{ ...FIXTURE, config: { mode: "a" } }], logs);
  const err = await rejection(core.query("test/fixture/fail", 1));
  assert.equal(err.code, "query-failed");
  assert.equal(err.target, "test/fixture/fail 1");
  assert.equal(err.concerns[0], "recorded before the failure");
  assert.match(err.message, /^test\/fixture\/fail 1 failed: handler: .*forced "failure"/);
  // Its ERROR log line (what real Hipcheck shows) became a record, quotes and newline intact.
  await waitFor(() => logs.some((r) => r.level === "error" && r.plugin === "test/fixture"));
  const record = logs.find((r) => r.level === "error" && r.plugin === "test/fixture")!;
  assert.match(record.message, /forced "failure"\nsecond line/);
  // Not remembered: the same query fails again (it runs again), and others still work.
  assert.equal((await rejection(core.query("test/fixture/fail", 1))).code, "query-failed");
  assert.deepEqual(await core.query("test/fixture", { any: ["json"] }), {
    output: { any: ["json"] },
    concerns: [],
  });
});

Deno.test("hipcheck core: 5 MiB answers are chunked both ways", async () => {
  const size = 5 * 1024 * 1024 + 7;
  await using core = await startCore([{ ...FIXTURE, config: { mode: "a" } }, LOOP]);
  // Plugin → core: the answer arrives in two chunks and is put back together.
  const direct = await core.query("test/fixture/big", size);
  assert.equal((direct.output as string).length, size);
  assert.ok(/^x+$/.test(direct.output as string));
  assert.deepEqual(direct.concerns, ["big output"]);
  // Core → plugin: test/loop asks for it through the core, which chunks it to test/loop (and
  // answers from its memo: test/fixture runs once).
  const viaSubQuery = await core.query("test/loop/bigLength", size);
  assert.deepEqual(viaSubQuery, { output: size, concerns: [`got ${size} bytes`] });
});

Deno.test("hipcheck core: batches, the memo and shared in-flight queries", async () => {
  await using core = await startCore([{ ...FIXTURE, config: { mode: "a" } }, SHA256, LOOP]);
  // A batch sub-query: keys answered one by one, in order.
  const digests = await core.query("test/fixture/ask", [[5], [6], [5]]);
  const expected = await Promise.all([[5], [6], [5]].map((k) => sha256(k)));
  assert.deepEqual(digests.output, expected);

  // test/loop/count says how often it ran. Two identical queries at once share one run...
  const [a, b] = await Promise.all([
    core.query("test/loop/count", { x: 1, y: [2] }),
    core.query("test/loop/count", { y: [2], x: 1 }), // same key, fields in another order
  ]);
  assert.equal(a.output, 1);
  assert.equal(b.output, 1);
  // ...a later one is answered from the memo...
  assert.equal((await core.query("test/loop/count", { x: 1, y: [2] })).output, 1);
  // ...but the default endpoint is another memo entry, as in core (the query name is part of
  // the key), even when it is the same function.
  assert.equal((await core.query("test/loop", { x: 1, y: [2] })).output, 2);
  // A batch of ["p", "q", "p"] runs count twice more.
  assert.deepEqual((await core.query("test/loop/countMany", ["p", "q", "p"])).output, [3, 4, 3]);
  assert.deepEqual((await core.query("test/loop/countMany", ["q", { x: 1, y: [2] }])).output, [
    4,
    1,
  ]);
});

Deno.test("hipcheck core: what the core puts on the wire (ids, placeholders, chunks)", async () => {
  const logs: PluginLogRecord[] = [];
  await using core = await startCore(
    [{ ...WIRE, logLevel: "trace" }, { ...FIXTURE, config: { mode: "a" } }],
    logs,
  );
  // Started as core starts plugins, with this plugin's own log level.
  assert.deepEqual((await core.query("test/wire", null)).output, [
    "--port",
    String(core.plugins[0].port),
    "--log-level",
    "trace",
  ]);
  // A key is sent as compact JSON in the caller's field order (core 3.15 keeps struct order).
  const echoed = await core.query("test/wire/echo", { b: 1, a: [true, "é"] });
  assert.equal(echoed.output, '{"b":1,"a":[true,"é"]}');
  // Stray messages (a REPLY on an id the core never issued, id 0) are ignored with a note.
  assert.equal((await core.query("test/wire/stray", 1)).output, "ok");
  assert.ok(
    logs.some((r) =>
      r.level === "warn" && /for id 999999, which core has not issued; ignored/.test(r.message)
    ),
  );
  assert.ok(logs.some((r) => r.level === "debug" && /^id 0 is not a query/.test(r.message)));
  // A sub-query with two keys: each key a query of its own (new odd ids), then one reply on
  // the asking session's id, addressed from the target, with the compat key placeholder.
  const ask = await core.query("test/wire/ask", 0);
  assert.deepEqual(ask.output, [{
    wire: "CigIBxADGgR0ZXN0IgR3aXJlKgRlY2hvMgRudWxsOgMiMSI6BSJbMl0i",
    id: 7,
    state: "REPLY_COMPLETE",
    publisher: "test",
    plugin: "wire",
    query: "echo",
    key: ["null"],
    output: ['"1"', '"[2]"'],
    concern: [],
    split: false,
  }]);
  const transcript = (await core.query("test/wire/transcript", 0)).output as {
    id: number;
    state: string;
    query: string;
    key: string[];
    output: string[];
  }[];
  assert.deepEqual(
    transcript.map(({ id, state, query, key, output }) => [id, state, query, key, output]),
    [
      [1, "SUBMIT_COMPLETE", "", ["null"], ["null"]],
      [3, "SUBMIT_COMPLETE", "echo", ['{"b":1,"a":[true,"é"]}'], ["null"]],
      [5, "SUBMIT_COMPLETE", "stray", ["1"], ["null"]],
      [7, "SUBMIT_COMPLETE", "ask", ["0"], ["null"]],
      [9, "SUBMIT_COMPLETE", "echo", ["1"], ["null"]],
      [11, "SUBMIT_COMPLETE", "echo", ["[2]"], ["null"]],
      [7, "REPLY_COMPLETE", "echo", ["null"], ['"1"', '"[2]"']],
      [13, "SUBMIT_COMPLETE", "transcript", ["0"], ["null"]],
    ],
  );
  // A 5 MiB answer to a sub-query, chunked by the core as hipcheck-common chunks it
  // (hipcheck.md §1.5 G): 4,193,280 bytes, split, then the rest with a "" key placeholder;
  // the target's concern ("big output") is not passed on.
  const size = 5 * 1024 * 1024 + 7;
  const big = await core.query("test/wire/askBig", size);
  assert.deepEqual(
    (big.output as {
      state: string;
      key: string[];
      output: string[];
      concern: string[];
      split: boolean;
    }[])
      .map(({ state, key, output, concern, split }) => ({ state, key, output, concern, split })),
    [
      {
        state: "REPLY_IN_PROGRESS",
        key: ["null"],
        output: ["<4193280>"],
        concern: [],
        split: true,
      },
      {
        state: "REPLY_COMPLETE",
        key: [""],
        output: [`<${size + 2 - 4193280}>`],
        concern: [],
        split: false,
      },
    ],
  );
});

Deno.test("hipcheck core: its query is byte for byte the golden one (hipcheck.md §1.8)", async () => {
  // The raw plugin stands as mitre/example; its second query gets id 3, as in scenario 2.
  await using core = await startCore([{ ...WIRE, publisher: "mitre", name: "example" }]);
  await core.query("mitre/example", null);
  await core.query("mitre/example/dummy_rand_data", 8);
  const transcript = (await core.query("mitre/example/transcript", 0)).output as { wire: string }[];
  assert.equal(
    transcript[1].wire,
    "Ci4IAxABGgVtaXRyZSIHZXhhbXBsZSoPZHVtbXlfcmFuZF9kYXRhMgE4OgRudWxs",
  );
});

Deno.test("hipcheck core: a bounded memo forgets its oldest answers", async () => {
  await using core = await startCore([LOOP], [], { maxMemoEntries: 2 });
  const count = async (key: string) => (await core.query("test/loop/count", key)).output;
  assert.deepEqual([await count("a"), await count("b"), await count("c")], [1, 2, 3]);
  assert.equal(await count("c"), 3); // kept
  assert.equal(await count("a"), 4); // forgotten when "c" came, so asked again
});

Deno.test("hipcheck core: query cycles are reported, not awaited forever", async () => {
  await using core = await startCore([LOOP]);
  const self = await rejection(core.query("test/loop/self", 1));
  assert.equal(self.code, "query-cycle");
  assert.deepEqual(self.cycle, ["test/loop/self 1", "test/loop/self 1"]);

  const two = await rejection(core.query("test/loop/ping", 2));
  assert.equal(two.code, "query-cycle");
  assert.deepEqual(two.cycle, ["test/loop/pong 2", "test/loop/ping 2", "test/loop/pong 2"]);
  assert.equal(
    two.message,
    "query cycle: test/loop/pong 2 -> test/loop/ping 2 -> test/loop/pong 2",
  );

  // Two top-level queries that each wait on the other: neither chain contains the other.
  const both = await Promise.allSettled([
    core.query("test/loop/ping", 3),
    core.query("test/loop/pong", 3),
  ]);
  for (const r of both) {
    assert.equal(r.status, "rejected");
    assert.equal((r as PromiseRejectedResult).reason.code, "query-cycle");
  }
  // Recursion on other keys is no cycle; the plugin is still fine.
  assert.equal((await core.query("test/loop/down", 5)).output, 5);
});

Deno.test("hipcheck core: unknown plugins and queries, a crash, and a closed core", async () => {
  const logs: PluginLogRecord[] = [];
  await using core: HipcheckCore = await startCore(
    [{ ...FIXTURE, config: { mode: "a" } }, LOOP],
    logs,
  );
  // The fixture's "both" asks a/b, which the core does not run.
  const unknown = await rejection(core.query("test/fixture/both", 1));
  assert.equal(unknown.code, "unknown-plugin");
  assert.equal(unknown.message, "No such plugin a/b");
  assert.equal((await rejection(core.query("nobody/here", 1))).code, "unknown-plugin");
  assert.equal((await rejection(core.query("test/loop/nope", 1))).code, "unknown-query");
  assert.equal((await rejection(core.query("test", 1))).code, "bad-target");
  assert.equal((await rejection(core.query("test/loop/count", undefined))).code, "bad-key");
  assert.equal((await rejection(core.query("test/loop/count", { n: 10n }))).code, "bad-key");

  const crash = await rejection(core.query("test/loop/crash", null));
  assert.equal(crash.code, "closed");
  assert.equal(crash.plugin, "test/loop");
  assert.ok(logs.some((r) =>
    r.level === "error" && r.module === "hipcheck-core" &&
    r.message.startsWith("the query stream of test/loop ended")
  ));
  assert.equal((await rejection(core.query("test/loop/count", 1))).code, "closed");
  assert.equal((await core.query("test/fixture", 7)).output, 7); // the others run on

  // A caller may stop waiting; the query itself finishes and is remembered.
  const abort = new AbortController();
  const waiting = core.query("test/fixture/echo", "slow?", { signal: abort.signal });
  abort.abort(new Error("caller gave up"));
  await assert.rejects(waiting, /caller gave up/);

  await core.close();
  assert.equal((await rejection(core.query("test/fixture", 7))).code, "closed");
});

Deno.test("hipcheck core: the core runs on Node 20+ too", async () => {
  assertNode20();
  const dir = await Deno.makeTempDir({ prefix: "plugwire-hc-node-" });
  try {
    await bundleForNode("tests/fixtures/node_hipcheck_host.ts", `${dir}/core.mjs`);
    const out = await new Deno.Command("node", {
      args: [`${dir}/core.mjs`, ...denoCommand("examples/hipcheck/sha256.ts")],
      env: { PLUGWIRE_TEST_MARK: TEST_MARK },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stdout = new TextDecoder().decode(out.stdout);
    assert.equal(out.code, 0, `${stdout}\n${new TextDecoder().decode(out.stderr)}`);
    const result = JSON.parse(stdout);
    assert.match(result.runtime, /^v\d+/);
    assert.deepEqual(result.output.slice(0, 4), [75, 245, 18, 47]);
    assert.deepEqual(result.queries, ["", "sha256"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

async function waitFor(check: () => boolean): Promise<void> {
  for (let i = 0; i < 100 && !check(); i++) await new Promise((r) => setTimeout(r, 20));
  assert.ok(check(), "timed out");
}

testNoLeftovers();
