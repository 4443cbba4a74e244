/**
 * The gateway's TOML configuration: defaults, `${ENV}`, strict types, and errors that name the
 * key and the line without quoting secrets (plugincore.md §9 bugs 2, 11).
 */

import assert from "node:assert/strict";
import { GatewayConfigError, parseGatewayConfig } from "../internal/gateway/config.ts";
import { testNoLeftovers } from "./_util.ts";

function problemsOf(text: string, env: Record<string, string> = {}) {
  try {
    parseGatewayConfig(text, { file: "/etc/gw.toml", env });
  } catch (err) {
    assert.ok(err instanceof GatewayConfigError, String(err));
    return err.problems;
  }
  assert.fail("expected a GatewayConfigError");
}

Deno.test("config: a full file parses, with defaults, env interpolation and resolved paths", () => {
  const config = parseGatewayConfig(
    `listen = "0.0.0.0:9000"
[auth]
keys = ["\${API_KEY}"]
header = "X-Custom-Auth"
[cors]
enabled = true
origins = ["http://localhost:5173"]
[plugins.NetInfo]
module = "netinfo.ts"
params = { route = "x", hash = 1 }
[plugins.kv]
cmd = ["./kv", "\${KV_FLAG:-serve}"]
handshake = { protocol_version = 1, magic_cookie_key = "BASIC_PLUGIN", magic_cookie_value = "hello" }
env = { TOKEN = "\${API_KEY}" }
[plugins.files]
hipcheck = "files.ts"
config = { max = 3 }
`,
    { file: "/etc/gw/plugwire.toml", env: { API_KEY: "s3cret" } },
  );
  assert.equal(config.hostname, "0.0.0.0");
  assert.equal(config.port, 9000);
  assert.deepEqual(config.auth.keys, ["s3cret"]);
  assert.equal(config.auth.header, "X-Custom-Auth");
  assert.equal(config.limits.bodyBytes, 1024 * 1024);
  // Mixed-case ids and reserved Python words (plugincore bug 11) are plain keys here.
  const [netinfo, kv, files] = config.plugins;
  assert.equal(netinfo.id, "NetInfo");
  assert.equal(netinfo.kind, "module");
  if (netinfo.kind === "module") {
    assert.equal(netinfo.module, "/etc/gw/netinfo.ts");
    assert.deepEqual(netinfo.params, { route: "x", hash: 1 });
  }
  assert.equal(kv.kind, "grpc");
  if (kv.kind === "grpc") {
    assert.deepEqual(kv.cmd, ["/etc/gw/./kv", "serve"]); // ./ is relative to the file
    assert.equal(kv.cwd, "/etc/gw");
    assert.equal(kv.autoMtls, true);
    assert.deepEqual(kv.versions, [1]);
    assert.deepEqual(kv.env, { TOKEN: "s3cret" });
  }
  assert.equal(files.kind, "hipcheck");
});

Deno.test('config: booleans are strict (plugincore bug 2: enabled = "false" is not on)', () => {
  const problems = problemsOf(`[cors]\nenabled = "false"\norigins = ["http://a.example"]\n`);
  assert.deepEqual(problems.map((p) => [p.key, p.line]), [["cors.enabled", 2]]);
  const off = parseGatewayConfig(`[cors]\nenabled = false\norigins = ["http://a.example"]\n`);
  assert.equal(off.cors.enabled, false);
});

Deno.test("config: origins are validated as URLs at start, a string is not a list", () => {
  const problems = problemsOf(
    `[cors]\nenabled = true\norigins = ["http://ok.example", "ok.example", "http://x.example/"]\n`,
  );
  assert.deepEqual(problems.map((p) => p.key), ["cors.origins.1", "cors.origins.2"]);
  assert.ok(problems.every((p) => p.line === 3));
  const notList = problemsOf(`[cors]\nenabled = true\norigins = "http://allowed.example"\n`);
  assert.deepEqual(notList.map((p) => [p.key, p.line]), [["cors.origins", 3]]);
  assert.match(
    problemsOf(`[cors]\nenabled = true\norigins = ["*"]\ncredentials = true\n`)[0].key,
    /credentials/,
  );
});

