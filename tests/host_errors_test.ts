/**
 * Every way go-plugin's host refuses a plugin, each against a real child process (the helper
 * plugin in a mode that misbehaves): the error is a PluginError with the right code and
 * go-plugin's wording, and nothing is left behind — no process, no socket dir.
 */

import assert from "node:assert/strict";
import { type StartOptions, startPlugin } from "../host.ts";
import { KV } from "../gen/kv/kv_pb.ts";
import {
  assertNothingLeft,
  HANDSHAKE,
  helperPlugin,
  startFails,
  TEST_MARK,
  testNoLeftovers,
  testRoot,
} from "./_util.ts";

const encode = (s: string) => new TextEncoder().encode(s);
const decode = (b: Uint8Array) => new TextDecoder().decode(b);

const kvPlugins = { plugins: { kv: KV } };

Deno.test("bad core version: incompatible-core-version, go-plugin's message", async () => {
  const err = await startFails({ ...helperPlugin("bad-core-version"), ...kvPlugins });
  assert.equal(err.code, "incompatible-core-version");
  assert.equal(
    err.message,
    "incompatible core API version with plugin. Plugin version: 2, Core version: 1\n\n" +
      "To fix this, the plugin usually only needs to be recompiled.\n" +
      "Please report this to the plugin author",
  );
  assertNothingLeft();
});

Deno.test("bad app version: incompatible-app-version listing both sides", async () => {
  const err = await startFails({ ...helperPlugin("bad-app-version"), ...kvPlugins });
  assert.equal(err.code, "incompatible-app-version");
  assert.equal(
    err.message,
    "incompatible API version with plugin. Plugin version: 11, Client versions: [1]",
  );
  assertNothingLeft();
});

Deno.test("garbage line: unrecognized-handshake with diagnostics and the path", async () => {
  const options = helperPlugin("garbage");
  const err = await startFails({ ...options, ...kvPlugins });
  assert.equal(err.code, "unrecognized-handshake");
  assert.ok(
    err.message.startsWith("Unrecognized remote plugin message: this is not a handshake\n"),
    err.message,
  );
  assert.ok(err.message.includes("This usually means\n"), err.message);
  assert.ok(
    err.message.includes("the plugin failed to negotiate the initial go-plugin protocol handshake"),
    err.message,
  );
  const executable = (options.cmd as string[])[0];
  assert.ok(err.message.includes(`Path: ${executable}`), err.message);
  assert.equal(err.path, executable);
  assertNothingLeft();
});

Deno.test("netrpc plugin: unsupported-protocol", async () => {
  const err = await startFails({ ...helperPlugin("netrpc"), ...kvPlugins });
  assert.equal(err.code, "unsupported-protocol");
  assert.ok(
    err.message.startsWith('unsupported plugin protocol "netrpc". Supported: [grpc]'),
    err.message,
  );
  assertNothingLeft();
});

Deno.test("unknown network: unknown-network naming the address", async () => {
  const err = await startFails({ ...helperPlugin("unknown-network"), ...kvPlugins });
  assert.equal(err.code, "unknown-network");
  assert.equal(err.message, "unknown address type: coop:7");
  assertNothingLeft();
});

Deno.test("silent plugin: start-timeout well before the default, process killed", async () => {
  const started = Date.now();
  const err = await startFails({ ...helperPlugin("never"), ...kvPlugins, startTimeoutMs: 300 });
  const elapsed = Date.now() - started;
  assert.equal(err.code, "start-timeout");
  assert.ok(err.message.startsWith("timeout while waiting for plugin to start"), err.message);
  assert.ok(err.message.includes("300 ms"), err.message);
  // The default is a minute; 300 ms plus a kill must be far below it.
  assert.ok(elapsed < 20_000, `took ${elapsed} ms`);
  assertNothingLeft();
});

Deno.test({
  name: "plugin exiting early: exited-before-connect with its stderr (console.error)",
  // Regression: the output capture once held stderr from module load, so what a plugin wrote
  // with console.error before serve() never reached the host's stderr and a plugin that died
  // before its handshake lost its last words (go-plugin swaps os.Stderr only after it).
  async fn() {
    const err = await startFails({ ...helperPlugin("exit-early"), ...kvPlugins });
    assert.equal(err.code, "exited-before-connect");
    assert.ok(err.message.startsWith("plugin exited before we could connect"), err.message);
    assert.ok(err.message.includes("status 3"), err.message);
    assert.ok(err.message.includes("fatal: cannot open the database"), err.message);
    assert.ok(err.stderrTail.includes("fatal: cannot open the database"), `${err.stderrTail}`);
    assertNothingLeft();
  },
});

