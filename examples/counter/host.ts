/**
 * The counter host of go-plugin's examples/bidirectional, in TypeScript:
 *
 *     deno run -A examples/counter/host.ts put KEY N
 *     deno run -A examples/counter/host.ts get KEY
 *
 * The host serves `proto.AddHelper` through the broker and the plugin calls it back to add.
 * `COUNTER_PLUGIN` names the plugin command, run with `sh -c` as go-plugin's host does (e.g.
 * go-plugin's Go counter plugin); without it, the TypeScript plugin beside this file runs.
 *
 * @module
 */

import { startPlugin } from "../../host.ts";
import { AddHelper, Counter } from "../../gen/counter/counter_pb.ts";
import { denoPluginCommand } from "../kv/shared.ts";
import { COUNTER_HANDSHAKE } from "./shared.ts";

const [command, key, amount] = Deno.args;
if ((command !== "put" || amount === undefined) && (command !== "get" || key === undefined)) {
  console.error("usage: host.ts put KEY N | get KEY");
  Deno.exit(2);
}
const counterPlugin = Deno.env.get("COUNTER_PLUGIN");

try {
  await using plugin = await startPlugin({
    cmd: counterPlugin
      ? ["sh", "-c", counterPlugin]
      : denoPluginCommand(new URL("plugin.ts", import.meta.url)),
    handshake: COUNTER_HANDSHAKE,
    plugins: { counter: Counter },
  });
  const counter = plugin.dispense("counter");
  if (command === "put") {
    await using adder = await plugin.broker.serve((s) =>
      s.add(AddHelper, { sum: ({ a, b }) => ({ r: a + b }) })
    );
    await counter.put({ addServer: adder.id, key, value: BigInt(amount) });
  } else {
    console.log(String((await counter.get({ key })).value));
  }
} catch (err) {
  console.log(`error: ${(err as Error).message}`);
  Deno.exitCode = 1;
}
