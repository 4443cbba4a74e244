import assert from "node:assert/strict";
import { dirname } from "node:path";
import { bundlePlugin, compilePlugin, missingRuntime } from "../scripts/ship.ts";
import { processesWithMark, TEST_MARK, testNoLeftovers, testRoot } from "./_util.ts";
import { peers, peersMissing } from "./interop/_peers.ts";

const root = new URL("../", import.meta.url).pathname;
/** Build outputs and the plugins' working directories; sockets still go under testRoot(). */
const work = Deno.makeTempDirSync({ prefix: "plugwire-ship-" });
const kvEntry = `${root}examples/kv/plugin.ts`;

/** The interop peers (go-plugin's Go KV host among them); a missing peer fails the test. */
function goHosts(): typeof peers {
  if (peersMissing) throw new Error(peersMissing);
  return peers;
}

async function run(cmd: string[], env: Record<string, string>, cwd: string) {
  const out = await new Deno.Command(cmd[0], {
    args: cmd.slice(1),
    env: {
      ...env,
      PLUGWIRE_TEST_MARK: TEST_MARK,
      // The bundled plugin's shebang finds deno on PATH.
      PATH: `${dirname(Deno.execPath())}:${Deno.env.get("PATH")}`,
    },
    cwd,
    stdout: "piped",
    stderr: "piped",
  }).output();
  return {
    code: out.code,
    stdout: new TextDecoder().decode(out.stdout),
    stderr: new TextDecoder().decode(out.stderr),
  };
}

