/**
 * Hipcheck plugins behind the gateway, through plugwire's TypeScript Hipcheck core: the example
 * plugins `dummy/sha256` and `plugwire/files` (which sub-queries sha256) as real processes,
 * queried with `POST /hipcheck/<publisher>/<name>[/<query>]` and a JSON key.
 */

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { type Gateway, startGateway } from "../gateway.ts";
import { TEST_MARK, testNoLeftovers } from "./_util.ts";

const KEY = "hipcheck-test-key";
const EXAMPLES = new URL("../examples/hipcheck/", import.meta.url).pathname;
const DENO_CONFIG = new URL("../deno.json", import.meta.url).pathname;

async function hipcheckGateway(): Promise<{
  gateway: Gateway;
  dir: string;
  [Symbol.asyncDispose](): Promise<void>;
}> {
  const dir = await Deno.makeTempDir({ prefix: "plugwire-gw-hc-" });
  const cmd = (file: string) =>
    JSON.stringify([
      Deno.execPath(),
      "run",
      "-A",
      "--quiet",
      `--config=${DENO_CONFIG}`,
      EXAMPLES + file,
    ]);
  await Deno.writeTextFile(
    `${dir}/gw.toml`,
    `listen = "127.0.0.1:0"
[auth]
keys = ["${KEY}"]
[plugins.files]
hipcheck = ${cmd("files.ts")}
publisher = "plugwire"
depends = ["sha256"]
[plugins.sha256]
hipcheck = ${cmd("sha256.ts")}
publisher = "dummy"
`,
  );
  const gateway = await startGateway({
    config: `${dir}/gw.toml`,
    handleSignals: false,
    log: () => {},
    pluginEnv: { PLUGWIRE_TEST_MARK: TEST_MARK },
  });
  return {
    gateway,
    dir,
    async [Symbol.asyncDispose]() {
      await gateway.stop();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

async function ask(gateway: Gateway, path: string, key: unknown, auth = true) {
  const response = await fetch(`${gateway.url}/hipcheck/${path}`, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      ...(auth ? { authorization: `Bearer ${KEY}` } : {}),
    },
    body: JSON.stringify(key),
  });
  return { status: response.status, body: await response.json() };
}

Deno.test("Hipcheck plugins: queries with a JSON key, sub-queries, errors as Connect codes", async () => {
  await using s = await hipcheckGateway();
  const expected = [...createHash("sha256").update(new Uint8Array([1, 2, 3])).digest()];
  const digest = await ask(s.gateway, "dummy/sha256", [1, 2, 3]);
  assert.deepEqual(digest, { status: 200, body: { output: expected, concerns: [] } });
  const named = await ask(s.gateway, "dummy/sha256/sha256", [1, 2, 3]);
  assert.deepEqual(named.body.output, expected);

  // files counts the files of a directory and asks sha256 (in its core) about the count.
  await Deno.mkdir(`${s.dir}/repo/sub`, { recursive: true });
  for (const f of ["a", "b", "sub/c"]) await Deno.writeTextFile(`${s.dir}/repo/${f}`, f);
  const files = await ask(s.gateway, "plugwire/files", {
    specifier: "repo",
    local: { path: `${s.dir}/repo`, git_ref: "HEAD" },
  });
  const first = createHash("sha256").update(new Uint8Array([3])).digest()[0];
  assert.deepEqual(files, {
    status: 200,
    body: { output: 3, concerns: [`sha256 first byte ${first}`] },
  });

  const badKey = await ask(s.gateway, "dummy/sha256", ["not a byte"]);
  assert.ok(badKey.status >= 400, JSON.stringify(badKey));
  assert.equal(typeof badKey.body.code, "string");
  const noQuery = await ask(s.gateway, "dummy/sha256/nope", [1]);
  assert.deepEqual([noQuery.status, noQuery.body.code], [404, "not_found"]);
  const noPlugin = await ask(s.gateway, "dummy/missing", [1]);
  assert.deepEqual([noPlugin.status, noPlugin.body.code], [404, "not_found"]);
  assert.equal((await ask(s.gateway, "dummy/sha256", [1], false)).status, 401);

  const status = s.gateway.status();
  assert.deepEqual(status.map((p) => [p.id, p.kind, p.state]), [
    ["files", "hipcheck", "ready"],
    ["sha256", "hipcheck", "ready"],
  ]);
  // The default query is listed as "" (shown as "(default)") beside its named twin.
  assert.deepEqual(status.find((p) => p.id === "sha256")!.methods, ["(default)", "sha256"]);
});

testNoLeftovers();
