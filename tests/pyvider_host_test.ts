/**
 * plugwire plugins under a real pyvider-rpcplugin 0.5.5 host (PyPI; built by
 * tests/interop/peers.sh into its own venv; driven by tests/interop/python/pyvider_host.py).
 * That host sets only the magic cookie (never PLUGIN_PROTOCOL_VERSIONS or a port range), never
 * reads the plugin's stdout after the handshake, and stops a plugin with Shutdown, 50 ms, then
 * SIGTERM. Plain unix sockets only: pyvider's BoringSSL cannot do go-plugin's P-521 AutoMTLS.
 */

import assert from "node:assert/strict";
import { denoCommand, TEST_MARK, testNoLeftovers, testRoot } from "./_util.ts";
import { peers, peersMissing } from "./interop/_peers.ts";

const decoder = new TextDecoder();

async function underPyvider(mode: string, extraEnv: Record<string, string> = {}) {
  if (peersMissing) throw new Error(peersMissing);
  const socketDir = Deno.makeTempDirSync({ dir: testRoot(), prefix: "pyvider-" });
  const pluginEnv = {
    PATH: Deno.env.get("PATH") ?? "",
    HOME: Deno.env.get("HOME") ?? "",
    PLUGWIRE_TEST_MARK: TEST_MARK,
    PLUGIN_UNIX_SOCKET_DIR: socketDir,
    HELPER_MODE: mode,
    ...extraEnv,
  };
  const out = await new Deno.Command(peers.PYVIDER_PYTHON, {
    args: [
      peers.PYVIDER_HOST,
      JSON.stringify(denoCommand("tests/fixtures/helper_plugin.ts")),
      JSON.stringify(pluginEnv),
    ],
    env: {
      PLUGIN_MAGIC_COOKIE_KEY: "BASIC_PLUGIN",
      PLUGIN_MAGIC_COOKIE_VALUE: "hello",
      PLUGIN_AUTO_MTLS: "false",
      PLUGWIRE_TEST_MARK: TEST_MARK,
    },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(90_000),
  }).output();
  const stdout = decoder.decode(out.stdout);
  const stderr = decoder.decode(out.stderr);
  assert.equal(out.code, 0, `pyvider host failed:\n${stdout}\n${stderr.slice(-3000)}`);
  const result = JSON.parse(stdout.trim().split("\n").pop()!) as {
    get: string;
    pid: number;
    exit: number;
  };
  assert.deepEqual([...Deno.readDirSync(socketDir)], [], "the plugin left its socket");
  Deno.removeSync(socketDir);
  return result;
}

Deno.test("pyvider host: a plugin that logs 256 KiB with console.log still answers, exits 0", async () => {
  const result = await underPyvider("console-flood");
  assert.equal(result.get, "from pyvider");
  assert.equal(result.exit, 0);
});

Deno.test("pyvider host: SIGTERM 50 ms after Shutdown waits for onShutdown; exit 0", async () => {
  const mark = `${testRoot()}/pyvider-shutdown-mark`;
  const result = await underPyvider("slow-shutdown", { HELPER_MARK_FILE: mark });
  assert.equal(result.get, "from pyvider");
  assert.equal(result.exit, 0, "the plugin did not exit 0 (143: SIGTERM cut its Shutdown short)");
  assert.equal(Deno.readTextFileSync(mark), "onShutdown ran");
  Deno.removeSync(mark);
});

testNoLeftovers();
