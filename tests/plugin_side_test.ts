/**
 * The plugin side of go-plugin's handshake, with the helper plugin run by hand (Deno.Command):
 * the cookie check and its messages, the exact handshake line on unix and TCP, the port range,
 * version parsing, signals, the socket group; and, through a host, the plugin's stdin and
 * environment.
 */

import assert from "node:assert/strict";
import { dirname } from "node:path";
import { RpcError, startPlugin, Status } from "../host.ts";
import { KV } from "../gen/kv/kv_pb.ts";
import { generateCertificate } from "../internal/mtls.ts";
import { derToPem } from "../internal/pem.ts";
import { type Ended, runToEnd, startByHand } from "./_by_hand.ts";
import {
  eventually,
  HANDSHAKE,
  helperPlugin,
  repoUrl,
  runDenoEval,
  testNoLeftovers,
  testRoot,
} from "./_util.ts";

const encode = (s: string) => new TextEncoder().encode(s);
const decode = (b: Uint8Array) => new TextDecoder().decode(b);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const COOKIE = { [HANDSHAKE.magicCookieKey]: HANDSHAKE.magicCookieValue };

const COOKIE_MESSAGE = "This binary is a plugin. These are not meant to be executed directly.\n" +
  "Please execute the program that consumes these plugins, which will\n" +
  "load any plugins automatically\n";

const MISCONFIGURED_MESSAGE =
  "Misconfigured ServeConfig given to serve this plugin: no magic cookie\n" +
  "key or value was set. Please notify the plugin author and report\n" +
  "this as a bug.\n";

function exists(path: string): boolean {
  try {
    Deno.lstatSync(path);
    return true;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return false;
    throw err;
  }
}

