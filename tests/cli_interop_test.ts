/**
 * The `plugwire` command against the real peers (tests/interop/README.md): go-plugin v1.8.0's
 * Go KV example plugin and our Go fixture plugin, python-plugin 0.1.0's greeter, and
 * pyvider-rpcplugin 0.5.5. The verdicts, including each peer's known differences, are listed
 * in the interop README ("plugwire check on each peer").
 *
 * @module
 */

import assert from "node:assert/strict";
import { testNoLeftovers } from "./_util.ts";
import { plugwire, pointsWith, reportLines } from "./_cli.ts";
import { peers, peersMissing } from "./interop/_peers.ts";

const env = peers as unknown as Record<string, string | undefined>;
const ignore = peersMissing !== undefined;
const KV_COOKIE = ["--cookie", "BASIC_PLUGIN=hello", "--timeout", "30s"];
const GREETER_COOKIE = ["--cookie", "GREETER_PLUGIN=hello-from-pyplugin", "--timeout", "30s"];

Deno.test({
  name: "cli check: go-plugin's Go KV example plugin conforms",
  ignore,
  async fn() {
    const run = await plugwire(["check", ...KV_COOKIE, "--", peers.GO_EXAMPLE_KV_PLUGIN]);
    assert.equal(run.code, 0, run.stdout + run.stderr);
    const lines = reportLines(run.stdout);
    assert.deepEqual(pointsWith(lines, "FAIL"), []);
    assert.deepEqual(pointsWith(lines, "SKIP"), ["network", "tcp-port-range"]);
    assert.match(lines.get("version-refusal")!.text, /answered 1, which the host refuses/);
    assert.match(
      lines.get("mtls-client-cert-required")!.text,
      /^without a client certificate: refused/,
    );
    assert.match(lines.get("reflection")!.text, /^v1: 7 services \(proto\.KV\)$/);

    // Offered only a version it lacks, it answers its own (go-plugin's way): the versions
    // asked for are wrong, and the report says so rather than blaming the line.
    const v2 = await plugwire([
      "check",
      ...KV_COOKIE,
      "--versions",
      "2",
      "--",
      peers.GO_EXAMPLE_KV_PLUGIN,
    ]);
    assert.equal(v2.code, 1);
    const v2Lines = reportLines(v2.stdout);
    assert.deepEqual(pointsWith(v2Lines, "FAIL"), ["version-negotiation"]);
    assert.match(
      v2Lines.get("version-negotiation")!.text,
      /no version in common; .*expected one of 2; got version 1$/,
    );
    assert.equal(v2Lines.get("handshake-line")?.verdict, "PASS");
  },
});

Deno.test({
  name: "cli check: our go-plugin fixture plugin negotiates the highest of 1,2",
  ignore,
  async fn() {
    const run = await plugwire([
      "check",
      ...KV_COOKIE,
      "--versions",
      "1,2",
      "--env",
      "GOPLUGIN_VERSIONS=1,2",
      "--",
      peers.GO_FIXTURE_PLUGIN,
    ]);
    assert.equal(run.code, 0, run.stdout + run.stderr);
    assert.equal(
      reportLines(run.stdout).get("version-negotiation")?.text,
      "offered 1,2 → 2 (supports 1,2)",
    );
  },
});

Deno.test({
  name: "cli check: python-plugin's greeter leaves its certificate files behind",
  ignore,
  async fn() {
    const run = await plugwire([
      "check",
      ...GREETER_COOKIE,
      "--",
      peers.PY_VENV_PYTHON,
      peers.PY_GREETER_PLUGIN,
    ]);
    assert.equal(run.code, 1, run.stdout + run.stderr);
    const lines = reportLines(run.stdout);
    assert.deepEqual(pointsWith(lines, "FAIL"), ["leftovers"]);
    assert.match(
      lines.get("leftovers")!.text,
      /got after the AutoMTLS session: files in PLUGIN_UNIX_SOCKET_DIR\/TMPDIR: tmp\w+\.pem, tmp\w+\.pem, tmp\w+\.pem$/,
    );
    assert.match(lines.get("mtls-certificate")!.text, /^ECDSA P-521, CA, /);
  },
});

