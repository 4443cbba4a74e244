// Reattach (docs/protocol.md §9): one host hands a running plugin over to another host process
// through PluginClient.reattachConfig(), plaintext and with AutoMTLS; what a reattached client
// notices when the plugin dies; and what reattaching to nothing, or to a stranger, does.
import assert from "node:assert/strict";
import { PluginError, type ReattachConfig, startPlugin } from "../host.ts";
import { KV } from "../gen/kv/kv_pb.ts";
import {
  denoCommand,
  HANDSHAKE,
  helperPlugin,
  TEST_MARK,
  testNoLeftovers,
  testRoot,
} from "./_util.ts";

const encode = (s: string) => new TextEncoder().encode(s);
const decode = (b: Uint8Array) => new TextDecoder().decode(b);

function alive(pid: number): boolean {
  // A zombie (exited, not yet reaped) counts as gone.
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z";
  } catch {
    return false;
  }
}

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

function within<T>(ms: number, promise: Promise<T>, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

interface SecondHostReport {
  ok: boolean;
  pid?: number;
  read?: string;
  earlier?: string | null;
  actionMs?: number;
  hasExited?: boolean;
  code?: string;
  message?: string;
  cause?: string;
}

/** Runs tests/fixtures/reattach_host.ts as a separate host process. */
async function secondHost(
  config: ReattachConfig,
  action: "kill" | "close",
): Promise<{ code: number; report: SecondHostReport; stderr: string }> {
  const [cmd, ...args] = denoCommand(
    "tests/fixtures/reattach_host.ts",
    JSON.stringify(config),
    action,
  );
  const out = await new Deno.Command(cmd, {
    args,
    env: { PLUGWIRE_TEST_MARK: TEST_MARK },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stdout = decode(out.stdout).trim();
  let report: SecondHostReport;
  try {
    report = JSON.parse(stdout.split("\n").at(-1) ?? "");
  } catch {
    throw new Error(`second host printed ${JSON.stringify(stdout)}; stderr: ${decode(out.stderr)}`);
  }
  return { code: out.code, report, stderr: decode(out.stderr) };
}

/** Last resort when a test fails half way: the handed-over plugin is nobody's child any more. */
function cleanUp(config: ReattachConfig | undefined): void {
  if (!config) return;
  if (alive(config.pid)) {
    try {
      Deno.kill(config.pid, "SIGKILL");
    } catch {
      // Gone meanwhile.
    }
  }
  if (config.socketDir && exists(config.socketDir)) {
    Deno.removeSync(config.socketDir, { recursive: true });
  }
}

for (const autoMtls of [false, true]) {
  const how = autoMtls ? "with AutoMTLS" : "plaintext";
  Deno.test(`reattach ${how}: another host process takes the plugin over, calls it and kills it`, async () => {
    let config: ReattachConfig | undefined;
    try {
      const first = await startPlugin({ ...helperPlugin("serve"), plugins: { kv: KV }, autoMtls });
      await first.dispense("kv").put({ key: "first", value: encode("from the first host") });
      config = first.reattachConfig();
      assert.equal(config.protocol, "grpc");
      assert.equal(config.protocolVersion, 1);
      assert.equal(config.network, "unix");
      assert.equal(config.pid, first.pid);
      assert.ok(config.socketDir && config.address.startsWith(config.socketDir + "/"));
      if (autoMtls) {
        assert.ok(config.tls, "the AutoMTLS certificates travel with the config");
        assert.match(config.tls.cert, /^-----BEGIN CERTIFICATE-----/);
        assert.match(config.tls.key, /^-----BEGIN PRIVATE KEY-----/);
        assert.match(config.tls.ca, /^-----BEGIN CERTIFICATE-----/);
      } else {
        assert.equal(config.tls, undefined);
      }
      // It is JSON: what goes to the other process is what comes back.
      assert.deepEqual(JSON.parse(JSON.stringify(config)), config);

      // The first host disconnects; the plugin keeps running.
      await first.close();
      assert.equal(first.hasExited, false);
      assert.ok(alive(config.pid));
      assert.ok(exists(config.address), "the socket is still there");

      if (autoMtls) {
        // A second host that only disconnects leaves it running for the next one.
        const closing = await secondHost(config, "close");
        assert.equal(closing.code, 0, closing.stderr);
        assert.equal(closing.report.ok, true);
        assert.equal(closing.report.earlier, "from the first host");
        assert.ok(alive(config.pid));
      }

      const second = await secondHost(config, "kill");
      console.log(`${how}: second host reported ${JSON.stringify(second.report)}`);
      assert.equal(second.code, 0, second.stderr);
      assert.equal(second.report.ok, true);
      assert.equal(second.report.pid, config.pid);
      assert.equal(second.report.earlier, "from the first host");
      assert.equal(second.report.hasExited, true);

      // The plugin exited on the second host's Shutdown: cleanly, and its directory is gone.
      assert.deepEqual(await within(3000, first.exited, "the plugin's exit"), {
        code: 0,
        signal: null,
      });
      assert.equal(alive(config.pid), false);
      assert.equal(exists(config.socketDir!), false, "the socket directory was removed");
    } finally {
      cleanUp(config);
    }
  });
}

Deno.test("reattach: the reattached client's `exited` resolves when the plugin is SIGKILLed", async () => {
  let config: ReattachConfig | undefined;
  try {
    const first = await startPlugin({ ...helperPlugin("serve"), plugins: { kv: KV } });
    config = first.reattachConfig();
    await first.close();
    const second = await startPlugin({
      reattach: config,
      handshake: HANDSHAKE,
      plugins: { kv: KV },
      logger: () => {},
    });
    assert.equal(second.pid, config.pid);
    assert.equal(second.hasExited, false);
    await second.dispense("kv").put({ key: "a", value: encode("1") });

    const killedAt = Date.now();
    Deno.kill(config.pid, "SIGKILL");
    const status = await within(3000, second.exited, "the reattached client's exited");
    const noticedMs = Date.now() - killedAt;
    console.log(
      `reattached client noticed the SIGKILL after ${noticedMs} ms: ` +
        JSON.stringify(status),
    );
    assert.ok(noticedMs <= 3000);
    assert.equal(second.hasExited, true);
    // A reattached host does not own the process: it cannot know how it ended.
    assert.deepEqual(status, { code: null, signal: null });
    assert.deepEqual(await first.exited, { code: null, signal: "SIGKILL" });

    // The plugin could not remove its socket; kill() removes the directory the first host made.
    assert.ok(exists(config.address));
    await second.kill();
    assert.equal(exists(config.socketDir!), false);
    // Calls now fail.
    await assert.rejects(second.dispense("kv").get({ key: "a" }));
  } finally {
    cleanUp(config);
  }
});

Deno.test("reattach: a pid that is gone is refused with process-not-found", async () => {
  const done = await new Deno.Command("true", { env: { PLUGWIRE_TEST_MARK: TEST_MARK } })
    .spawn();
  const pid = done.pid;
  await done.status;
  assert.equal(alive(pid), false);
  const started = Date.now();
  const err = await startPlugin({
    reattach: {
      protocol: "grpc",
      protocolVersion: 1,
      network: "unix",
      address: `${testRoot()}/gone.sock`,
      pid,
    },
    handshake: HANDSHAKE,
    plugins: { kv: KV },
  }).then(() => undefined, (e) => e);
  assert.ok(err instanceof PluginError, String(err));
  console.log(`dead pid (${Date.now() - started} ms): [${err.code}] ${err.message}`);
  assert.equal(err.code, "process-not-found");
  assert.equal(err.message, "reattachment process not found");
  assert.ok(Date.now() - started < 1000, "refused at once");
});

for (const network of ["unix", "tcp"] as const) {
  Deno.test(`reattach over ${network}: a live pid whose address does not answer is refused, and not signalled`, async () => {
    const sleeper = new Deno.Command("sleep", {
      args: ["30"],
      env: { PLUGWIRE_TEST_MARK: TEST_MARK },
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
    let signalled: Deno.CommandStatus | undefined;
    void sleeper.status.then((s) => (signalled = s));
    try {
      const started = Date.now();
      const err = await startPlugin({
        reattach: {
          protocol: "grpc",
          protocolVersion: 1,
          network,
          // Nothing listens there: a path that does not exist, a port nothing is bound to.
          address: network === "unix"
            ? `${testRoot()}/nobody.sock`
            : `127.0.0.1:${await freePort()}`,
          pid: sleeper.pid,
        },
        handshake: HANDSHAKE,
        plugins: { kv: KV },
        startTimeoutMs: 1000,
        logger: () => {},
      }).then(() => undefined, (e) => e);
      assert.ok(err instanceof PluginError, String(err));
      console.log(
        `${network} live pid, silent address (${Date.now() - started} ms): ` +
          `[${err.code}] ${err.message}` +
          (err.cause ? `; cause: ${(err.cause as Error).message}` : ""),
      );
      assert.equal(err.code, "process-not-found");
      assert.equal(err.message, "reattachment process not found");

      // Give a stray signal time to land: the sleeper must still be running.
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(signalled, undefined, `the sleep process ended: ${JSON.stringify(signalled)}`);
      assert.ok(alive(sleeper.pid));
    } finally {
      sleeper.kill("SIGKILL");
      await sleeper.status;
    }
  });
}

Deno.test({
  name: "BUG: reattaching to an address that does not answer fails fast by default",
  // Regression (fixed): reattach() in internal/start.ts (then internal/client.ts) waits in grpc-js's waitForReady for
  // min(startTimeoutMs, 10 s), retrying, before it reports process-not-found; go-plugin probes
  // the address with one dial and fails at once. Fix: see the report (one probe connect first).
  fn: async () => {
    const sleeper = new Deno.Command("sleep", {
      args: ["30"],
      env: { PLUGWIRE_TEST_MARK: TEST_MARK },
    }).spawn();
    try {
      const started = Date.now();
      const err = await startPlugin({
        reattach: {
          protocol: "grpc",
          protocolVersion: 1,
          network: "unix",
          address: `${testRoot()}/nobody.sock`,
          pid: sleeper.pid,
        },
        handshake: HANDSHAKE,
        plugins: { kv: KV },
        logger: () => {},
      }).then(() => undefined, (e) => e);
      assert.ok(err instanceof PluginError);
      assert.equal(err.code, "process-not-found");
      assert.ok(Date.now() - started < 2000, `took ${Date.now() - started} ms`);
    } finally {
      sleeper.kill("SIGKILL");
      await sleeper.status;
    }
  },
});

async function freePort(): Promise<number> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  await new Promise((r) => setTimeout(r, 10));
  return port;
}

testNoLeftovers();