Deno.test("plugin exiting early: exited-before-connect with its real stderr and status", async () => {
  const err = await startFails({ ...helperPlugin("exit-early-real"), ...kvPlugins });
  assert.equal(err.code, "exited-before-connect");
  assert.ok(err.message.startsWith("plugin exited before we could connect"), err.message);
  assert.ok(err.message.includes("status 3"), err.message);
  assert.ok(err.message.includes("fatal: cannot open the database"), err.message);
  assert.deepEqual(err.stderrTail, ["fatal: cannot open the database"]);
  assertNothingLeft();
});

Deno.test("a missing executable: a PluginError naming it, nothing left", async () => {
  const missing = `${testRoot()}/no-such-dir/no-such-plugin`;
  const err = await startFails({
    ...helperPlugin("serve"),
    cmd: [missing, "--flag"],
    ...kvPlugins,
  });
  assert.equal(err.code, "exited-before-connect");
  assert.ok(err.message.includes('"no-such-plugin"'), err.message);
  assert.ok(err.message.includes("ENOENT"), err.message);
  assert.equal(err.path, missing);
  assertNothingLeft();
});

Deno.test("AutoMTLS asked, plugin answers plaintext: tls-required, no fallback", async () => {
  const err = await startFails({ ...helperPlugin("mtls-no-cert"), ...kvPlugins, autoMtls: true });
  assert.equal(err.code, "tls-required");
  assert.ok(err.message.includes("did not return a certificate"), err.message);
  assert.ok(err.message.includes("refusing to fall back to plaintext"), err.message);
  assertNothingLeft();
});

Deno.test("AutoMTLS asked, plugin answers plaintext: allowPlaintextFallback connects", async () => {
  const plugin = await startPlugin({
    ...helperPlugin("mtls-no-cert"),
    ...kvPlugins,
    autoMtls: true,
    allowPlaintextFallback: true,
  });
  try {
    assert.equal(plugin.reattachConfig().tls, undefined, "fell back, yet claims TLS");
    const kv = plugin.dispense("kv");
    await kv.put({ key: "k", value: encode("plain") });
    assert.equal(decode((await kv.get({ key: "k" })).value), "plain");
  } finally {
    await plugin.kill();
  }
  assert.deepEqual(await plugin.exited, { code: 0, signal: null });
  assertNothingLeft();
});

Deno.test("aborting the start through `signal`: closed, process killed", async () => {
  const controller = new AbortController();
  const reason = new Error("the user gave up");
  const timer = setTimeout(() => controller.abort(reason), 200);
  try {
    const err = await startFails({
      ...helperPlugin("never"),
      ...kvPlugins,
      signal: controller.signal,
    });
    assert.equal(err.code, "closed");
    assert.ok(err.message.includes("was aborted"), err.message);
    assert.equal(err.cause, reason);
  } finally {
    clearTimeout(timer);
  }
  assertNothingLeft();
});

Deno.test("an already aborted `signal`: closed, process killed", async () => {
  const err = await startFails({
    ...helperPlugin("never"),
    ...kvPlugins,
    signal: AbortSignal.abort(),
  });
  assert.equal(err.code, "closed");
  assertNothingLeft();
});

Deno.test("misconfigured options: cmd and reattach, neither, checksum with reattach", async () => {
  const reattach = {
    protocol: "grpc" as const,
    protocolVersion: 1,
    network: "unix" as const,
    address: `${testRoot()}/nothing-here`,
    pid: 1,
  };
  const base = { handshake: HANDSHAKE, ...kvPlugins, logger: () => {} };
  const env = { PLUGWIRE_TEST_MARK: TEST_MARK };

  let err = await startFails({ ...base, env, cmd: helperPlugin("serve").cmd, reattach });
  assert.equal(err.code, "misconfigured");
  assert.equal(err.message, "exactly one of cmd or reattach must be set");

  err = await startFails({ ...base });
  assert.equal(err.code, "misconfigured");
  assert.equal(err.message, "exactly one of cmd or reattach must be set");

  err = await startFails({ ...base, reattach, checksum: { digest: "00".repeat(32) } });
  assert.equal(err.code, "misconfigured");
  assert.equal(err.message, "only one of Reattach or SecureConfig can be set");
  assertNothingLeft();
});

