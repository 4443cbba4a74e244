/**
 * The gateway as a process (`deno task gateway`'s program): SIGTERM and SIGINT drain, stop
 * every plugin and exit 0 (plugincore.md §9 bug 10); SIGHUP reloads; a TLS or config problem
 * stops the start with a clear message and spawns nothing (bugs 11, 14).
 */

import assert from "node:assert/strict";
import { pidAlive } from "../internal/runtime.ts";
import {
  denoCommand,
  eventually,
  HANDSHAKE,
  killQuietly,
  processesWithMark,
  TEST_MARK,
  testNoLeftovers,
} from "./_util.ts";

const ECHO = new URL("./fixtures/gateway/echo.ts", import.meta.url).pathname;
const KEY = "process-test-key-0123";

function configText(dir: string, extra = ""): string {
  const cmd = JSON.stringify(denoCommand("tests/fixtures/helper_plugin.ts"));
  return `listen = "127.0.0.1:0"
[auth]
keys = ["\${TEST_KEY}"]
[plugins.echo]
module = "${ECHO}"
params = { terminated_file = "${dir}/terminated" }
[plugins.helper]
cmd = ${cmd}
handshake = { protocol_version = ${HANDSHAKE.protocolVersion}, magic_cookie_key = "${HANDSHAKE.magicCookieKey}", magic_cookie_value = "${HANDSHAKE.magicCookieValue}" }
${extra}`;
}

interface Running {
  child: Deno.ChildProcess;
  url: string;
  output: Promise<{ code: number; stdout: string; stderr: string }>;
  stderrSoFar(): string;
}

function spawnGateway(file: string): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: [...denoCommand("internal/gateway/main.ts").slice(1), "--config", file],
    env: { PLUGWIRE_TEST_MARK: TEST_MARK, TEST_KEY: KEY, NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

async function startGatewayProcess(file: string): Promise<Running> {
  const child = spawnGateway(file);
  const decoder = new TextDecoder();
  let stdout = "";
  const reader = child.stdout.getReader();
  let url: string | undefined;
  while (!url) {
    const { done, value } = await reader.read();
    if (done) break;
    stdout += decoder.decode(value, { stream: true });
    url = /listening on (\S+)/.exec(stdout)?.[1];
  }
  if (!url) {
    killQuietly(child);
    throw new Error(`no URL printed: ${stdout}`);
  }
  let stderr = "";
  const stderrDone = (async () => {
    const errDecoder = new TextDecoder();
    for await (const chunk of child.stderr) stderr += errDecoder.decode(chunk, { stream: true });
  })();
  const output = (async () => {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      stdout += decoder.decode(value, { stream: true });
    }
    await stderrDone;
    const { code } = await child.status;
    return { code, stdout, stderr };
  })();
  return { child, url, output, stderrSoFar: () => stderr };
}

async function pluginsOf(url: string) {
  const response = await fetch(`${url}/-/plugins`, { headers: { authorization: `Bearer ${KEY}` } });
  return (await response.json()).plugins as {
    id: string;
    pid: number | null;
    reloads: number;
    inFlight: number;
  }[];
}