Deno.test({
  name: "cli check: pyvider-rpcplugin's differences are FAILs with reasons",
  ignore: ignore,
  async fn() {
    const run = await plugwire([
      "check",
      ...KV_COOKIE,
      "--",
      env.PYVIDER_PYTHON!,
      env.PYVIDER_PLUGIN!,
    ]);
    assert.equal(run.code, 1, run.stdout + run.stderr);
    const lines = reportLines(run.stdout);
    assert.deepEqual(pointsWith(lines, "FAIL"), [
      "cookie",
      "mtls-client-cert-required",
      "mtls-wrong-cert-refused",
      "reflection",
      "unix-socket-dir",
    ]);
    assert.match(
      lines.get("cookie")!.text,
      /got exit status 1, stderr ".*Magic cookie not provided/,
    );
    assert.match(lines.get("unix-socket-dir")!.text, /\/tmp\/pyvider-[0-9a-f]+\.sock$/);
    assert.match(
      lines.get("mtls-certificate")!.text,
      /^ECDSA P-384, .*\(go-plugin's own are P-521\)$/,
    );
    assert.match(lines.get("version-refusal")!.text, /exited \(exit status 1\)/);
    assert.match(lines.get("shutdown")!.text, /^exit status 0/);

    const call = await plugwire([
      "call",
      ...KV_COOKIE,
      "-m",
      "plugin.GRPCController/Shutdown",
      "--",
      env.PYVIDER_PYTHON!,
      env.PYVIDER_PLUGIN!,
    ]);
    assert.equal(call.code, 1);
    assert.match(call.stderr, /the plugin serves no gRPC reflection/);
  },
});

Deno.test({
  name: "cli inspect: the Go KV plugin over AutoMTLS",
  ignore,
  async fn() {
    const run = await plugwire([
      "inspect",
      ...KV_COOKIE,
      "--auto-mtls",
      "--json",
      "--",
      peers.GO_EXAMPLE_KV_PLUGIN,
    ]);
    assert.equal(run.code, 0, run.stdout + run.stderr);
    const report = JSON.parse(run.stdout);
    assert.equal(report.fields.protocol, "grpc");
    assert.equal(report.tls.mode, "mutual");
    assert.equal(report.tls.certificate.curve, "P-521");
    assert.deepEqual(report.tls.certificate.sans, ["DNS:localhost"]);
    assert.deepEqual(report.health, { status: "SERVING" });
    assert.equal(report.stop.how, "shutdown");
    assert.equal(report.stop.exit.code, 0);
    assert.ok(
      report.log.some((r: { message: string }) => r.message === "plugin address"),
      JSON.stringify(report.log),
    );
  },
});

Deno.test({
  name: "cli call: python-plugin's greeter over AutoMTLS; the Go KV plugin's error",
  ignore,
  async fn() {
    const greet = await plugwire([
      "call",
      ...GREETER_COOKIE,
      "--auto-mtls",
      "--json",
      "-m",
      "greeter.Greeter/Count",
      "-d",
      '{"text":"go plugin"}',
      "--",
      peers.PY_VENV_PYTHON,
      peers.PY_GREETER_PLUGIN,
    ]);
    assert.equal(greet.code, 0, greet.stderr);
    assert.equal(greet.stdout, '{"letters":8,"words":2}\n');

    // The Go KV plugin reads kv_<key> from its working directory: a missing key is its error.
    const missing = await plugwire([
      "call",
      ...KV_COOKIE,
      "-m",
      "proto.KV/Get",
      "-d",
      '{"key":"plugwire-cli-absent"}',
      "--",
      peers.GO_EXAMPLE_KV_PLUGIN,
    ]);
    assert.equal(missing.code, 1);
    assert.match(
      missing.stderr,
      /^plugwire call: UNKNOWN: open kv_plugwire-cli-absent: no such file/m,
    );
  },
});

testNoLeftovers();