/** A fresh directory for one plugin's sockets, inside the test root. */
function freshDir(): string {
  return Deno.makeTempDirSync({ dir: testRoot(), prefix: "by-hand-" });
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

function socketLine(dir: string, tail = "\\|grpc\\|\\n"): RegExp {
  return new RegExp(`^1\\|1\\|unix\\|(${escapeRegExp(dir)}/plugin\\d+)${tail}$`);
}

for (
  const [what, cookie] of [
    ["without the cookie", {}],
    ["with a wrong cookie value", { [HANDSHAKE.magicCookieKey]: "not-hello" }],
  ] as const
) {
  Deno.test(`run by hand ${what}: go-plugin's message, exit 1, no socket`, async () => {
    const dir = freshDir();
    const { status, stdout, stderr } = await runToEnd({
      ...cookie,
      HELPER_MODE: "serve",
      PLUGIN_UNIX_SOCKET_DIR: dir,
    });
    assert.equal(stderr, COOKIE_MESSAGE);
    assert.equal(stdout, "");
    assert.deepEqual(status, { code: 1, signal: null });
    assert.deepEqual([...Deno.readDirSync(dir)], [], "a socket was created");
    Deno.removeSync(dir);
  });
}

Deno.test("serve() with an empty cookie value: the misconfiguration message, exit 1", async () => {
  const dir = freshDir();
  const { status, stdout, stderr } = await runToEnd({
    ...COOKIE,
    HELPER_MODE: "empty-cookie",
    PLUGIN_PROTOCOL_VERSIONS: "1",
    PLUGIN_UNIX_SOCKET_DIR: dir,
  });
  assert.equal(stderr, MISCONFIGURED_MESSAGE);
  assert.equal(stdout, "");
  assert.deepEqual(status, { code: 1, signal: null });
  assert.deepEqual([...Deno.readDirSync(dir)], []);
  Deno.removeSync(dir);
});

Deno.test("the handshake line on unix: exact shape; SIGTERM exits 143 and removes the socket", async () => {
  const dir = freshDir();
  const plugin = await startByHand({
    ...COOKIE,
    HELPER_MODE: "serve",
    PLUGIN_PROTOCOL_VERSIONS: "1",
    PLUGIN_UNIX_SOCKET_DIR: dir,
  });
  let ended: Ended | undefined;
  try {
    const match = socketLine(dir).exec(plugin.line);
    assert.ok(match, `handshake line ${JSON.stringify(plugin.line)}`);
    const socket = match[1];
    assert.ok(Deno.lstatSync(socket).isSocket);
    ended = await plugin.stop("SIGTERM");
    // serve()'s SIGTERM handler removes the socket, then exits 143 (128 + SIGTERM).
    assert.deepEqual(ended.status, { code: 143, signal: null });
    assert.ok(!exists(socket), "the socket file outlived SIGTERM");
    assert.equal(ended.stdout, "", "more than the handshake line on the real stdout");
  } finally {
    ended ??= await plugin.stop("SIGKILL");
  }
  assert.deepEqual([...Deno.readDirSync(dir)], []);
  Deno.removeSync(dir);
});

Deno.test("PLUGIN_MULTIPLEX_GRPC set: the line gains a 7th field, false", async () => {
  const dir = freshDir();
  const plugin = await startByHand({
    ...COOKIE,
    HELPER_MODE: "serve",
    PLUGIN_PROTOCOL_VERSIONS: "1",
    PLUGIN_UNIX_SOCKET_DIR: dir,
    PLUGIN_MULTIPLEX_GRPC: "true",
  });
  try {
    assert.match(plugin.line, socketLine(dir, "\\|grpc\\|\\|false\\n"));
  } finally {
    await plugin.stop();
  }
  Deno.removeSync(dir);
});

/** A few consecutive ports that were free a moment ago. */
function freePortRange(size: number): [number, number] {
  for (let attempt = 0; attempt < 20; attempt++) {
    const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const min = (probe.addr as Deno.NetAddr).port;
    probe.close();
    if (min + size - 1 > 65535) continue;
    let free = true;
    for (let port = min; port < min + size && free; port++) {
      try {
        Deno.listen({ hostname: "127.0.0.1", port }).close();
      } catch {
        free = false;
      }
    }
    if (free) return [min, min + size - 1];
  }
  throw new Error("no free port range");
}

Deno.test("TCP: the line names 127.0.0.1 and a port within PLUGIN_MIN_PORT..MAX_PORT", async () => {
  const [min, max] = freePortRange(5);
  const plugin = await startByHand({
    ...COOKIE,
    HELPER_MODE: "serve",
    HELPER_NETWORK: "tcp",
    PLUGIN_PROTOCOL_VERSIONS: "1",
    PLUGIN_MIN_PORT: String(min),
    PLUGIN_MAX_PORT: String(max),
  });
  try {
    const match = /^1\|1\|tcp\|127\.0\.0\.1:(\d+)\|grpc\|\n$/.exec(plugin.line);
    assert.ok(match, `handshake line ${JSON.stringify(plugin.line)}`);
    const port = Number(match[1]);
    assert.ok(port >= min && port <= max, `port ${port} outside ${min}..${max}`);
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    conn.close();
  } finally {
    await plugin.stop();
  }
});

Deno.test("TCP with PLUGIN_MIN_PORT > PLUGIN_MAX_PORT: go-plugin's error, no handshake", async () => {
  const { stdout, stderr } = await runToEnd({
    ...COOKIE,
    HELPER_MODE: "serve",
    HELPER_NETWORK: "tcp",
    PLUGIN_PROTOCOL_VERSIONS: "1",
    PLUGIN_MIN_PORT: "5001",
    PLUGIN_MAX_PORT: "5000",
  });
  assert.ok(
    stderr.includes("PLUGIN_MIN_PORT value of 5001 is greater than PLUGIN_MAX_PORT value of 5000"),
    stderr,
  );
  assert.equal(stdout, "");
});

Deno.test('PLUGIN_PROTOCOL_VERSIONS "x,1": warns about "x" and still negotiates 1', async () => {
  const dir = freshDir();
  const plugin = await startByHand({
    ...COOKIE,
    HELPER_MODE: "serve",
    PLUGIN_PROTOCOL_VERSIONS: "x,1",
    PLUGIN_UNIX_SOCKET_DIR: dir,
  });
  let ended: Ended | undefined;
  try {
    assert.match(plugin.line, socketLine(dir));
  } finally {
    ended = await plugin.stop();
  }
  assert.ok(ended.stderr.includes('server sent invalid plugin version "x"'), ended.stderr);
  Deno.removeSync(dir);
});

Deno.test("SIGINT is ignored: the plugin keeps serving and answers a reattached host", async () => {
  const dir = freshDir();
  const plugin = await startByHand({
    ...COOKIE,
    HELPER_MODE: "serve",
    PLUGIN_PROTOCOL_VERSIONS: "1",
    PLUGIN_UNIX_SOCKET_DIR: dir,
  });
  let ended: Ended | undefined;
  try {
    const socket = socketLine(dir).exec(plugin.line)?.[1];
    assert.ok(socket, `handshake line ${JSON.stringify(plugin.line)}`);
    let exited = false;
    plugin.child.status.then(() => (exited = true));
    plugin.child.kill("SIGINT");
    await sleep(300);
    assert.ok(!exited, "SIGINT ended the plugin");
    assert.ok(Deno.lstatSync(socket).isSocket, "the socket is gone after SIGINT");
    const host = await startPlugin({
      reattach: {
        protocol: "grpc",
        protocolVersion: 1,
        network: "unix",
        address: socket,
        pid: plugin.child.pid,
      },
      handshake: HANDSHAKE,
      plugins: { kv: KV },
      logger: () => {},
    });
    try {
      await host.ping();
      await host.dispense("kv").put({ key: "after", value: encode("SIGINT") });
      assert.equal(decode((await host.dispense("kv").get({ key: "after" })).value), "SIGINT");
    } finally {
      await host.close();
    }
    ended = await plugin.stop("SIGTERM");
    assert.deepEqual(ended.status, { code: 143, signal: null });
  } finally {
    ended ??= await plugin.stop("SIGKILL");
  }
  assert.ok(
    ended.stderr.includes('"@message":"plugin received interrupt signal, ignoring"'),
    ended.stderr,
  );
  Deno.removeSync(dir);
});

Deno.test("stdout while serving does not reach the real stdout; it is streamed to the host", async () => {
  let stdout = "";
  const plugin = await startPlugin({
    ...helperPlugin("stdout-noise"),
    plugins: { kv: KV },
    syncStdout: (bytes) => (stdout += decode(bytes)),
  });
  try {
    await plugin.dispense("kv").put({ key: "a", value: encode("b") });
    assert.equal(decode((await plugin.dispense("kv").get({ key: "a" })).value), "b");
    const expected = "console.log while serving\nprocess.stdout while serving\n" +
      "Deno.stdout while serving\n";
    await eventually("the noise over GRPCStdio", () => stdout === expected);
  } finally {
    await plugin.kill();
  }
  assert.deepEqual(await plugin.exited, { code: 0, signal: null });
});

/** A host of our own that reattaches to a plugin started by hand and calls its KV. */
async function reattachKv(plugin: { child: Deno.ChildProcess }, socket: string) {
  return await startPlugin({
    reattach: {
      protocol: "grpc",
      protocolVersion: 1,
      network: "unix",
      address: socket,
      pid: plugin.child.pid,
    },
    handshake: HANDSHAKE,
    plugins: { kv: KV },
    logger: () => {},
  });
}

Deno.test("only the cookie set (pyvider's host): console output is captured, the plugin keeps answering", async () => {
  const dir = freshDir();
  // No PLUGIN_PROTOCOL_VERSIONS, no port range, and nobody reads stdout after the handshake.
  const plugin = await startByHand(
    { ...COOKIE, HELPER_MODE: "console-flood", PLUGIN_UNIX_SOCKET_DIR: dir },
    { readStdout: false },
  );
  let ended: Ended | undefined;
  try {
    const socket = socketLine(dir).exec(plugin.line)?.[1];
    assert.ok(socket, `handshake line ${JSON.stringify(plugin.line)}`);
    const host = await reattachKv(plugin, socket);
    try {
      // 256 KiB of console.log would fill the stdout pipe and block the plugin's event loop.
      await host.dispense("kv").put({ key: "k", value: encode("v") }, { timeoutMs: 10_000 });
      assert.equal(decode((await host.dispense("kv").get({ key: "k" })).value), "v");
    } finally {
      await host.close();
    }
  } finally {
    ended = await plugin.stop("SIGTERM");
  }
  assert.equal(ended.stdout, "", "console output reached the real stdout");
  Deno.removeSync(dir);
});

Deno.test("importing plugwire changes nothing: a program with PLUGIN_* set keeps its output", async () => {
  const { status, stdout, stderr } = await runToEnd({
    ...COOKIE,
    HELPER_MODE: "import-only",
    PLUGIN_PROTOCOL_VERSIONS: "1",
    PLUGIN_MIN_PORT: "10000",
    PLUGIN_MAX_PORT: "25000",
  });
  assert.deepEqual(status, { code: 0, signal: null });
  assert.equal(stdout, "stdout kept: closed\nprocess.stdout kept\n");
  assert.equal(stderr, "stderr kept\n");
});

for (const end of ["exit", "throw"] as const) {
  Deno.test(`output no host read is written to the real stderr when the plugin ends (${end})`, async () => {
    const dir = freshDir();
    const { status, stdout, stderr } = await runToEnd({
      ...COOKIE,
      HELPER_MODE: "last-words",
      HELPER_END: end,
      PLUGIN_PROTOCOL_VERSIONS: "1",
      PLUGIN_UNIX_SOCKET_DIR: dir,
    });
    assert.match(stdout, socketLine(dir), "anything but the handshake line on stdout");
    assert.deepEqual(status, { code: end === "exit" ? 5 : 1, signal: null });
    assert.ok(stderr.includes("last words on stdout\nlast words on stderr\n"), stderr);
    if (end === "throw") assert.ok(stderr.includes("uncaught after the handshake"), stderr);
    Deno.removeSync(dir, { recursive: true });
  });
}

for (
  const [mode, reason, extraEnv] of [
    ["no-plugins", "Cannot serve: give `plugins` or `versionedPlugins` (misconfigured)", {}],
    [
      "missing-method",
      'plugin "kv": Cannot serve proto.KV: no implementation of get() (misconfigured)',
      {},
    ],
    [
      "tls-and-automtls",
      "the host asked for AutoMTLS (PLUGIN_CLIENT_CERT is set) but serve() was given its own",
      { PLUGIN_CLIENT_CERT: "-----BEGIN CERTIFICATE-----\n" },
    ],
  ] as const
) {
  Deno.test(`${mode}: the reason in plain text on stderr, exit 1, nothing left`, async () => {
    const dir = freshDir();
    const { status, stdout, stderr } = await runToEnd({
      ...COOKIE,
      ...extraEnv,
      HELPER_MODE: mode,
      PLUGIN_UNIX_SOCKET_DIR: dir,
    });
    assert.equal(stdout, "");
    assert.deepEqual(status, { code: 1, signal: null });
    const first = stderr.split("\n")[0];
    assert.ok(first.startsWith(`plugwire: cannot serve this plugin: ${reason}`), stderr);
    assert.deepEqual([...Deno.readDirSync(dir)], [], "a socket was left");
    Deno.removeSync(dir);
  });
}

Deno.test("PLUGIN_CLIENT_CERT that does not parse: logged as go-plugin does, start refused", async () => {
  const { certPem, der } = await generateCertificate();
  const body = (bytes: Uint8Array) => derToPem(bytes).split("\n").slice(1, -2).join("\n");
  const withTrailingBytes = new Uint8Array([...der, 0x00, 0x01]);
  const notACertificate = new Uint8Array([0x30, 0x03, 0x02, 0x01, 0x05]); // SEQUENCE { INTEGER 5 }
  const cases: Record<string, string> = {
    "garbage": "garbage",
    "a BEGIN line only": "-----BEGIN CERTIFICATE-----\n",
    "not base64": "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n",
    "a valid certificate followed by junk": certPem + "junk\n",
    "junk, then a valid certificate": "junk\n" + certPem,
    "DER with trailing bytes": derToPem(withTrailingBytes),
    "DER that is not a certificate": derToPem(notACertificate),
    "a truncated certificate": `-----BEGIN CERTIFICATE-----\n${
      body(der).slice(0, 64)
    }\n-----END CERTIFICATE-----\n`,
  };
  for (const [what, cert] of Object.entries(cases)) {
    const dir = freshDir();
    const { status, stdout, stderr } = await runToEnd({
      ...COOKIE,
      HELPER_MODE: "serve",
      PLUGIN_PROTOCOL_VERSIONS: "1",
      PLUGIN_UNIX_SOCKET_DIR: dir,
      PLUGIN_CLIENT_CERT: cert,
    });
    assert.deepEqual(status, { code: 1, signal: null }, what);
    assert.equal(stdout, "", `${what}: a handshake was printed`);
    const logged = stderr.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l));
    assert.ok(
      logged.some((r) => r["@message"] === "client cert provided but failed to parse"),
      `${what}: ${stderr}`,
    );
    assert.match(
      stderr,
      /^plugwire: cannot serve this plugin: client cert provided but failed to parse: .+ \(bad-certificate\)$/m,
      what,
    );
    assert.deepEqual([...Deno.readDirSync(dir)], [], `${what}: a socket was left`);
    Deno.removeSync(dir);
  }
});