Deno.test("config: unknown keys, wrong kinds and reserved ids are errors with their lines", () => {
  const problems = problemsOf(`listen = "127.0.0.1:80"
[limits]
body_byte = 10

[plugins.a]
module = "a.ts"
cmd = ["x"]

[plugins.b]
params = {}

[plugins.plugins]
module = "p.ts"

[plugins.c]
cmd = ["c"]
handshake = { protocol_version = "1", magic_cookie_key = "K", magic_cookie_value = "V" }
`);
  const byKey = Object.fromEntries(problems.map((p) => [p.key, p.line]));
  assert.equal(byKey["limits"], 2); // the unknown key is reported on its table
  assert.equal(byKey["plugins.a"], 5);
  assert.equal(byKey["plugins.b"], 9);
  assert.equal(byKey["plugins.plugins"], 12);
  assert.equal(byKey["plugins.c.handshake.protocol_version"], 17);
});

Deno.test("config: secrets are never quoted in errors", () => {
  const text = `[auth]\nkeys = "\${API_KEY}"\n[plugins.kv]\ncmd = ["kv"]\n` +
    `handshake = { protocol_version = 1, magic_cookie_key = "K", magic_cookie_value = "V" }\n` +
    `env = { TOKEN = 42 }\n`;
  try {
    parseGatewayConfig(text, { env: { API_KEY: "hunter2-very-secret" } });
    assert.fail("expected an error");
  } catch (err) {
    assert.ok(err instanceof GatewayConfigError);
    assert.doesNotMatch(err.message, /hunter2/);
    assert.match(err.message, /line 2: auth\.keys/);
    assert.match(err.message, /line 6: plugins\.kv\.env\.TOKEN/);
  }
  const missing = problemsOf(`[auth]\nkeys = ["\${NOT_SET_ANYWHERE}"]\n`);
  assert.deepEqual(missing.map((p) => [p.key, p.line]), [["auth.keys.0", 2]]);
  assert.match(missing[0].message, /NOT_SET_ANYWHERE is not set/);
});

Deno.test("config: a Hipcheck plugin's depends must name other Hipcheck plugins", () => {
  const problems = problemsOf(`[plugins.files]
hipcheck = "files.ts"
depends = ["sha256", "hello", "files"]
[plugins.hello]
module = "hello.ts"
`);
  assert.deepEqual(problems.map((p) => [p.key, p.line]), [
    ["plugins.files.depends.0", 3],
    ["plugins.files.depends.1", 3],
    ["plugins.files.depends.2", 3],
  ]);
});

Deno.test("config: modules = [...] names in-process plugins after their module, case kept", () => {
  const config = parseGatewayConfig(
    `modules = ["plugins/NetInfo.ts", "hash.js"]\n[plugins.other]\nmodule = "o.ts"\n`,
    { file: "/srv/gw.toml" },
  );
  assert.deepEqual(config.plugins.map((p) => [p.id, p.kind === "module" && p.module]), [
    ["other", "/srv/o.ts"],
    ["NetInfo", "/srv/plugins/NetInfo.ts"],
    ["hash", "/srv/hash.js"],
  ]);
  const clash = problemsOf(
    `modules = ["a/other.ts", "plugins.ts"]\n[plugins.other]\nmodule = "o.ts"\n`,
  );
  assert.deepEqual(clash.map((p) => [p.key, p.line]), [["modules.0", 1], ["modules.1", 1]]);
});

Deno.test("config: a TOML syntax error names its line", () => {
  const problems = problemsOf(`listen = "127.0.0.1:1"\n[auth\nkeys = []\n`);
  assert.equal(problems[0].line, 2);
});

testNoLeftovers();