for (const signal of ["SIGTERM", "SIGINT"] as const) {
  Deno.test(`bug 10: ${signal} drains, terminates every plugin concurrently and exits 0`, async () => {
    const dir = await Deno.makeTempDir({ prefix: "plugwire-gw-proc-" });
    try {
      await Deno.writeTextFile(`${dir}/gw.toml`, `pidfile = "gw.pid"\n` + configText(dir));
      const gw = await startGatewayProcess(`${dir}/gw.toml`);
      try {
        // plugincore's pidfile, written once the gateway listens.
        assert.equal(await Deno.readTextFile(`${dir}/gw.pid`), `${gw.child.pid}\n`);
        await eventually(
          "the helper plugin",
          async () => (await pluginsOf(gw.url)).every((p) => p.id !== "helper" || p.pid !== null),
          20_000,
        );
        const helperPid = (await pluginsOf(gw.url)).find((p) => p.id === "helper")!.pid!;
        // A request in flight when the signal comes is still answered.
        const inFlight = fetch(`${gw.url}/echo/hold?until=${dir}/release`, {
          headers: { authorization: `Bearer ${KEY}` },
        });
        await eventually(
          "the request in flight",
          async () => (await pluginsOf(gw.url)).find((p) => p.id === "echo")!.inFlight === 1,
        );
        gw.child.kill(signal);
        await eventually("the drain", () => /draining and stopping/.test(gw.stderrSoFar()));
        await Deno.writeTextFile(`${dir}/release`, "");
        const answered = await inFlight;
        assert.equal(answered.status, 200);
        await answered.body?.cancel();
        const { code, stderr } = await gw.output;
        assert.equal(code, 0, stderr);
        assert.match(stderr, new RegExp(`${signal}: draining and stopping`));
        assert.ok(!pidAlive(helperPid), "the subprocess plugin was stopped");
        assert.match(await Deno.readTextFile(`${dir}/terminated`), /^[0-9a-f-]{36}\n$/);
        assert.equal(await Deno.stat(`${dir}/gw.pid`).catch(() => null), null, "pidfile left");
        assert.ok(!stderr.includes(KEY), "the key was logged");
      } finally {
        killQuietly(gw.child);
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
}

Deno.test("SIGHUP reloads every plugin in place", async () => {
  const dir = await Deno.makeTempDir({ prefix: "plugwire-gw-proc-" });
  try {
    await Deno.writeTextFile(`${dir}/gw.toml`, configText(dir));
    const gw = await startGatewayProcess(`${dir}/gw.toml`);
    try {
      await eventually(
        "the helper plugin",
        async () => (await pluginsOf(gw.url)).every((p) => p.pid !== null || p.id === "echo"),
        20_000,
      );
      const before = (await pluginsOf(gw.url)).find((p) => p.id === "helper")!.pid!;
      gw.child.kill("SIGHUP");
      await eventually(
        "the reload",
        async () => (await pluginsOf(gw.url)).every((p) => p.reloads === 1),
        20_000,
      );
      const after = (await pluginsOf(gw.url)).find((p) => p.id === "helper")!.pid!;
      assert.notEqual(after, before);
      await eventually("the old process to stop", () => !pidAlive(before), 10_000);
      gw.child.kill("SIGTERM");
      assert.equal((await gw.output).code, 0);
    } finally {
      killQuietly(gw.child);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("bug 14: a TLS problem stops the start, never falls back to HTTP, and spawns nothing", async () => {
  const dir = await Deno.makeTempDir({ prefix: "plugwire-gw-proc-" });
  try {
    await Deno.writeTextFile(`${dir}/cert.pem`, "not a certificate\n");
    await Deno.writeTextFile(`${dir}/key.pem`, "not a key\n");
    for (
      const tls of [
        `[tls]\ncert = "cert.pem"\nkey = "key.pem"\n`,
        `[tls]\ncert = "missing.pem"\nkey = "key.pem"\n`,
      ]
    ) {
      await Deno.writeTextFile(`${dir}/gw.toml`, configText(dir).replace("[auth]", `${tls}[auth]`));
      const out = await spawnGateway(`${dir}/gw.toml`).output();
      const stderr = new TextDecoder().decode(out.stderr);
      assert.equal(out.code, 1, stderr);
      assert.match(stderr, /TLS|certificate/);
      assert.doesNotMatch(new TextDecoder().decode(out.stdout), /listening/);
      assert.deepEqual(processesWithMark(), [], "a plugin was spawned");
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("bug 11: an invalid config stops the start with the key and line, no secret", async () => {
  const dir = await Deno.makeTempDir({ prefix: "plugwire-gw-proc-" });
  try {
    await Deno.writeTextFile(
      `${dir}/gw.toml`,
      configText(dir).replace(`[plugins.echo]`, `[cors]\nenabled = "yes"\n[plugins.echo]`),
    );
    const out = await spawnGateway(`${dir}/gw.toml`).output();
    const stderr = new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 1);
    assert.match(stderr, /line 5: cors\.enabled/);
    assert.ok(!stderr.includes(KEY));
    assert.deepEqual(processesWithMark(), []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

testNoLeftovers();
