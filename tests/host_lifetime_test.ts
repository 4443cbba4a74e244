/**
 * A host's plugins end with the host: however a host process ends short of SIGKILL
 * (`Deno.exit()`, an uncaught error, an unhandled rejection, `process.exit()`, the end of its
 * program), its exit hook SIGKILLs the plugins it started and removes their socket directories
 * on the way out. And a host that opts in with killPluginsOnSignal() stops its plugins
 * gracefully when it gets SIGINT or SIGTERM, then exits 130 or 143.
 */

import assert from "node:assert/strict";
import {
  eventually,
  HANDSHAKE,
  helperPlugin,
  killQuietly,
  repoUrl,
  runDenoEval,
  TEST_MARK,
  testNoLeftovers,
  testRoot,
} from "./_util.ts";

/** True while the pid is a live process (a zombie counts as gone). */
function alive(pid: number): boolean {
  try {
    return !/^State:\s+Z/m.test(Deno.readTextFileSync(`/proc/${pid}/status`));
  } catch {
    return false;
  }
}

function exists(path: string): boolean {
  try {
    Deno.lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

/** A host program that starts the helper plugin, prints `{pid, socketDir}`, then `ending`. */
function hostProgram(ending: string, prelude = ""): string {
  const options = { ...helperPlugin("serve"), logger: undefined };
  return `
    import { startPlugin, killPluginsOnSignal } from ${JSON.stringify(repoUrl("host.ts"))};
    import { KV } from ${JSON.stringify(repoUrl("gen/kv/kv_pb.ts"))};
    import process from "node:process";
    ${prelude}
    const plugin = await startPlugin({
      cmd: ${JSON.stringify(options.cmd)},
      env: ${JSON.stringify(options.env)},
      handshake: ${JSON.stringify(HANDSHAKE)},
      unixSocketDir: ${JSON.stringify(testRoot())},
      plugins: { kv: KV },
      logger: () => {},
    });
    const socketDir = plugin.reattachConfig().socketDir;
    console.log(JSON.stringify({ pid: plugin.pid, socketDir }));
    ${ending}
  `;
}

const endings: Record<string, string> = {
  "Deno.exit()": "Deno.exit(3);",
  "an uncaught error": 'setTimeout(() => { throw new Error("host bug"); }, 0);',
  "an unhandled rejection": 'Promise.reject(new Error("host bug"));',
  "process.exit()": "process.exit(4);",
  "an uncaught error thrown at the top level": 'throw new Error("host bug");',
};

for (const [how, ending] of Object.entries(endings)) {
  Deno.test(`a host ending by ${how} takes its plugin and socket dir with it`, async () => {
    const out = await runDenoEval(hostProgram(ending));
    assert.notEqual(out.code, 0, `the host should have failed: ${out.stderr}`);
    const { pid, socketDir } = JSON.parse(out.stdout.trim().split("\n")[0]);
    // The hook runs before the host is gone: nothing is left the moment it has exited.
    assert.ok(!exists(socketDir), `${socketDir} outlived the host`);
    await eventually(`plugin ${pid} to be gone`, () => !alive(pid), 2000);
  });
}

Deno.test("killPluginsOnSignal(): SIGTERM to the host stops its plugin gracefully, then exits 143", async () => {
  const code = hostProgram(
    `plugin.exited.then((status) => console.log(JSON.stringify(status)));
     setInterval(() => {}, 60_000);`,
    "killPluginsOnSignal();",
  );
  const host = new Deno.Command(Deno.execPath(), {
    args: [
      "eval",
      "--quiet",
      `--config=${new URL("../deno.json", import.meta.url).pathname}`,
      code,
    ],
    env: { PLUGWIRE_TEST_MARK: TEST_MARK },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  try {
    const reader = host.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let text = "";
    while (!text.includes("\n")) {
      const { value, done } = await reader.read();
      if (done) break;
      text += value;
    }
    const { pid, socketDir } = JSON.parse(text.split("\n")[0]);
    assert.ok(alive(pid));
    host.kill("SIGTERM");
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      text += value;
    }
    const status = await host.status;
    assert.equal(status.code, 143, "the host exits as SIGTERM would have ended it");
    // The plugin answered Shutdown and exited 0 before the host went.
    assert.deepEqual(JSON.parse(text.trim().split("\n")[1]), { code: 0, signal: null });
    assert.ok(!alive(pid));
    assert.ok(!exists(socketDir));
  } finally {
    killQuietly(host);
    await host.stderr.cancel().catch(() => {});
  }
});

testNoLeftovers();
