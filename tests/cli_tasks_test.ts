/**
 * The `plugwire` front ends: `bundle` (a bundled plugin, and the command bundled into one file),
 * `codegen` (in a copy of the checkout) and `gateway`.
 *
 * @module
 */

import assert from "node:assert/strict";
import { denoCommand, killQuietly, TEST_MARK, testNoLeftovers } from "./_util.ts";
import { plugwire } from "./_cli.ts";

const BROKEN = denoCommand("tests/fixtures/cli_broken_plugin.ts");
const COOKIE = ["--cookie", "BASIC_PLUGIN=hello", "--timeout", "30s"];

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

    // `deno task bundle cli.ts` (scripts/ship.ts as is) gives it a plugin's permissions only:
    // it says how to run it instead of failing obscurely.
    const shipped = await new Deno.Command(Deno.execPath(), {
      args: [
        "task",
        "-q",
        "bundle",
        new URL("../cli.ts", import.meta.url).pathname,
        `${dir}/plugwire.js`,
      ],
      cwd: new URL("../", import.meta.url).pathname,
      stdout: "null",
      stderr: "piped",
    }).output();
    assert.equal(shipped.code, 0, new TextDecoder().decode(shipped.stderr));
    const restricted = await new Deno.Command(`${dir}/plugwire.js`, {
      args: ["inspect", ...COOKIE, "--", ...BROKEN],
      env: { PATH: path, PLUGWIRE_TEST_MARK: TEST_MARK },
      stdout: "null",
      stderr: "piped",
    }).output();
    assert.equal(restricted.code, 1);
    assert.match(
      new TextDecoder().decode(restricted.stderr),
      /may not start processes: run it with deno run -A/,
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
