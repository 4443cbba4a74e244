/**
 * The `plugwire` command against plugwire's own plugins: the helper plugin, the KV example and
 * a hand-built plugin that breaks one protocol point at a time (tests/fixtures/
 * cli_broken_plugin.ts). The real third-party peers are in cli_interop_test.ts.
 *
 * @module
 */

import assert from "node:assert/strict";
import { denoCommand, killQuietly, TEST_MARK, testNoLeftovers } from "./_util.ts";
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
// check

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

// ---------------------------------------------------------------------------------------------
// bundle, codegen, gateway, and the installed forms

Deno.test("cli bundle: a bundled plugin passes check; the bundled command runs", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const plugin = await plugwire(["bundle", "examples/kv/plugin.ts", `${dir}/kv-plugin`]);
    assert.equal(plugin.code, 0, plugin.stderr);
    // Its shebang runs `deno` from PATH.
    const path = `${Deno.execPath().replace(/\/[^/]+$/, "")}:${Deno.env.get("PATH")}`;
    const check = await plugwire([
      "check",
      ...COOKIE,
      "--env",
      `PATH=${path}`,
      "--",
      `${dir}/kv-plugin`,
    ]);
    assert.equal(check.code, 0, check.stdout);

    const cli = await plugwire(["bundle", "cli.ts", `${dir}/plugwire`]);
    assert.equal(cli.code, 0, cli.stderr);
    assert.match(
      await Deno.readTextFile(`${dir}/plugwire`),
      /^#!\/usr\/bin\/env -S deno run .* -A\n/,
    );
    const run = (args: string[]) =>
      new Deno.Command(`${dir}/plugwire`, {
        args,
        env: {
          PATH: path,
          PLUGWIRE_TEST_MARK: TEST_MARK,
        },
        stdout: "piped",
        stderr: "piped",
      }).output();
    const checked = await run(["check", ...COOKIE, "--", ...BROKEN]);
    assert.equal(checked.code, 0, new TextDecoder().decode(checked.stdout));
    assert.match(new TextDecoder().decode(checked.stdout), /^check: 15 passed, 0 failed/m);
    // codegen needs the checkout's scripts, which a bundled file does not carry.
    const codegen = await run(["codegen"]);
    assert.equal(codegen.code, 2);
    assert.match(
      new TextDecoder().decode(codegen.stderr),
      /codegen is a task of a plugwire checkout/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cli codegen: regenerates gen/ in a copy of the checkout, identical to ours", async () => {
  const root = new URL("../", import.meta.url).pathname;
  const copy = await Deno.makeTempDir({ prefix: "plugwire-codegen-" });
  try {
    // A copy of what codegen reads and runs; the Deno and buf installs are shared by symlink.
    for (const entry of Deno.readDirSync(root)) {
      const skip = [
        "node_modules",
        ".tools",
        ".codegen",
        ".git",
        ".cache",
        ".bench-tmp",
        "tests",
        "bench",
      ];
      if (skip.includes(entry.name)) {
        if ([".tools", ".codegen", "node_modules"].includes(entry.name)) {
          await Deno.symlink(`${root}${entry.name}`, `${copy}/${entry.name}`);
        }
        continue;
      }
      const cp = await new Deno.Command("cp", { args: ["-R", `${root}${entry.name}`, copy] })
        .output();
      assert.ok(cp.success, `cp ${entry.name}`);
    }
    await Deno.remove(`${copy}/gen`, { recursive: true });
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--quiet", `${copy}/cli.ts`, "codegen"],
      cwd: copy,
      env: { NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 0, stderr);
    assert.match(stderr, /generated: \d+ files/);
    const files = (dir: string): string[] =>
      [...Deno.readDirSync(dir)].flatMap((e) =>
        e.isDirectory ? files(`${dir}/${e.name}`).map((f) => `${e.name}/${f}`) : [e.name]
      ).sort();
    const ours = files(`${root}gen`);
    assert.deepEqual(files(`${copy}/gen`), ours);
    for (const file of ours) {
      assert.equal(
        await Deno.readTextFile(`${copy}/gen/${file}`),
        await Deno.readTextFile(`${root}gen/${file}`),
        file,
      );
    }
  } finally {
    await Deno.remove(copy, { recursive: true });
  }
});

Deno.test("cli gateway: starts the gateway from a TOML file and stops on SIGTERM", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/hello.ts`, `export default { handle: () => ["hello"] };\n`);
    await Deno.writeTextFile(
      `${dir}/plugwire.toml`,
      `listen = "127.0.0.1:0"\n[plugins.hello]\nmodule = "hello.ts"\npublic = true\n`,
    );
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        "--quiet",
        new URL("../cli.ts", import.meta.url).pathname,
        "gateway",
        "-c",
        `${dir}/plugwire.toml`,
      ],
      env: { PLUGWIRE_TEST_MARK: TEST_MARK },
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    try {
      const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
      let out = "";
      while (!out.includes("\n")) {
        const { value, done } = await reader.read();
        if (done) break;
        out += value;
      }
      const url = /listening on (\S+)/.exec(out)?.[1];
      assert.ok(url, out);
      const reply = await fetch(`${url}/hello`);
      assert.deepEqual(await reply.json(), ["hello"]);
      child.kill("SIGTERM");
      await reader.cancel();
      const status = await child.status;
      assert.equal(status.code, 0);
    } finally {
      killQuietly(child);
      await child.stderr.cancel().catch(() => {});
    }

    const missing = await plugwire(["gateway", "--config", `${dir}/nope.toml`]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /^plugwire gateway: .*nope\.toml/m);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

testNoLeftovers();
