/**
 * The `plugwire` command line, `inspect` and `call`, against plugwire's helper plugin. `check`
 * is in cli_check_test.ts, the front ends in cli_tasks_test.ts, the real peers in
 * cli_interop_test.ts.
 *
 * @module
 */

import assert from "node:assert/strict";
import { denoCommand, testNoLeftovers } from "./_util.ts";
import { plugwire } from "./_cli.ts";

const HELPER = denoCommand("tests/fixtures/helper_plugin.ts");
const COOKIE = ["--cookie", "BASIC_PLUGIN=hello", "--timeout", "30s"];

// ---------------------------------------------------------------------------------------------
// The command line

Deno.test("cli: --help for the command and every subcommand", async () => {
  const top = await plugwire(["--help"]);
  assert.equal(top.code, 0);
  for (const sub of ["inspect", "call", "check", "codegen", "bundle", "gateway"]) {
    assert.match(top.stdout, new RegExp(`^  ${sub} `, "m"));
    const help = await plugwire([sub, "--help"]);
    assert.equal(help.code, 0, sub);
    assert.match(help.stdout, new RegExp(`^plugwire ${sub}`), sub);
    assert.equal(help.stderr, "");
  }
  assert.equal((await plugwire([])).code, 0);
  assert.match((await plugwire(["call", "-h"])).stdout, /--method/);
});