/** True while the pid is a live process (a zombie counts as gone). */
function alive(pid: number): boolean {
  try {
    return !/^State:\s+Z/m.test(Deno.readTextFileSync(`/proc/${pid}/status`));
  } catch {
    return false;
  }
}

Deno.test("a failed start names the pid it started, and that process is gone", async () => {
  for (const mode of ["exit-early-real", "garbage", "bad-app-version", "never"]) {
    const err = await startFails({ ...helperPlugin(mode), ...kvPlugins, startTimeoutMs: 2000 });
    assert.equal(typeof err.pid, "number", `${mode}: ${err.code} names no pid`);
    assert.ok(!alive(err.pid!), `${mode}: pid ${err.pid} is still alive`);
    assert.ok(err.path?.endsWith("deno"), `${mode}: path ${err.path}`);
  }
  // Nothing was started: no pid to name.
  const err = await startFails({
    ...helperPlugin("serve"),
    cmd: ["/nonexistent/plugin"],
    ...kvPlugins,
  });
  assert.equal(err.pid, undefined);
  assertNothingLeft();
});

Deno.test("a plugin whose serve() throws before the handshake: the host's error carries why", async () => {
  const err = await startFails({ ...helperPlugin("serve-throws"), ...kvPlugins });
  assert.equal(err.code, "exited-before-connect");
  assert.match(err.message, /no TLS certificate in \/etc\/helper\/tls\.pem/);
  assert.ok(
    err.stderrTail.some((line) => line.includes("no TLS certificate")),
    `${err.stderrTail}`,
  );
  assertNothingLeft();
});

Deno.test("a plugin missing a method: the host's error names the method", async () => {
  const err = await startFails({ ...helperPlugin("missing-method"), ...kvPlugins });
  assert.equal(err.code, "exited-before-connect");
  assert.match(err.message, /no implementation of get\(\)/);
  assertNothingLeft();
});

Deno.test("bad options: misconfigured before anything starts, tls with autoMtls refused", async () => {
  const options = { ...helperPlugin("serve"), ...kvPlugins };
  const tls = { cert: "-----BEGIN CERTIFICATE-----", key: "k", ca: "c" };
  const cases: Array<[string, StartOptions, RegExp]> = [
    [
      "tls + autoMtls",
      { ...options, tls, autoMtls: true },
      /tls and autoMtls cannot be used together/,
    ],
    [
      "tls without a key",
      { ...options, tls: { ...tls, key: "" } },
      /tls needs a cert, a key and a ca/,
    ],
    ["startTimeoutMs 0", { ...options, startTimeoutMs: 0 }, /startTimeoutMs must be/],
    ["killGraceMs NaN", { ...options, killGraceMs: NaN }, /killGraceMs must be/],
    ["minPort > maxPort", { ...options, minPort: 3000, maxPort: 2000 }, /minPort 3000 is greater/],
    ["port 70000", { ...options, maxPort: 70000 }, /maxPort must be a port number/],
    ["stdin", { ...options, stdin: "pipe" as "null" }, /stdin must be one of/],
    [
      "protocolVersion",
      { ...options, handshake: { ...HANDSHAKE, protocolVersion: 0 } },
      /protocolVersion/,
    ],
    ["empty cmd", { ...options, cmd: [] }, /cmd needs an executable/],
    ["syncStdout", { ...options, syncStdout: "file" as "inherit" }, /syncStdout must be one of/],
    [
      "checksum algorithm",
      { ...options, checksum: { algorithm: "MD5" as "SHA-1", digest: "00" } },
      /checksum.algorithm must be one of/,
    ],
    [
      "unixSocketDir missing",
      { ...options, unixSocketDir: `${testRoot()}/missing` },
      /socket directory.*ENOENT/,
    ],
  ];
  for (const [what, bad, message] of cases) {
    const err = await startFails(bad);
    assert.equal(err.code, "misconfigured", `${what}: ${err.code} ${err.message}`);
    assert.match(err.message, message, what);
  }
  assertNothingLeft();
});

testNoLeftovers();
