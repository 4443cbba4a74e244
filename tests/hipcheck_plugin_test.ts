// The Hipcheck plugin SDK in process: definitions, schemas, validation, configuration errors of
// every kind, the mock engine, the schemas GetQuerySchemas sends, log lines, and the examples.
import assert from "node:assert/strict";
import { z } from "zod";
import {
  ConfigError,
  type ConfigOf,
  configurePlugin,
  definePlugin,
  type Engine,
  HipcheckError,
  jsonSchema,
  mockEngine,
  query,
  runQuery,
} from "../hipcheck.ts";
import { querySchemaEntries } from "../internal/hipcheck/plugin_server.ts";
import { formatHipcheckLogLine, hipcheckLogger } from "../internal/hipcheck/log.ts";
import { parsePluginArgs } from "../internal/hipcheck/plugin_server.ts";
import { plugin as sha256Plugin } from "../examples/hipcheck/sha256.ts";
import { countFiles, plugin as filesPlugin } from "../examples/hipcheck/files.ts";
import { plugin as fixture } from "./fixtures/hipcheck_plugin_def.ts";
import { testNoLeftovers, testRoot } from "./_util.ts";

// deno-fmt-ignore
const SHA256_OF_1 = [
  75, 245, 18, 47, 52, 69, 84, 197, 59, 222, 46, 187, 140, 210, 183, 227,
  209, 96, 10, 214, 49, 195, 133, 165, 215, 204, 226, 60, 119, 133, 69, 154,
];

const is = (code: string) => (err: unknown) => err instanceof HipcheckError && err.code === code;
const kind = (k: string, message?: string) => (err: unknown) => {
  assert.ok(err instanceof ConfigError, String(err));
  assert.equal(err.kind, k);
  if (message !== undefined) assert.equal(err.message, message);
  return true;
};

Deno.test("definition: names, one default at most, a query at least, schemas with JSON Schema", () => {
  const q = (def = false) => query({ key: z.number(), output: z.number(), default: def }, () => 1);
  assert.throws(
    () => definePlugin({ publisher: "a", name: "b", queries: { x: q(true), y: q(true) } }),
    (err) => is("invalid-definition")(err) && /two default queries, "x" and "y"/.test(String(err)),
  );
  assert.throws(
    () => definePlugin({ publisher: "a/b", name: "c", queries: { x: q() } }),
    is("invalid-definition"),
  );
  assert.throws(
    () => definePlugin({ publisher: "a", name: "", queries: { x: q() } }),
    is("invalid-definition"),
  );
  assert.throws(
    () => definePlugin({ publisher: "a", name: "b", queries: { "": q() } }),
    is("invalid-definition"),
  );
  assert.throws(
    () => definePlugin({ publisher: "a", name: "b", queries: {} }),
    is("invalid-definition"),
  );
  // A validator that has no JSON Schema of its own (a hand-made Standard Schema).
  const bare = {
    "~standard": { version: 1 as const, vendor: "bare", validate: (v: unknown) => ({ value: v }) },
  };
  assert.throws(
    () =>
      definePlugin({
        publisher: "a",
        name: "b",
        queries: { x: query({ key: bare, output: bare }, (_e, k) => k) },
      }),
    (err) =>
      is("invalid-definition")(err) && /bare validator offers no JSON Schema/.test(String(err)),
  );
  const ok = definePlugin({ publisher: "a", name: "b", queries: { x: q(), y: q(true) } });
  assert.equal(ok.defaultQuery, "y");
});

