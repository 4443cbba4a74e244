/**
 * The demo: a TypeScript host starts the TypeScript KV plugin, stores a value, reads it back
 * and kills the plugin. Run it with `./scripts/deno.sh task demo`.
 *
 * @module
 */

import { startPlugin } from "../../host.ts";
import { KV } from "../../gen/kv/kv_pb.ts";
import { denoPluginCommand, KV_HANDSHAKE } from "./shared.ts";

const workDir = await Deno.makeTempDir({ prefix: "plugwire-demo-" });
try {
  const started = performance.now();
  await using plugin = await startPlugin({
    cmd: denoPluginCommand(new URL("plugin.ts", import.meta.url)),
    cwd: workDir,
    handshake: KV_HANDSHAKE,
    plugins: { kv: KV },
    autoMtls: true,
    name: "kv",
    logger: (record) =>
      console.log(`  [${record.plugin} ${record.level}] ${record.message}`, record.fields),
  });
  console.log(
    `started plugin pid ${plugin.pid} on ${plugin.network}:${plugin.address} ` +
      `(protocol v${plugin.protocolVersion}, mTLS) in ${
        (performance.now() - started).toFixed(0)
      } ms`,
  );
  const kv = plugin.dispense("kv");
  await kv.put({ key: "greeting", value: new TextEncoder().encode("hello from the host") });
  const { value } = await kv.get({ key: "greeting" });
  console.log(`get greeting -> ${JSON.stringify(new TextDecoder().decode(value))}`);
  await plugin.ping();
  console.log("ping ok; killing the plugin");
  await plugin.kill();
  console.log(`plugin exited with ${JSON.stringify(await plugin.exited)}`);
} finally {
  await Deno.remove(workDir, { recursive: true });
}
