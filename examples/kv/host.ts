/**
 * The KV host of go-plugin's examples/grpc, in TypeScript:
 *
 *     deno run -A examples/kv/host.ts put KEY VALUE
 *     deno run -A examples/kv/host.ts get KEY
 *
 * `KV_PLUGIN` names the plugin command, run with `sh -c` as go-plugin's host does (e.g. the
 * Go plugin `plugin-go-grpc`); without it, the TypeScript plugin beside this file runs.
 * Set `KV_AUTOMTLS=1` for AutoMTLS.
 *
 * @module
 */

import { startPlugin } from "../../host.ts";
import { KV } from "../../gen/kv/kv_pb.ts";
import { denoPluginCommand, KV_HANDSHAKE } from "./shared.ts";

const [command, key, value] = Deno.args;
if ((command !== "put" || value === undefined) && (command !== "get" || key === undefined)) {
  console.error("usage: host.ts put KEY VALUE | get KEY");
  Deno.exit(2);
}
const kvPlugin = Deno.env.get("KV_PLUGIN");

try {
  await using plugin = await startPlugin({
    cmd: kvPlugin
      ? ["sh", "-c", kvPlugin]
      : denoPluginCommand(new URL("plugin.ts", import.meta.url)),
    handshake: KV_HANDSHAKE,
    plugins: { kv: KV },
    autoMtls: Deno.env.get("KV_AUTOMTLS") === "1",
  });
  const kv = plugin.dispense("kv");
  if (command === "put") {
    await kv.put({ key, value: new TextEncoder().encode(value) });
  } else {
    const { value } = await kv.get({ key });
    console.log(new TextDecoder().decode(value));
  }
} catch (err) {
  console.log(`error: ${(err as Error).message}`);
  Deno.exitCode = 1;
}