Deno.test("types: a handler's key and return types come from the schemas", async () => {
  const lengths = query({ key: z.array(z.string()), output: z.array(z.number()) }, (_e, key) => {
    const first: string | undefined = key[0];
    // @ts-expect-error the key is string[], not number[]
    const wrong: number[] = key;
    return [first?.length ?? 0, wrong.length];
  });
  // @ts-expect-error the handler must return what the output schema accepts (a number)
  const bad = query({ key: z.string(), output: z.number() }, (_e, key) => key);
  const typed = query(
    { key: jsonSchema<number[]>({ type: "array" }), output: true },
    (_e, key) => key.map((n) => n + 1),
  );
  const config = z.object({ factor: z.number().default(2) });
  const scaled = query(
    { key: z.number(), output: z.number() },
    (engine: Engine<ConfigOf<typeof config>>, key) => key * engine.config.factor,
  );
  const plugin = definePlugin({
    publisher: "t",
    name: "t",
    config,
    queries: { lengths, bad, typed, scaled },
  });
  assert.equal(await runQuery(plugin, "scaled", 21), 42);
  assert.equal(await runQuery(plugin, "scaled", 2, { configuration: { factor: 5 } }), 10);
  assert.deepEqual(await runQuery(plugin, "lengths", ["abc"]), [3, 1]);
  assert.deepEqual(await runQuery(plugin, "typed", [1, 2]), [2, 3]);
  await assert.rejects(runQuery(plugin, "bad", "x"), is("invalid-output")); // and at run time too
});

Deno.test("queries: keys checked before the handler, outputs before sending, paths named", async () => {
  let ran = 0;
  const plugin = definePlugin({
    publisher: "demo",
    name: "check",
    queries: {
      sum: query({
        key: z.object({ items: z.array(z.number().int()) }),
        output: z.number().max(10),
      }, (_e, key) => {
        ran++;
        return key.items.reduce((a, b) => a + b, 0);
      }),
    },
  });
  await assert.rejects(runQuery(plugin, "sum", { items: [1, "2"] }), (err) => {
    assert.ok(is("invalid-key")(err));
    const e = err as HipcheckError;
    assert.deepEqual(e.issues?.map((i) => i.path), [["items", 1]]);
    assert.match(e.message, /invalid key for demo\/check\/sum: at items\[1\]: /);
    return true;
  });
  assert.equal(ran, 0, "the handler must not run on a bad key");
  assert.equal(await runQuery(plugin, "sum", { items: [1, 2] }), 3);
  await assert.rejects(runQuery(plugin, "sum", { items: [9, 9] }), (err) => {
    assert.ok(is("invalid-output")(err));
    assert.match(String(err), /invalid output from demo\/check\/sum: at the root: /);
    return true;
  });
  await assert.rejects(
    runQuery(plugin, "nope", 1),
    (err) => is("unknown-query")(err) && /"sum"/.test(String(err)),
  );
  await assert.rejects(
    runQuery(plugin, "", 1),
    (err) => is("unknown-query")(err) && /no default query/.test(String(err)),
  );
});

Deno.test("queries: strings, arrays and any JSON as keys and outputs; JSON Schema objects validate", async () => {
  const plugin = definePlugin({
    publisher: "demo",
    name: "json",
    queries: {
      upper: query({ key: z.string(), output: z.string() }, (_e, s) => s.toUpperCase()),
      reverse: query(
        { key: z.array(z.number()), output: z.array(z.number()) },
        (_e, a) => [...a].reverse(),
      ),
      bytes: query({
        key: jsonSchema<number[]>({
          type: "array",
          items: { type: "integer", minimum: 0, maximum: 255 },
        }),
        output: jsonSchema<number>({ type: "integer" }),
      }, (_e, key) => key.length),
      broken: query({ key: true, output: { type: "string" } }, () => 5),
    },
  });
  assert.equal(await runQuery(plugin, "upper", "abc"), "ABC");
  assert.deepEqual(await runQuery(plugin, "reverse", [1, 2, 3]), [3, 2, 1]);
  assert.equal(await runQuery(plugin, "bytes", [1, 2]), 2);
  await assert.rejects(runQuery(plugin, "bytes", [1, 300]), (err) => {
    assert.ok(is("invalid-key")(err));
    assert.deepEqual((err as HipcheckError).issues?.map((i) => i.path), [[1]]);
    assert.match(String(err), /at \[1\]: 300 is greater than 255/);
    return true;
  });
  await assert.rejects(runQuery(plugin, "broken", null), is("invalid-output"));
});

