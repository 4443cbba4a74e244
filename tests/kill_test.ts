/**
 * PluginClient.kill(), step by step against real processes: the Shutdown call (graceful, exit
 * 0), then SIGTERM after `killGraceMs`, then SIGKILL; idempotence; `await using`; a plugin that
 * exits on its own; and the socket file and socket dir gone afterwards.
 */

import assert from "node:assert/strict";
import { dirname } from "node:path";
import { type PluginClient, startPlugin } from "../host.ts";
import { KV } from "../gen/kv/kv_pb.ts";
import { GRPCController } from "../gen/core/plugin/grpc_controller_pb.ts";
import { startByHand } from "./_by_hand.ts";
import {
  denoCommand,
  eventually,
  HANDSHAKE,
  helperPlugin,
  processesWithMark,
  testNoLeftovers,
  testRoot,
} from "./_util.ts";

const encode = (s: string) => new TextEncoder().encode(s);
const decode = (b: Uint8Array) => new TextDecoder().decode(b);

function exists(path: string): boolean {
  try {
    Deno.lstatSync(path);
    return true;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return false;
    throw err;
  }
}

/** True while the pid is a live process (a zombie counts as gone). */
function alive(pid: number): boolean {
  try {
    return !/^State:\s+Z/m.test(Deno.readTextFileSync(`/proc/${pid}/status`));
  } catch {
    return false;
  }
}

/** The plugin serves on a socket file inside a socket dir the host made in the test root. */
/**
 * `plugin.kill()`, failing the test if it has not finished within 10 s (a liveness bound, not a
 * timing check); the plugin is SIGKILLed and cleaned up either way.
 */
async function killWithin10s(plugin: PluginClient): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    await Promise.race([
      plugin.kill(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error("kill() did not finish in 10 s")), 10_000);
      }),
    ]);
  } finally {
    clearTimeout(timer);
    if (!plugin.hasExited) {
      Deno.kill(plugin.pid, "SIGKILL");
      await plugin.exited;
      await plugin.kill();
    }
  }
}

function assertSocketInPlace(plugin: PluginClient): void {
  assert.equal(plugin.network, "unix");
  assert.ok(Deno.lstatSync(plugin.address).isSocket, `${plugin.address} is not a socket`);
  assert.equal(dirname(dirname(plugin.address)), testRoot());
}

/** After a kill: no process, no socket file, no socket dir. */
function assertAllGone(plugin: PluginClient): void {
  assert.ok(plugin.hasExited);
  assert.ok(!alive(plugin.pid), `pid ${plugin.pid} is still alive`);
  assert.ok(!exists(plugin.address), `socket ${plugin.address} is left`);
  assert.ok(!exists(dirname(plugin.address)), `socket dir ${dirname(plugin.address)} is left`);
}

Deno.test("kill(): a plugin that honours Shutdown exits 0, before any signal", async () => {
  const plugin = await startPlugin({
    ...helperPlugin("serve"),
    plugins: { kv: KV },
    // Long enough that reaching SIGTERM would show in the time and in the exit status.
    killGraceMs: 10_000,
  });
  assertSocketInPlace(plugin);
  await plugin.dispense("kv").put({ key: "a", value: encode("1") });
  const started = Date.now();
  await plugin.kill();
  assert.ok(Date.now() - started < 10_000, "kill() waited for the grace period");
  assert.deepEqual(await plugin.exited, { code: 0, signal: null });
  assertAllGone(plugin);
});

Deno.test("kill(): after the host's Shutdown the plugin process ends, stray timers or not", async () => {
  const records: string[] = [];
  const plugin = await startPlugin({
    ...helperPlugin("stray-timer"),
    plugins: { kv: KV },
    killGraceMs: 30_000, // no SIGTERM within the test's life: the plugin must end by itself
    logger: (record) => records.push(record.message),
  });
  assertSocketInPlace(plugin);
  await killWithin10s(plugin);
  assert.deepEqual(await plugin.exited, { code: 0, signal: null });
  assert.ok(!records.includes("got SIGTERM"), `records: ${records}`);
  assertAllGone(plugin);
});

Deno.test("kill(): a plugin that ignores Shutdown gets SIGTERM after killGraceMs", async () => {
  const plugin = await startPlugin({
    ...helperPlugin("ignore-shutdown"),
    plugins: { kv: KV },
    killGraceMs: 300,
  });
  assertSocketInPlace(plugin);
  const started = Date.now();
  await plugin.kill();
  const elapsed = Date.now() - started;
  // Its Shutdown completed (onShutdown returned, a timer keeps it alive): serve()'s SIGTERM
  // handler treats the signal as the host making sure, and exits 0.
  assert.deepEqual(await plugin.exited, { code: 0, signal: null });
  assert.ok(elapsed >= 250, `SIGTERM came before the grace period (${elapsed} ms)`);
  assertAllGone(plugin);
});

