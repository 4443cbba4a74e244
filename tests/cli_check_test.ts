/**
 * `plugwire check` against plugwire's own plugins and a hand-built plugin that breaks one
 * protocol point at a time (tests/fixtures/cli_broken_plugin.ts). The real third-party peers are
 * in cli_interop_test.ts.
 *
 * @module
 */

import assert from "node:assert/strict";
import { denoCommand, testNoLeftovers } from "./_util.ts";
import { inPool, plugwire, pointsWith, reportLines } from "./_cli.ts";

const BROKEN = denoCommand("tests/fixtures/cli_broken_plugin.ts");
const HELPER = denoCommand("tests/fixtures/helper_plugin.ts");
const COOKIE = ["--cookie", "BASIC_PLUGIN=hello", "--timeout", "30s"];
const ALL_POINTS = [
  "broker-stream",
  "cookie",
  "handshake-line",
  "health",
  "leftovers",
  "mtls-certificate",
  "mtls-client-cert-required",
  "mtls-connect",
  "mtls-wrong-cert-refused",
  "network",
  "reflection",
  "shutdown",
  "stdio-stream",
  "tcp-port-range",
  "unix-socket-dir",
  "version-negotiation",
  "version-refusal",
];

Deno.test("cli check: a conforming plugin passes every point; --json for machines", async () => {
  const run = await plugwire(["check", ...COOKIE, "--versions", "1,2", "--", ...BROKEN]);
  assert.equal(run.code, 0, run.stdout + run.stderr);
  const lines = reportLines(run.stdout);
  assert.deepEqual([...lines.keys()].sort(), ALL_POINTS);
  assert.deepEqual(pointsWith(lines, "SKIP"), ["network", "tcp-port-range"]);
  assert.equal(lines.get("version-negotiation")?.text, "offered 1,2 → 2 (supports 1,2)");
  assert.match(lines.get("cookie")!.text, /exit 1, go-plugin's message/);
  assert.match(lines.get("mtls-certificate")!.text, /^ECDSA P-521, CA, .*SAN DNS:localhost/);
  assert.match(lines.get("shutdown")!.text, /^exit status 0, \d+ ms after Shutdown$/);
  assert.match(run.stdout, /^check: 15 passed, 0 failed, 2 skipped$/m);

  const json = await plugwire(["check", ...COOKIE, "--json", "--", ...BROKEN]);
  assert.equal(json.code, 0);
  const report = JSON.parse(json.stdout);
  assert.equal(report.results.length, ALL_POINTS.length);
  assert.equal(report.failed, 0);
  assert.deepEqual(report.results[0], {
    id: "cookie",
    verdict: "PASS",
    detail: "refuses to run without BASIC_PLUGIN: exit 1, go-plugin's message",
  });
});

/** Each mode of the broken plugin and the one point (or two) it must fail, with the reason. */
const BROKEN_MODES: [string, string[], Record<string, RegExp>][] = [
  ["no-cookie-check", [], { cookie: /started without its cookie.*got handshake "1\|/ }],
  ["wrong-cookie-message", [], { cookie: /got exit status 1, stderr "no cookie, no service"/ }],
  ["seven-fields", [], { "handshake-line": /got 7 fields although PLUGIN_MULTIPLEX_GRPC/ }],
  ["lowest-version", ["--versions", "1,2"], {
    "version-negotiation": /expected 2; got 1 \(it supports 1,2 of 1,2\)/,
  }],
  ["claims-any-version", [], { "version-refusal": /never 101; got version 101/ }],
  ["ignore-socket-dir", [], {
    "unix-socket-dir": /PLUGIN_UNIX_SOCKET_DIR ignored: .*\/tmp\/plugin\d+$/,
  }],
  ["health-not-serving", [], { health: /expected SERVING; got NOT_SERVING/ }],
  ["no-tls-cert", [], { "mtls-certificate": /no certificate in the handshake/ }],
  ["one-way-tls", [], {
    "mtls-client-cert-required": /one-way TLS.*got accepted/,
    "mtls-wrong-cert-refused": /accepts a certificate it was not given.*got accepted/,
  }],
  ["no-reflection", [], { reflection: /got the plugin serves no gRPC reflection/ }],
  ["no-stdio", [], { "stdio-stream": /got UNIMPLEMENTED/ }],
  ["no-broker", [], { "broker-stream": /got UNIMPLEMENTED/ }],
  ["shutdown-exit-1", [], { shutdown: /got exit status 1$/ }],
  ["ignore-shutdown", [], { shutdown: /got still running after 2 s.*; SIGTERM stopped it$/ }],
  ["leave-socket", [], { leftovers: /got its socket .*\/sockets\/plugin\d+/ }],
  ["leave-child", [], { leftovers: /got processes \d+ of its process group/ }],
  ["leave-temp-file", [], {
    leftovers: /got files in PLUGIN_UNIX_SOCKET_DIR\/TMPDIR: broken-plugin-cache/,
  }],
  ["ignore-port-range", ["--env", "BROKEN_NETWORK=tcp", "--network", "tcp"], {
    "tcp-port-range": /got 127\.0\.0\.1:190[0-4]\d$/, // 19000-19049, whatever is free
  }],
];

Deno.test("cli check: each broken plugin fails its point, and only that one", async () => {
  // Two at a time: each check already runs its four sessions side by side.
  const runs = await inPool(
    2,
    BROKEN_MODES.map(([mode, extra]) => () =>
      plugwire(["check", ...COOKIE, ...extra, "--env", `BROKEN_MODE=${mode}`, "--", ...BROKEN])
    ),
  );
  for (const [i, [mode, , fails]] of BROKEN_MODES.entries()) {
    const run = runs[i];
    const context = `mode ${mode}:\n${run.stdout}${run.stderr}`;
    assert.equal(run.code, 1, context);
    const lines = reportLines(run.stdout);
    assert.deepEqual(pointsWith(lines, "FAIL"), Object.keys(fails).sort(), context);
    for (const [point, pattern] of Object.entries(fails)) {
      assert.match(lines.get(point)!.text, pattern, context);
    }
    assert.match(
      run.stdout,
      new RegExp(`^check: \\d+ passed, ${Object.keys(fails).length} failed`, "m"),
    );
  }
});

Deno.test("cli check: a TCP plugin, --network and the port window; AutoMTLS main session", async () => {
  const tcp = await plugwire([
    "check",
    ...COOKIE,
    "--network",
    "tcp",
    "--env",
    "BROKEN_NETWORK=tcp",
    "--",
    ...BROKEN,
  ]);
  assert.equal(tcp.code, 0, tcp.stdout);
  const lines = reportLines(tcp.stdout);
  assert.match(lines.get("tcp-port-range")!.text, /^port (\d+) in \1-\d+, on 127\.0\.0\.1$/);
  assert.equal(lines.get("network")?.text, "listens on tcp");
  assert.equal(lines.get("unix-socket-dir")?.verdict, "SKIP");

  const wrongNetwork = await plugwire(["check", ...COOKIE, "--network", "tcp", "--", ...BROKEN]);
  assert.equal(wrongNetwork.code, 1);
  assert.match(
    reportLines(wrongNetwork.stdout).get("network")!.text,
    /not the network asked for: expected tcp; got unix/,
  );

  const mtls = await plugwire(["check", ...COOKIE, "--auto-mtls", "--", ...BROKEN]);
  assert.equal(mtls.code, 0, mtls.stdout);
  assert.match(reportLines(mtls.stdout).get("handshake-line")!.text, /\|grpc\|MII/);
});

Deno.test("cli check: plugwire's own plugins (KV example, helper over TCP with versions 1,2)", async () => {
  const kv = await plugwire(["check", ...COOKIE, "--", ...denoCommand("examples/kv/plugin.ts")]);
  assert.equal(kv.code, 0, kv.stdout);
  assert.match(reportLines(kv.stdout).get("reflection")!.text, /^v1: 7 services \(proto\.KV\)$/);

  const helper = await plugwire([
    "check",
    ...COOKIE,
    "--versions",
    "1,2",
    "--env",
    "HELPER_VERSIONS=1,2",
    "--env",
    "HELPER_NETWORK=tcp",
    "--",
    ...HELPER,
  ]);
  assert.equal(helper.code, 0, helper.stdout);
  const lines = reportLines(helper.stdout);
  assert.equal(lines.get("version-negotiation")?.text, "offered 1,2 → 2 (supports 1,2)");
  assert.equal(lines.get("tcp-port-range")?.verdict, "PASS");
});

Deno.test("cli check: a plugin that never starts gets verdicts, not a crash", async () => {
  const run = await plugwire([
    "check",
    ...COOKIE,
    "--env",
    "HELPER_MODE=exit-early",
    "--",
    ...HELPER,
  ]);
  assert.equal(run.code, 1);
  const lines = reportLines(run.stdout);
  assert.match(
    lines.get("handshake-line")!.text,
    /no handshake line: .*got exit status 3 first, stderr "fatal: cannot open the database"/,
  );
  assert.match(
    lines.get("health")!.text,
    /^no session: the plugin did not complete its handshake$/,
  );
  assert.equal(lines.size, ALL_POINTS.length);

  const missing = await plugwire(["check", ...COOKIE, "--", "/nonexistent/plugin"]);
  assert.equal(missing.code, 1);
  assert.equal(missing.stdout, "");
  assert.match(missing.stderr, /^plugwire: cannot start "\/nonexistent\/plugin": .*ENOENT/);
});

testNoLeftovers();
