// Checksummed plugins (go-plugin's SecureConfig, docs/protocol.md §11) against real processes.
// The host hashes the executable it is about to start, that is cmd[0] resolved on PATH, as
// go-plugin hashes cmd.Path: for helperPlugin() that is the deno binary, for a wrapper script
// the script. A mismatch must start nothing.
import assert from "node:assert/strict";
import { PluginError, startPlugin } from "../host.ts";
import { KV } from "../gen/kv/kv_pb.ts";
import {
  denoCommand,
  HANDSHAKE,
  helperPlugin,
  processesWithMark,
  testNoLeftovers,
  testRoot,
} from "./_util.ts";

const encode = (s: string) => new TextEncoder().encode(s);
const hex = (bytes: ArrayBuffer) =>
  [...new Uint8Array(bytes)].map((b) => b.toString(16).padStart(2, "0")).join("");

async function digestOf(path: string, algorithm: "SHA-256" | "SHA-512"): Promise<ArrayBuffer> {
  return await crypto.subtle.digest(algorithm, await Deno.readFile(path));
}

/** Entries of the test root (the plugins' socket directories live there). */
function rootEntries(): string[] {
  return [...Deno.readDirSync(testRoot())].map((e) => e.name).sort();
}

/** Asserts that `start` fails with `code` and that no process or socket directory appeared. */
async function assertRefusedWithoutStarting(
  start: () => Promise<unknown>,
  code: string,
  message: RegExp,
): Promise<PluginError> {
  const processesBefore = processesWithMark();
  const entriesBefore = rootEntries();
  const err = await start().then(() => undefined, (e) => e);
  assert.ok(err instanceof PluginError, String(err));
  console.log(`[${err.code}] ${err.message}`);
  assert.equal(err.code, code);
  assert.match(err.message, message);
  assert.deepEqual(processesWithMark(), processesBefore, "a plugin process was started");
  assert.deepEqual(rootEntries(), entriesBefore, "a socket directory was made");
  return err;
}

Deno.test("checksum: the SHA-256 of the executable (the deno binary) matches: the plugin starts", async () => {
  const digest = hex(await digestOf(Deno.execPath(), "SHA-256"));
  for (const form of [digest, digest.toUpperCase()]) {
    await using plugin = await startPlugin({
      ...helperPlugin("serve"),
      plugins: { kv: KV },
      checksum: { algorithm: "SHA-256", digest: form },
    });
    await plugin.dispense("kv").put({ key: "a", value: encode("1") });
  }
  // The algorithm defaults to SHA-256; the digest may be bytes.
  await using plugin = await startPlugin({
    ...helperPlugin("serve"),
    plugins: { kv: KV },
    checksum: { digest: new Uint8Array(await digestOf(Deno.execPath(), "SHA-256")) },
  });
  await plugin.ping();
});

Deno.test("checksum: SHA-512 works", async () => {
  const digest = await digestOf(Deno.execPath(), "SHA-512");
  assert.equal(digest.byteLength, 64);
  await using plugin = await startPlugin({
    ...helperPlugin("serve"),
    plugins: { kv: KV },
    checksum: { algorithm: "SHA-512", digest: hex(digest) },
  });
  await plugin.ping();
});

Deno.test("checksum: a mismatch is refused with checksum-mismatch, and nothing is started", async () => {
  const good = new Uint8Array(await digestOf(Deno.execPath(), "SHA-256"));
  const flipped = good.slice();
  flipped[31] ^= 1;
  const err = await assertRefusedWithoutStarting(
    () =>
      startPlugin({
        ...helperPlugin("serve"),
        plugins: { kv: KV },
        checksum: { algorithm: "SHA-256", digest: flipped },
      }),
    "checksum-mismatch",
    /^checksums did not match: /,
  );
  assert.equal(err.path, Deno.execPath());
  assert.ok(err.message.includes(Deno.execPath()));

  // The right digest under the wrong algorithm is a mismatch too.
  await assertRefusedWithoutStarting(
    () =>
      startPlugin({
        ...helperPlugin("serve"),
        plugins: { kv: KV },
        checksum: { algorithm: "SHA-512", digest: good },
      }),
    "checksum-mismatch",
    /^checksums did not match: .*\(SHA-512\)/,
  );
});

Deno.test("checksum: an executable that cannot be read, an empty or non-hex digest", async () => {
  await assertRefusedWithoutStarting(
    () =>
      startPlugin({
        cmd: [`${testRoot()}/no-such-plugin`],
        handshake: HANDSHAKE,
        plugins: { kv: KV },
        checksum: { digest: "00".repeat(32) },
      }),
    "checksum-mismatch",
    /^error verifying checksum: /,
  );
  await assertRefusedWithoutStarting(
    () =>
      startPlugin({
        ...helperPlugin("serve"),
        plugins: { kv: KV },
        checksum: { digest: new Uint8Array() },
      }),
    "misconfigured",
    /^no checksum provided$/,
  );
  await assertRefusedWithoutStarting(
    () =>
      startPlugin({
        ...helperPlugin("serve"),
        plugins: { kv: KV },
        checksum: { digest: "not hex" },
      }),
    "misconfigured",
    /^checksum digest is not a hex string$/,
  );
});

Deno.test("checksum: a plugin found on PATH is hashed where it was found; replacing it is caught", async () => {
  // A wrapper script named like a plugin binary, on PATH, that execs the helper plugin.
  const bin = await Deno.makeTempDir({ dir: testRoot(), prefix: "bin-" });
  const script = `${bin}/kv-plugin`;
  const [deno, ...args] = denoCommand("tests/fixtures/helper_plugin.ts");
  const quote = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;
  await Deno.writeTextFile(
    script,
    `#!/bin/sh\nexec ${[deno, ...args].map(quote).join(" ")} "$@"\n`,
    { mode: 0o755 },
  );
  const path = Deno.env.get("PATH") ?? "";
  Deno.env.set("PATH", `${bin}:${path}`);
  try {
    const digest = hex(await digestOf(script, "SHA-256"));
    const options = { ...helperPlugin("serve"), cmd: ["kv-plugin"], plugins: { kv: KV } };
    {
      await using plugin = await startPlugin({ ...options, checksum: { digest } });
      assert.equal(plugin.name, "kv-plugin");
      await plugin.dispense("kv").put({ key: "a", value: encode("1") });
    }
    // Someone replaces the plugin: same name, one more line.
    await Deno.writeTextFile(script, "# tampered\n", { append: true });
    const err = await assertRefusedWithoutStarting(
      () => startPlugin({ ...options, checksum: { digest } }),
      "checksum-mismatch",
      /^checksums did not match: /,
    );
    assert.equal(err.path, script);
  } finally {
    Deno.env.set("PATH", path);
    await Deno.remove(bin, { recursive: true });
  }
});

Deno.test("checksum and reattach together are refused, as in go-plugin", async () => {
  const err = await startPlugin({
    reattach: {
      protocol: "grpc",
      protocolVersion: 1,
      network: "unix",
      address: `${testRoot()}/nothing`,
      pid: Deno.pid,
    },
    handshake: HANDSHAKE,
    plugins: { kv: KV },
    checksum: { digest: "00".repeat(32) },
  }).then(() => undefined, (e) => e);
  assert.ok(err instanceof PluginError, String(err));
  console.log(`[${err.code}] ${err.message}`);
  assert.equal(err.code, "misconfigured");
  assert.equal(err.message, "only one of Reattach or SecureConfig can be set");
});

testNoLeftovers();