Deno.test({
  name: "kill(): a plugin that ignores Shutdown and SIGTERM gets SIGKILL",
  // Regression (fixed): internal/runtime.ts spawnProcess's kill() calls node:child_process ChildProcess.kill,
  // which in Deno sends only the first signal (it returns false once `killed` is set): the
  // ladder's SIGKILL after SIGTERM is never sent and kill() waits for `exited` forever.
  async fn() {
    const records: string[] = [];
    const plugin = await startPlugin({
      ...helperPlugin("ignore-sigterm"),
      plugins: { kv: KV },
      killGraceMs: 300,
      logger: (record) => records.push(record.message),
    });
    assertSocketInPlace(plugin);
    await killWithin10s(plugin);
    assert.deepEqual(await plugin.exited, { code: null, signal: "SIGKILL" });
    // The plugin saw the SIGTERM step before the SIGKILL.
    assert.ok(records.includes("ignoring SIGTERM"), `records: ${records}`);
    assertAllGone(plugin);
  },
});

Deno.test("kill() is idempotent: concurrent calls, and a call after the exit", async () => {
  const plugin = await startPlugin({ ...helperPlugin("serve"), plugins: { kv: KV } });
  const first = plugin.kill();
  const second = plugin.kill();
  assert.equal(first, second, "concurrent kill() calls run two ladders");
  await Promise.all([first, second]);
  assert.deepEqual(await plugin.exited, { code: 0, signal: null });
  await plugin.kill();
  assertAllGone(plugin);
  // A call on a killed client cannot reach the plugin.
  await assert.rejects(plugin.dispense("kv").get({ key: "a" }, { timeoutMs: 2000 }));
});

Deno.test("`await using` kills the plugin at the end of the block", async () => {
  let leaked: PluginClient | undefined;
  {
    await using plugin = await startPlugin({ ...helperPlugin("serve"), plugins: { kv: KV } });
    leaked = plugin;
    await plugin.dispense("kv").put({ key: "k", value: encode("v") });
    assert.equal(decode((await plugin.dispense("kv").get({ key: "k" })).value), "v");
    assert.ok(alive(plugin.pid));
    assertSocketInPlace(plugin);
  }
  assert.deepEqual(await leaked.exited, { code: 0, signal: null });
  assertAllGone(leaked);
});

Deno.test("a plugin exiting on its own: `exited` settles with its status; kill() cleans up", async () => {
  const plugin = await startPlugin({
    ...helperPlugin("exit-after-handshake"),
    plugins: { kv: KV },
  });
  const socketDir = dirname(plugin.address);
  assert.deepEqual(await plugin.exited, { code: 7, signal: null });
  assert.ok(plugin.hasExited);
  assert.ok(plugin.signal.aborted, "the client's lifetime signal outlived the plugin");
  const started = Date.now();
  await plugin.kill();
  assert.ok(Date.now() - started < 1500, "kill() of an exited plugin waited");
  assert.deepEqual(await plugin.exited, { code: 7, signal: null });
  assert.ok(!exists(socketDir), `socket dir ${socketDir} is left`);
  assertAllGone(plugin);
  assert.deepEqual(processesWithMark(), []);
});

Deno.test("kill() also stops the real plugin behind `sh -c` (dash forks, it does not exec)", async () => {
  const command = denoCommand("tests/fixtures/helper_plugin.ts").map((a) => `'${a}'`).join(" ");
  const plugin = await startPlugin({
    ...helperPlugin("ignore-sigterm"),
    cmd: ["sh", "-c", command],
    plugins: { kv: KV },
    killGraceMs: 300,
  });
  await plugin.kill();
  await eventually("the plugin under the shell to be gone", () => processesWithMark().length === 0);
});