Deno.test("cli: command lines it cannot run exit 2 and say what to do", async () => {
  const cases: [string[], RegExp][] = [
    [["frobnicate"], /unknown subcommand "frobnicate": use one of inspect, call, check/],
    [["--verbose"], /unknown option --verbose/],
    [["check", "--", "./plugin"], /--cookie KEY=VALUE is required.*BASIC_PLUGIN=hello/],
    [
      ["check", "--cookie", "BASIC_PLUGIN", "--", "x"],
      /--cookie "BASIC_PLUGIN": write it as KEY=VALUE/,
    ],
    [["inspect", "--cookie", "A=b"], /no plugin command: put it after --/],
    [
      ["inspect", "--cookie", "A=b", "./plugin"],
      /unexpected "\.\/plugin": put the plugin command after --/,
    ],
    [
      ["check", "--cookie", "A=b", "--versions", "1,two", "--", "x"],
      /--versions "1,two": give whole numbers/,
    ],
    [
      ["check", "--cookie", "A=b", "--timeout", "soon", "--", "x"],
      /--timeout "soon": give a duration like 30s/,
    ],
    [
      ["check", "--cookie", "A=b", "--network", "udp", "--", "x"],
      /--network "udp": use unix or tcp/,
    ],
    [["check", "--cookie", "A=b", "--colour", "--", "x"], /Unknown option '--colour'/],
    [
      ["call", "--cookie", "A=b", "--", "x"],
      /--method is required: name it as package\.Service\/Method/,
    ],
    [["gateway"], /--config is required/],
    [["bundle", "only-one.ts"], /give the plugin's entry file and the output file/],
  ];
  for (const [args, message] of cases) {
    const run = await plugwire(args);
    assert.equal(run.code, 2, args.join(" "));
    assert.match(run.stderr, message, args.join(" "));
    assert.match(run.stderr, /run plugwire (\w+ )?--help/, args.join(" "));
    assert.equal(run.stdout, "");
  }
});

Deno.test("cli: colours only on a terminal, never with NO_COLOR", async () => {
  const args = ["check", "--", "./plugin"]; // fails: no --cookie
  const tty = await plugwire(args, { terminal: true, env: { NO_COLOR: "" } });
  assert.ok(tty.stderr.startsWith("\x1b[31mplugwire\x1b[39m: "), tty.stderr);
  const noColor = await plugwire(args, { terminal: true, env: { NO_COLOR: "1" } });
  assert.match(noColor.stderr, /^plugwire: /);
  const pipe = await plugwire(args, { terminal: false, env: { NO_COLOR: "" } });
  assert.ok(!pipe.stderr.includes("\x1b"), pipe.stderr);
});

// ---------------------------------------------------------------------------------------------
// inspect and call

Deno.test("cli inspect: handshake, TLS, services, health, log records and the stop", async () => {
  const args = ["inspect", ...COOKIE, "--auto-mtls", "--env", "HELPER_MODE=stderr-json", "--"];
  const run = await plugwire([...args, ...HELPER]);
  assert.equal(run.code, 0, run.stdout + run.stderr);
  const out = run.stdout;
  assert.match(out, /^handshake line +"1\|1\|unix\|.*\|grpc\|MII[^"]+"$/m);
  assert.match(out, /^ {2}core-version +1$/m);
  assert.match(out, /^ {2}certificate +MII.*\(\d+ chars, unpadded base64\)$/m);
  assert.match(out, /^tls +mutual TLS \(AutoMTLS\)$/m);
  assert.match(
    out,
    /^ {2}certificate +ECDSA P-521, CA, subject O=HashiCorp, CN=localhost, SAN DNS:localhost/m,
  );
  assert.match(out, /^health +plugin: SERVING$/m);
  assert.match(out, /^ {2}grpctest\.Test$/m);
  assert.match(out, /^ {4}Count\(streams\.Number\) → streams\.Number \[server-streaming\]$/m);
  assert.match(out, /^stopped +by Shutdown, exit status 0$/m);
  assert.match(out, /^ {2}shutdown +\d+ ms, exited, reply OK$/m);
  assert.match(out, /^ {2}\[WARN\] {2}helper: json warning: answer=42 nested=\{"a":1\}$/m);
  assert.match(out, /^ {2}\[ERROR\] a plain error line$/m);

  const json = JSON.parse(
    (await plugwire([...args.slice(0, 1), "--json", ...args.slice(1), ...HELPER])).stdout,
  );
  assert.equal(json.fields["core-version"], "1");
  assert.equal(json.version.negotiated, 1);
  assert.equal(json.tls.certificate.curve, "P-521");
  assert.deepEqual(json.health, { status: "SERVING" });
  assert.equal(json.stop.how, "shutdown");
  assert.ok(json.reflection.services.some((s: { service: string }) => s.service === "proto.KV"));
  assert.deepEqual(json.errors, []);
});

Deno.test("cli inspect: a plugin that fails says why (exit status, stderr, cookie hint)", async () => {
  const early = await plugwire([
    "inspect",
    ...COOKIE,
    "--env",
    "HELPER_MODE=exit-early",
    "--",
    ...HELPER,
  ]);
  assert.equal(early.code, 1);
  assert.match(early.stdout, /^exited +exit status 3$/m);
  assert.match(early.stdout, /^ {2}\[DEBUG\] fatal: cannot open the database$/m);
  assert.match(early.stdout, /^error: the plugin exited before printing its handshake line/m);

  const cookie = await plugwire(["inspect", "--cookie", "BASIC_PLUGIN=wrong", "--", ...HELPER]);
  assert.equal(cookie.code, 1);
  assert.match(cookie.stdout, /it says it did not get its magic cookie: check --cookie KEY=VALUE/);

  const garbage = await plugwire([
    "inspect",
    ...COOKIE,
    "--env",
    "HELPER_MODE=garbage",
    "--",
    ...HELPER,
  ]);
  assert.equal(garbage.code, 1);
  assert.match(
    garbage.stdout,
    /^error: Unrecognized remote plugin message: this is not a handshake$/m,
  );
  // go-plugin's notes on the executable follow (here the deno binary the command runs).
  assert.match(garbage.stdout, /^This usually means$/m);
  assert.match(garbage.stdout, /^ {2}Format: ELF, machine /m);
});

Deno.test("cli inspect: a step over a second gets a progress line", async () => {
  const run = await plugwire([
    "inspect",
    ...COOKIE,
    "--env",
    "HELPER_MODE=slow-start",
    "--env",
    "HELPER_DELAY_MS=1500",
    "--",
    ...HELPER,
  ]);
  assert.equal(run.code, 0);
  assert.match(run.stderr, /^plugwire: starting the plugin…$/m);
});

Deno.test("cli call: unary and server-streaming methods, --data text, @file and -", async () => {
  const unary = await plugwire([
    "call",
    ...COOKIE,
    "-m",
    "grpctest.Test/Double",
    "-d",
    '{"input": 21}',
    "--",
    ...HELPER,
  ]);
  assert.equal(unary.code, 0, unary.stderr);
  assert.equal(unary.stdout, '{\n  "output": 42\n}\n');

  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/request.json`, '{"value": "3"}');
    const stream = await plugwire([
      "call",
      ...COOKIE,
      "--json",
      "--method",
      "streams.Streams/Count",
      "--data",
      `@${dir}/request.json`,
      "--",
      ...HELPER,
    ]);
    assert.equal(stream.code, 0, stream.stderr);
    assert.equal(stream.stdout, '{}\n{"value":"1"}\n{"value":"2"}\n');
  } finally {
    await Deno.remove(dir, { recursive: true });
  }

  const stdin = await plugwire(
    ["call", ...COOKIE, "--json", "-m", "grpctest.Test.Double", "-d", "-", "--", ...HELPER],
    { stdin: '{"input": 5}' },
  );
  assert.equal(stdin.stdout, '{"output":10}\n');
});

Deno.test("cli call: errors name the method, the field or the status", async () => {
  const noMethod = await plugwire(["call", ...COOKIE, "-m", "proto.KV/Delete", "--", ...HELPER]);
  assert.equal(noMethod.code, 1);
  assert.match(noMethod.stderr, /service proto\.KV has no method "Delete"; its methods: Get, Put/);

  const badField = await plugwire([
    "call",
    ...COOKIE,
    "-m",
    "proto.KV/Get",
    "-d",
    '{"key": 7}',
    "--",
    ...HELPER,
  ]);
  assert.equal(badField.code, 1);
  assert.match(
    badField.stderr,
    /not a valid proto\.GetRequest in JSON: .*proto\.GetRequest\.key.*got 7/,
  );

  const notFound = await plugwire([
    "call",
    ...COOKIE,
    "-m",
    "proto.KV/Get",
    "-d",
    '{"key":"a"}',
    "--",
    ...HELPER,
  ]);
  assert.equal(notFound.code, 1);
  assert.match(notFound.stderr, /^plugwire call: NOT_FOUND: no key a$/m);

  const badJson = await plugwire([
    "call",
    ...COOKIE,
    "-m",
    "proto.KV/Get",
    "-d",
    "{key}",
    "--",
    ...HELPER,
  ]);
  assert.equal(badJson.code, 2);
  assert.match(badJson.stderr, /the request in --data is not JSON/);

  const noFile = await plugwire([
    "call",
    ...COOKIE,
    "-m",
    "proto.KV/Get",
    "-d",
    "@/nonexistent.json",
    "--",
    ...HELPER,
  ]);
  assert.equal(noFile.code, 2);
  assert.match(noFile.stderr, /--data @\/nonexistent\.json: cannot read/);

  const missing = await plugwire([
    "call",
    ...COOKIE,
    "-m",
    "proto.KV/Get",
    "--",
    "/nonexistent/plugin",
  ]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /cannot start "\/nonexistent\/plugin": .*check the path after --/);
});

testNoLeftovers();