Deno.test("queries: a handler's error is a `handler` error; a sub-query's keeps its code", async () => {
  const plugin = definePlugin({
    publisher: "demo",
    name: "err",
    queries: {
      throws: query({ key: z.unknown(), output: z.null() }, () => {
        throw new RangeError("out of range");
      }),
      asks: query({ key: z.unknown(), output: z.unknown() }, (engine) => engine.query("x/y", 1)),
    },
  });
  await assert.rejects(
    runQuery(plugin, "throws", 1),
    (err) => is("handler")(err) && /RangeError: out of range/.test(String(err)),
  );
  await assert.rejects(runQuery(plugin, "asks", 1), is("sub-query-failed"));
});

Deno.test("mock engine: answers by target, errors, JSON on the way, calls and concerns recorded", async () => {
  const engine = mockEngine({
    "demo/a": (key) => ({ got: key }),
    "demo/b/q": () => new Error("down"),
    "demo/c/q": () => {
      throw new Error("thrown");
    },
    "demo/d": () => () => "not JSON",
  });
  assert.deepEqual(await engine.query("demo/a/", { when: new Date(0) }), {
    got: { when: "1970-01-01T00:00:00.000Z" },
  });
  await assert.rejects(
    engine.query("demo/b/q", 1),
    (err) => is("sub-query-failed")(err) && /down/.test(String(err)),
  );
  await assert.rejects(
    engine.query("demo/c/q", 1),
    (err) => is("sub-query-failed")(err) && /thrown/.test(String(err)),
  );
  await assert.rejects(engine.query("demo/d", 1), is("sub-query-failed"));
  await assert.rejects(engine.query("not-a-target", 1), is("sub-query-failed"));
  await assert.rejects(
    engine.query("demo/a", 1, z.string()),
    (err) => is("sub-query-failed")(err) && /answer 0 of demo\/a/.test(String(err)),
  );
  assert.deepEqual(engine.calls.map((c) => c.target), [
    "demo/a",
    "demo/b/q",
    "demo/c/q",
    "demo/d",
    "demo/a",
  ]);
  engine.recordConcern("one");
  assert.deepEqual(engine.concerns, ["one"]);
});

Deno.test("configuration: every ConfigurationStatus through a typed error, dashed keys to camelCase", async () => {
  const setup = await configurePlugin(fixture, { mode: "a", limit: 3 });
  assert.deepEqual(setup, {
    config: { mode: "a", limit: 3 },
    defaultPolicy: "(lte $ 3)",
    explanation: "whatever the key was",
  });
  // dashed → camelCase, and the file-not-found check of the configure hook.
  const missing = `${testRoot()}/no-such-rules.kdl`;
  await assert.rejects(
    configurePlugin(fixture, { mode: "a", "rules-file": missing }),
    kind("file-not-found", missing),
  );
  const rules = `${testRoot()}/rules.kdl`;
  await Deno.writeTextFile(rules, "");
  assert.deepEqual((await configurePlugin(fixture, { mode: "b", "rules-file": rules })).config, {
    mode: "b",
    rulesFile: rules,
  });
  await Deno.remove(rules);
  await assert.rejects(
    configurePlugin(fixture, {}),
    kind("missing-required", "'mode' of type 'string'; possible values: a, b"),
  );
  await assert.rejects(
    configurePlugin(fixture, { mode: "a", limt: 3 }),
    kind("unrecognized", "'limt' with value '3'; did you mean 'limit'?"),
  );
  await assert.rejects(
    configurePlugin(fixture, { mode: "a", "rules-fil": "x" }),
    kind("unrecognized", "'rules-fil' with value 'x'; did you mean 'rules-file'?"),
  );
  await assert.rejects(configurePlugin(fixture, { mode: "a", limit: -1 }), (err) => {
    kind("invalid-value")(err);
    assert.match((err as Error).message, /^'-1' for 'limit', reason: '.+'$/);
    return true;
  });
  await assert.rejects(configurePlugin(fixture, { mode: "c" }), kind("invalid-value"));
  await assert.rejects(
    configurePlugin(fixture, { mode: "a", "rules-file": "env" }),
    kind("env-var-not-set", '"FIXTURE_TOKEN". Purpose: talks to the fixture API'),
  );
  await assert.rejects(
    configurePlugin(fixture, { mode: "a", "rules-file": "program" }),
    kind("missing-program", "fixture-tool"),
  );
  await assert.rejects(
    configurePlugin(fixture, { mode: "a", "rules-file": "parse" }),
    kind("parse-error", "rules.kdl could not be parsed correctly: line 3: unexpected '}'"),
  );
  await assert.rejects(
    configurePlugin(fixture, { mode: "a", "rules-file": "unspecified" }),
    kind("unspecified", "something else"),
  );
  await assert.rejects(
    configurePlugin(fixture, { mode: "a", "rules-file": "crash" }),
    kind(
      "internal-error",
      "the plugin encountered an error, probably due to incorrect assumptions: configure crashed",
    ),
  );
  // Statuses as Hipcheck numbers them.
  const statuses = [
    "unspecified",
    "missing-required",
    "unrecognized",
    "invalid-value",
    "internal-error",
    "file-not-found",
    "parse-error",
    "env-var-not-set",
    "missing-program",
  ]
    .map((k) => new ConfigError(k as ConfigError["kind"], "").status);
  assert.deepEqual(statuses, [0, 2, 3, 4, 5, 6, 7, 8, 9]);
  // A plugin without configuration accepts only {}.
  await configurePlugin(sha256Plugin, {});
  await assert.rejects(
    configurePlugin(sha256Plugin, { x: 1 }),
    kind("unrecognized", "'x' with value '1'"),
  );
});

