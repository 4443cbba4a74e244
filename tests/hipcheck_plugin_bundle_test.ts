// `deno task bundle` makes a Hipcheck plugin one executable file (what Hipcheck core copies
// into its cache), pluginManifest() writes its plugin.kdl, and the bundled examples serve
// queries as processes started the way core starts them.
import assert from "node:assert/strict";
import { assertNode20, bundleForNode } from "./_node.ts";
import { dirname } from "node:path";
import { bundlePlugin } from "../scripts/ship.ts";
import { pluginManifest } from "../hipcheck.ts";
import { ConfigurationStatus } from "../gen/hipcheck/v1/hipcheck_pb.ts";
import { sha256 } from "../examples/hipcheck/sha256.ts";
import { PluginProcess, QueryStream, submit } from "./_hipcheck_driver.ts";
import { testNoLeftovers, testRoot } from "./_util.ts";

const root = new URL("../", import.meta.url).pathname;
// The bundled plugin's shebang finds deno on PATH.
const PATH = `${dirname(Deno.execPath())}:${Deno.env.get("PATH")}`;

Deno.test("bundled dummy/sha256 and plugwire/files: one file each, a plugin.kdl, queries answered", async () => {
  const dir = await Deno.makeTempDir({ dir: testRoot(), prefix: "bundle-" });
  const processes: PluginProcess[] = [];
  try {
    const sha = `${dir}/sha256.js`;
    const files = `${dir}/files.js`;
    await bundlePlugin(`${root}examples/hipcheck/sha256.ts`, sha);
    await bundlePlugin(`${root}examples/hipcheck/files.ts`, files);
    for (const out of [sha, files]) {
      const text = await Deno.readTextFile(out);
      assert.ok(text.startsWith("#!/usr/bin/env -S deno run"), "a shebang line");
      assert.ok(!/from\s*["']\.{1,2}\//.test(text), "no relative imports left: one file");
      assert.ok(((await Deno.stat(out)).mode! & 0o111) !== 0, "executable");
    }

    // The manifests: core splits the entrypoint on whitespace and copies its first word.
    const shaKdl = pluginManifest({
      publisher: "dummy",
      name: "sha256",
      version: "0.1.0",
      entrypoint: sha,
    });
    const filesKdl = pluginManifest({
      publisher: "plugwire",
      name: "files",
      version: "0.1.0",
      entrypoint: files,
      dependencies: { "dummy/sha256": { version: "0.1.0", manifest: `${dir}/sha256.kdl` } },
    });
    await Deno.writeTextFile(`${dir}/sha256.kdl`, shaKdl);
    await Deno.writeTextFile(`${dir}/files.kdl`, filesKdl);
    assert.match(filesKdl, new RegExp(`on arch="x86_64-unknown-linux-gnu" "${files}"`));
    assert.match(filesKdl, /plugin "dummy\/sha256" version="0.1.0" manifest=".*sha256.kdl"/);
    const entry = /on arch="x86_64-unknown-linux-gnu" "([^"]+)"/.exec(shaKdl)![1].split(/\s+/)[0];
    assert.ok((await Deno.stat(entry)).isFile);

    // The bundled sha256, run as core runs it: the file itself, with --port and --log-level.
    const shaProcess = new PluginProcess([sha], ["--log-level", "info"], { PATH });
    processes.push(shaProcess);
    await shaProcess.ready();
    const shaStream = new QueryStream(shaProcess.client);
    await shaStream.headers;
    const asked = submit(1, "", [[1]], { publisher: "dummy", plugin: "sha256" });
    shaStream.send(...asked.chunks);
    const digest = (await shaStream.nextMessage(asked.exchange)).outputs[0] as number[];
    assert.deepEqual(digest.slice(0, 2), [75, 245]);

    // The bundled files plugin: configuration, default policy, and a query with its sub-query.
    const repo = await Deno.makeTempDir({ dir, prefix: "repo-" });
    await Deno.mkdir(`${repo}/.git`);
    await Deno.writeTextFile(`${repo}/.git/HEAD`, "ref: refs/heads/main\n");
    await Deno.writeTextFile(`${repo}/a.txt`, "a");
    await Deno.writeTextFile(`${repo}/b.txt`, "b");
    const filesProcess = new PluginProcess([files], ["--log-level", "info"], { PATH });
    processes.push(filesProcess);
    await filesProcess.ready();
    const configured = await filesProcess.service.setConfiguration({
      configuration: JSON.stringify({ "max-files": 1 }),
    });
    assert.equal(configured.status, ConfigurationStatus.NONE);
    const policy = await filesProcess.service.getDefaultPolicyExpression({ empty: {} });
    assert.equal(policy.policyExpression, "(lte $ 1)");
    const stream = new QueryStream(filesProcess.client);
    await stream.headers;
    const target = {
      specifier: repo,
      local: { path: repo, git_ref: "main" },
      remote: null,
      package: null,
    };
    const query = submit(1, "", [target], { publisher: "plugwire", plugin: "files" });
    stream.send(...query.chunks);
    const sub = await stream.nextMessage(query.exchange);
    assert.deepEqual([sub.kind, sub.publisher, sub.plugin, sub.query, sub.keys], [
      "submit",
      "dummy",
      "sha256",
      "sha256",
      [[2]],
    ]);
    // The driver answers as core would, from the sha256 plugin's own answer.
    const answer = submit(3, "sha256", [[2]], { publisher: "dummy", plugin: "sha256" });
    shaStream.send(...answer.chunks);
    const digestOf2 = (await shaStream.nextMessage(answer.exchange)).outputs[0] as number[];
    assert.deepEqual(digestOf2, await sha256([2]));
    stream.send(...query.exchange.send({
      kind: "reply",
      publisher: "dummy",
      plugin: "sha256",
      query: "sha256",
      keys: [],
      outputs: [digestOf2],
      concerns: [],
    }));
    const reply = await stream.nextMessage(query.exchange);
    assert.equal(reply.kind, "reply");
    assert.deepEqual(reply.outputs, [2]);
    assert.deepEqual(reply.concerns, [`sha256 first byte ${digestOf2[0]}`]);

    // Both end when core closes their streams.
    stream.close();
    shaStream.close();
    assert.equal((await filesProcess.exited()).code, 0);
    assert.equal((await shaProcess.exited()).code, 0);
  } finally {
    for (const p of processes) await p.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name: "node: the same plugin SDK serves Hipcheck queries under Node 20+",
  async fn() {
    assertNode20();
    const dir = await Deno.makeTempDir({ dir: testRoot(), prefix: "node-" });
    let plugin: PluginProcess | undefined;
    try {
      await bundleForNode("tests/fixtures/hipcheck_node_main.ts", `${dir}/plugin.mjs`);
      plugin = new PluginProcess(["node", `${dir}/plugin.mjs`], ["--log-level", "info"]);
      await plugin.ready();
      const configured = await plugin.service.setConfiguration({ configuration: '{"mode":"b"}' });
      assert.equal(configured.status, ConfigurationStatus.NONE);
      const stream = new QueryStream(plugin.client);
      await stream.headers;
      const { exchange, chunks } = submit(1, "", [{ any: ["json", 1] }]);
      stream.send(...chunks);
      assert.deepEqual((await stream.nextMessage(exchange)).outputs, [{ any: ["json", 1] }]);
      stream.close();
      assert.equal((await plugin.exited()).code, 0);
    } finally {
      await plugin?.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

testNoLeftovers();