/** The groups to try: the user's own (`id -gn`), and another one this process may use. */
async function socketGroups(): Promise<Array<{ group: string; gid: number }>> {
  const id = async (...args: string[]) => {
    const out = await new Deno.Command("id", { args, stdout: "piped", stderr: "null" }).output();
    return decode(out.stdout).trim();
  };
  const groups = [{ group: await id("-gn"), gid: Deno.gid()! }];
  // A group other than the process's own shows the chown happened.
  const others = (await id("-G")).split(/\s+/).map(Number).filter((g) => g !== Deno.gid());
  if (others.length) groups.push({ group: String(others[0]), gid: others[0] });
  else if (Deno.uid() === 0) groups.push({ group: "1", gid: 1 });
  return groups;
}

Deno.test("PLUGIN_UNIX_SOCKET_GROUP: the socket gets that group and mode 0660", async () => {
  for (const { group, gid } of await socketGroups()) {
    const dir = freshDir();
    const plugin = await startByHand({
      ...COOKIE,
      HELPER_MODE: "serve",
      PLUGIN_PROTOCOL_VERSIONS: "1",
      PLUGIN_UNIX_SOCKET_DIR: dir,
      PLUGIN_UNIX_SOCKET_GROUP: group,
    });
    try {
      const socket = socketLine(dir).exec(plugin.line)?.[1];
      assert.ok(socket, `handshake line ${JSON.stringify(plugin.line)}`);
      const stat = Deno.lstatSync(socket);
      assert.equal(stat.mode! & 0o777, 0o660, `group ${group}`);
      assert.equal(stat.gid, gid, `group ${group}`);
    } finally {
      await plugin.stop();
    }
    Deno.removeSync(dir);
  }
});