Deno.test('GetQuerySchemas: the default as "" and every query by name; big schemas in pieces', () => {
  const entries = querySchemaEntries(sha256Plugin);
  assert.deepEqual(entries.map((e) => e.queryName), ["", "sha256"]);
  const key = JSON.parse(entries[0].keySchema);
  assert.equal(key.type, "array");
  assert.deepEqual(key.items, { type: "integer", minimum: 0, maximum: 255 });
  assert.equal(entries[0].outputSchema, entries[1].outputSchema);
  const pieces = querySchemaEntries(filesPlugin, 200);
  const byName = new Map<string, { key: string; output: string }>();
  for (const e of pieces) {
    const acc = byName.get(e.queryName) ?? { key: "", output: "" };
    byName.set(e.queryName, { key: acc.key + e.keySchema, output: acc.output + e.outputSchema });
  }
  assert.ok(pieces.length > 2, "the Target schema is over 100 bytes: several pieces");
  const target = JSON.parse(byName.get("")!.key);
  assert.deepEqual(target.required, ["specifier", "local"]);
  assert.deepEqual(Object.keys(target.properties), ["specifier", "local", "remote", "package"]);
});

Deno.test("log lines: Hipcheck's shape, upper-case levels, real JSON for quotes and newlines", () => {
  const line = formatHipcheckLogLine("warn", "files", 'a "quoted"\nmessage', { id: 3 });
  assert.ok(line.endsWith("\n") && !line.slice(0, -1).includes("\n"));
  assert.deepEqual(JSON.parse(line), {
    level: "WARN",
    fields: { id: 3, message: 'a "quoted"\nmessage' },
    target: "files",
  });
  const cyclic: Record<string, unknown> = {};
  cyclic.self = cyclic;
  assert.deepEqual(JSON.parse(formatHipcheckLogLine("error", "x", "kept", { cyclic })).fields, {
    message: "kept",
  });
});

Deno.test("command line: --port and --log-level as core passes them, anything else ignored", () => {
  assert.deepEqual(
    parsePluginArgs(["--port", "4000", "--log-level", "TRACE", "--extra", "x", "y"]),
    {
      port: 4000,
      logLevel: "trace",
    },
  );
  assert.deepEqual(parsePluginArgs(["-p", "1", "-l", "off"]), { port: 1, logLevel: "off" });
  // Core's default level is error; an unknown level falls back to it.
  assert.deepEqual(parsePluginArgs(["--port=5"]), { port: 5, logLevel: "error" });
  assert.deepEqual(parsePluginArgs(["--port", "5", "--log-level", "loud"]), {
    port: 5,
    logLevel: "error",
  });
  assert.throws(
    () => parsePluginArgs(["--log-level", "info"]),
    (err) => is("invalid-arguments")(err) && /missing --port/.test(String(err)),
  );
  assert.throws(() => parsePluginArgs(["--port", "70000"]), is("invalid-arguments"));
  assert.throws(() => parsePluginArgs(["--port", "x1"]), is("invalid-arguments"));
});