Deno.test("bundle: the KV plugin becomes one executable file with a deno shebang", async () => {
  const out = `${work}/kv-plugin`;
  const started = performance.now();
  await bundlePlugin(kvEntry, out);
  const text = await Deno.readTextFile(out);
  assert.match(text.split("\n")[0], /^#!\/usr\/bin\/env -S deno run .*--allow-net/);
  assert.ok((await Deno.stat(out)).mode! & 0o100, "executable");
  console.log(
    `bundle: ${(text.length / 1024).toFixed(0)} KiB in ${
      (performance.now() - started).toFixed(0)
    } ms`,
  );
});

for (const autoMtls of [false, true]) {
  Deno.test(`bundle: go-plugin's Go KV host runs the bundled plugin${autoMtls ? " with AutoMTLS" : ""}`, async () => {
    const env = goHosts();
    const cwd = Deno.makeTempDirSync({ dir: work, prefix: "kv-work-" });
    const plugin = `${cwd}/kv-plugin`;
    await bundlePlugin(kvEntry, plugin);
    if (!autoMtls) {
      // go-plugin's own examples/grpc host: `KV_PROTO=grpc KV_PLUGIN=<cmd> grpc put k v`.
      const host = env.GO_EXAMPLE_KV_HOST;
      const put = await run([host, "put", "greeting", "hello from Go"], {
        KV_PROTO: "grpc",
        KV_PLUGIN: plugin,
      }, cwd);
      assert.equal(put.code, 0, put.stdout + put.stderr);
      const get = await run(
        [host, "get", "greeting"],
        { KV_PROTO: "grpc", KV_PLUGIN: plugin },
        cwd,
      );
      assert.equal(get.code, 0, get.stdout + get.stderr);
      assert.equal(get.stdout, "hello from Go\n\nWritten from plugin-plugwire\n");
    } else {
      // examples/grpc has no AutoMTLS switch: the project's go-plugin v1.8.0 host fixture does.
      const host = env.GO_FIXTURE_HOST;
      const put = await run(
        [host, "-automtls", "-plugin", plugin, "-mode", "kv-put", "greeting", "over mTLS"],
        {},
        cwd,
      );
      assert.equal(put.code, 0, put.stdout + put.stderr);
      const get = await run(
        [host, "-automtls", "-plugin", plugin, "-mode", "kv-get", "greeting"],
        {},
        cwd,
      );
      assert.equal(get.code, 0, get.stdout + get.stderr);
      const line = get.stdout.split("\n").map((l) => l && JSON.parse(l)).find((l) =>
        l?.type === "kv-get"
      );
      assert.equal(line.value, "over mTLS\n\nWritten from plugin-plugwire");
      const killed = get.stdout.split("\n").map((l) => l && JSON.parse(l)).find((l) =>
        l?.type === "killed"
      );
      assert.equal(killed.graceful, true, "Shutdown ended the bundled plugin");
    }
    assert.deepEqual(processesWithMark(), []);
  });
}

Deno.test("bundle: start-up time of the bundled plugin (measurement)", async () => {
  const plugin = `${work}/kv-startup`;
  await bundlePlugin(kvEntry, plugin);
  const times: number[] = [];
  for (let i = 0; i < 5; i++) {
    const started = performance.now();
    const child = new Deno.Command(plugin, {
      env: {
        BASIC_PLUGIN: "hello",
        PLUGIN_PROTOCOL_VERSIONS: "1",
        PLUGWIRE_TEST_MARK: TEST_MARK,
        PLUGIN_UNIX_SOCKET_DIR: testRoot(),
        PATH: `${dirname(Deno.execPath())}:${Deno.env.get("PATH")}`,
      },
      stdout: "piped",
      stderr: "null",
    }).spawn();
    const reader = child.stdout.getReader();
    const { value } = await reader.read();
    times.push(performance.now() - started);
    assert.match(new TextDecoder().decode(value), /^1\|1\|unix\|/);
    reader.releaseLock();
    child.kill("SIGTERM");
    await child.status;
    await child.stdout.cancel();
  }
  times.sort((a, b) => a - b);
  console.log(`bundled plugin: spawn to handshake line, median ${times[2].toFixed(0)} ms (of 5)`);
});

// Only a denort runtime that cannot be obtained skips the compile test; any other failure of
// the probe is kept and fails it.
let compileProbe: string | undefined;
let compileFailure: unknown;
try {
  compileProbe = await compilePlugin(kvEntry, `${work}/probe`);
} catch (err) {
  compileFailure = err;
}

Deno.test("compile: a plugin that does not type-check fails, it is not skipped as 'no runtime'", async () => {
  const broken = `${work}/broken.ts`;
  Deno.writeTextFileSync(broken, 'const n: number = "not a number";\nconsole.log(n);\n');
  await assert.rejects(compilePlugin(broken, `${work}/broken`), /deno compile failed:/);
});

Deno.test("compile: missingRuntime() names only the runtime download failing", () => {
  const download = "Compile a.ts to a\nDownload https://dl.deno.land/release/v2.9.6/denort-x86_64" +
    "-unknown-linux-gnu.zip\nerror: Writing deno compile executable to temporary file\n\n" +
    "Caused by:\n    0: Setting up base binary.\n    1: error sending request for url " +
    "(https://dl.deno.land/release/v2.9.6/denort-x86_64-unknown-linux-gnu.zip)";
  assert.match(missingRuntime(download) ?? "", /^deno compile cannot obtain its denort runtime/);
  assert.equal(
    missingRuntime("error: TS2322 Type 'string' is not assignable to 'number'"),
    undefined,
  );
  assert.equal(missingRuntime('error: Module not found "file:///denort-helpers.ts"'), undefined);
});

Deno.test({
  name: "compile: the KV plugin as a standalone executable runs under go-plugin's Go host" +
    (compileProbe ? ` [blocked: ${compileProbe}]` : ""),
  ignore: compileProbe !== undefined,
  async fn() {
    if (compileFailure) throw compileFailure;
    const env = goHosts();
    const cwd = Deno.makeTempDirSync({ dir: work, prefix: "kv-compiled-" });
    const plugin = `${cwd}/kv-plugin`;
    assert.equal(await compilePlugin(kvEntry, plugin), undefined);
    const put = await run([env.GO_EXAMPLE_KV_HOST, "put", "k", "v"], {
      KV_PROTO: "grpc",
      KV_PLUGIN: plugin,
    }, cwd);
    assert.equal(put.code, 0, put.stderr);
    const get = await run([env.GO_EXAMPLE_KV_HOST, "get", "k"], {
      KV_PROTO: "grpc",
      KV_PLUGIN: plugin,
    }, cwd);
    assert.equal(get.stdout, "v\n\nWritten from plugin-plugwire\n");
  },
});

Deno.test("ship: remove the build outputs", () => Deno.removeSync(work, { recursive: true }));

testNoLeftovers();