Deno.test("startPlugin({ unixSocketGroup }): socket dir 0770 and socket 0660 of that group", async () => {
  const groups = await socketGroups();
  const { group, gid } = groups[1] ?? groups[0];
  const plugin = await startPlugin({
    ...helperPlugin("serve"),
    plugins: { kv: KV },
    unixSocketGroup: group,
  });
  try {
    const dir = Deno.lstatSync(dirname(plugin.address));
    assert.equal(dir.mode! & 0o777, 0o770);
    assert.equal(dir.gid, gid);
    const socket = Deno.lstatSync(plugin.address);
    assert.equal(socket.mode! & 0o777, 0o660);
    assert.equal(socket.gid, gid);
    await plugin.ping();
  } finally {
    await plugin.kill();
  }
});

/** A host program whose stdin the test controls: prints what its plugin read from stdin. */
const STDIN_HOST = `
import { startPlugin } from ${JSON.stringify(repoUrl("host.ts"))};
import { KV } from ${JSON.stringify(repoUrl("gen/kv/kv_pb.ts"))};
const options = JSON.parse(Deno.env.get("STDIN_HOST_OPTIONS"));
await using plugin = await startPlugin({ ...options, plugins: { kv: KV }, logger: () => {} });
const { value } = await plugin.dispense("kv").get({ key: "stdin" }, { timeoutMs: 20000 });
console.log(JSON.stringify(new TextDecoder().decode(value)));
`;