Deno.test("SIGTERM 50 ms after Shutdown (pyvider's host): onShutdown runs, exit 0", async () => {
  const mark = `${testRoot()}/shutdown-mark`;
  const socketDir = Deno.makeTempDirSync({ dir: testRoot(), prefix: "by-hand-" });
  const plugin = await startByHand({
    [HANDSHAKE.magicCookieKey]: HANDSHAKE.magicCookieValue,
    HELPER_MODE: "slow-shutdown",
    HELPER_MARK_FILE: mark,
    PLUGIN_UNIX_SOCKET_DIR: socketDir,
  });
  const address = plugin.line.split("|")[3];
  const host = await startPlugin({
    reattach: {
      protocol: "grpc",
      protocolVersion: 1,
      network: "unix",
      address,
      pid: plugin.child.pid,
    },
    handshake: HANDSHAKE,
    plugins: { kv: KV },
    logger: () => {},
  });
  try {
    await host.client(GRPCController).shutdown({});
    await new Promise((r) => setTimeout(r, 50));
  } finally {
    await host.close();
  }
  const ended = await plugin.stop("SIGTERM");
  assert.deepEqual(ended.status, { code: 0, signal: null }, ended.stderr);
  assert.equal(Deno.readTextFileSync(mark), "onShutdown ran");
  assert.deepEqual([...Deno.readDirSync(socketDir)], [], "the socket is left");
  Deno.removeSync(mark);
  Deno.removeSync(socketDir);
});

/** A host program that starts the helper plugin, prints its pid and address, and waits. */
const WAITING_HOST = `
import { startPlugin } from ${JSON.stringify(new URL("../host.ts", import.meta.url).href)};
import { KV } from ${JSON.stringify(new URL("../gen/kv/kv_pb.ts", import.meta.url).href)};
const plugin = await startPlugin({ ...JSON.parse(Deno.env.get("HOST_OPTIONS")), plugins: { kv: KV } });
await plugin.ping();
console.log(JSON.stringify({ pid: plugin.pid, address: plugin.address }));
setInterval(() => {}, 60_000);
`;

/** Starts a host process (a plugwire host, or `sh` starting the plugin by hand). */
async function startHost(kind: "plugwire" | "sh", socketDir: string) {
  const options = helperPlugin("serve");
  const [cmd, ...args] = kind === "plugwire"
    ? [
      Deno.execPath(),
      "eval",
      "--quiet",
      `--config=${new URL("../deno.json", import.meta.url).pathname}`,
      WAITING_HOST,
    ]
    // A host that is not plugwire: a shell that starts the plugin and waits for it.
    : ["sh", "-c", `"$@" & wait`, "sh", ...denoCommand("tests/fixtures/helper_plugin.ts")];
  const child = new Deno.Command(cmd, {
    args,
    env: {
      ...options.env,
      HOST_OPTIONS: JSON.stringify({ ...options, logger: undefined, unixSocketDir: socketDir }),
      [HANDSHAKE.magicCookieKey]: HANDSHAKE.magicCookieValue,
      PLUGIN_PROTOCOL_VERSIONS: "1",
      PLUGIN_UNIX_SOCKET_DIR: socketDir,
    },
    stdout: "piped",
    stderr: "null",
    stdin: "null",
  }).spawn();
  const reader = child.stdout.getReader();
  let text = "";
  while (!text.includes("\n")) {
    const { done, value } = await reader.read();
    if (done) throw new Error(`the ${kind} host ended: ${text}`);
    text += decode(value);
  }
  reader.releaseLock();
  void child.stdout.cancel();
  const line = text.slice(0, text.indexOf("\n"));
  if (kind === "plugwire") {
    return { child, ...JSON.parse(line) as { pid: number; address: string } };
  }
  // sh: the line is the plugin's handshake; the plugin is sh's only child.
  const address = line.split("|")[3];
  const children = Deno.readTextFileSync(`/proc/${child.pid}/task/${child.pid}/children`).trim();
  return { child, pid: Number(children.split(" ")[0]), address };
}

for (
  const [kind, signal] of [
    ["plugwire", "SIGKILL"],
    ["plugwire", "SIGTERM"],
    ["plugwire", "SIGINT"],
    ["sh", "SIGKILL"],
  ] as const
) {
  Deno.test(`a ${kind} host ended by ${signal}: its plugin exits and removes its socket`, async () => {
    const socketDir = Deno.makeTempDirSync({ dir: testRoot(), prefix: "host-" });
    const host = await startHost(kind, socketDir);
    assert.ok(alive(host.pid) && exists(host.address), "the plugin is not serving");
    host.child.kill(signal);
    await host.child.status;
    await eventually("the orphaned plugin to exit", () => !alive(host.pid), 10_000);
    assert.ok(!exists(host.address), `socket ${host.address} is left`);
    // The socket dir the plugwire host made for the plugin goes too; the sh host's is ours.
    assert.deepEqual(
      [...Deno.readDirSync(socketDir)].map((e) => e.name),
      [],
      "something is left in the socket dir",
    );
    Deno.removeSync(socketDir);
  });
}

testNoLeftovers();