Deno.test("log levels: a level lets through itself and what is more severe; off nothing", () => {
  const levels = ["error", "warn", "info", "debug", "trace"] as const;
  const seen = (level: "off" | typeof levels[number]) => {
    const lines: string[] = [];
    const log = hipcheckLogger("p", level, (l) => lines.push(l));
    for (const l of levels) log[l](l);
    return lines.map((l) => JSON.parse(l).level);
  };
  assert.deepEqual(seen("off"), []);
  assert.deepEqual(seen("error"), ["ERROR"]);
  assert.deepEqual(seen("info"), ["ERROR", "WARN", "INFO"]);
  assert.deepEqual(seen("trace"), ["ERROR", "WARN", "INFO", "DEBUG", "TRACE"]);
});

Deno.test("example dummy/sha256: the digest of [1] starts 75, 245, by name and as default", async () => {
  assert.deepEqual(await runQuery(sha256Plugin, "sha256", [1]), SHA256_OF_1);
  assert.deepEqual(await runQuery(sha256Plugin, "", [1]), SHA256_OF_1);
  await assert.rejects(runQuery(sha256Plugin, "", [256]), is("invalid-key"));
  assert.equal((await configurePlugin(sha256Plugin)).defaultPolicy, "");
});

Deno.test("example plugwire/files: counts files without .git, asks dummy/sha256, records the concern", async () => {
  const repo = await Deno.makeTempDir({ dir: testRoot(), prefix: "repo-" });
  try {
    await Deno.mkdir(`${repo}/.git/objects`, { recursive: true });
    await Deno.writeTextFile(`${repo}/.git/HEAD`, "ref: refs/heads/main\n");
    await Deno.mkdir(`${repo}/src/deep`, { recursive: true });
    for (const f of ["README.md", "src/a.ts", "src/deep/b.ts"]) {
      await Deno.writeTextFile(`${repo}/${f}`, f);
    }
    assert.equal(await countFiles(repo), 3);
    const engine = mockEngine({
      "dummy/sha256/sha256": (key) => sha256Plugin.queries.sha256.handler(mockEngine({}), key),
    });
    const key = {
      specifier: repo,
      local: { path: repo, git_ref: "main" },
      remote: null,
      package: null,
    };
    assert.equal(await runQuery(filesPlugin, "", key, { engine }), 3);
    assert.deepEqual(engine.calls, [{ target: "dummy/sha256/sha256", key: [3] }]);
    const digestOf3 = await sha256Plugin.queries.sha256.handler(mockEngine({}), [3]) as number[];
    assert.deepEqual(engine.concerns, [`sha256 first byte ${digestOf3[0]}`]);
    // Configuration: max-files gives the default policy; none gives none.
    assert.equal(
      (await configurePlugin(filesPlugin, { "max-files": 10 })).defaultPolicy,
      "(lte $ 10)",
    );
    assert.equal((await configurePlugin(filesPlugin)).defaultPolicy, "");
    assert.match((await configurePlugin(filesPlugin)).explanation, /number of files/);
    await assert.rejects(configurePlugin(filesPlugin, { "max-files": -1 }), kind("invalid-value"));
    await assert.rejects(
      configurePlugin(filesPlugin, { "max-file": 1 }),
      kind("unrecognized", "'max-file' with value '1'; did you mean 'max-files'?"),
    );
    // A target whose path is gone fails the query with the handler's error.
    await assert.rejects(
      runQuery(filesPlugin, "", { ...key, local: { path: `${repo}/gone`, git_ref: "main" } }, {
        engine,
      }),
      is("handler"),
    );
  } finally {
    await Deno.remove(repo, { recursive: true });
  }
});

testNoLeftovers();