async function stdinSeenByPlugin(stdin: "inherit" | "null", input: string): Promise<string> {
  const options = { ...helperPlugin("read-stdin"), stdin };
  const out = await runDenoEval(STDIN_HOST, {
    env: { STDIN_HOST_OPTIONS: JSON.stringify(options) },
    stdin: input,
  });
  assert.equal(out.code, 0, `host failed: ${out.stderr}`);
  return JSON.parse(out.stdout);
}

Deno.test("the host passes its stdin to the plugin (stdin: inherit, the default)", async () => {
  assert.equal(
    await stdinSeenByPlugin("inherit", "piped into the host\n"),
    "piped into the host\n",
  );
});

Deno.test("stdin: null gives the plugin an empty stdin, not the host's", async () => {
  assert.equal(await stdinSeenByPlugin("null", "piped into the host\n"), "");
});

Deno.test("skipHostEnv hides the host's environment; `env` and protocol vars still arrive", async () => {
  Deno.env.set("PLUGWIRE_HOST_ONLY", "from-the-host");
  try {
    for (const skipHostEnv of [false, true]) {
      const plugin = await startPlugin({
        ...helperPlugin("report-env", { HELPER_EXTRA: "from-env-option" }),
        plugins: { kv: KV },
        skipHostEnv,
      });
      try {
        const kv = plugin.dispense("kv");
        const env = async (name: string) => decode((await kv.get({ key: name })).value);
        assert.equal(await env("HELPER_EXTRA"), "from-env-option");
        assert.equal(await env("PLUGIN_PROTOCOL_VERSIONS"), "1");
        assert.equal(await env(HANDSHAKE.magicCookieKey), HANDSHAKE.magicCookieValue);
        if (skipHostEnv) {
          // (Not PATH: Deno adds its own to every process it runs.)
          const hidden = ["PLUGWIRE_HOST_ONLY", ...(Deno.env.has("HOME") ? ["HOME"] : [])];
          for (const name of hidden) {
            await assert.rejects(
              kv.get({ key: name }),
              (err) => err instanceof RpcError && err.code === Status.NOT_FOUND,
              `${name} reached the plugin`,
            );
          }
        } else {
          assert.equal(await env("PLUGWIRE_HOST_ONLY"), "from-the-host");
        }
      } finally {
        await plugin.kill();
      }
    }
  } finally {
    Deno.env.delete("PLUGWIRE_HOST_ONLY");
  }
});

testNoLeftovers();
