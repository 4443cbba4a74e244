/**
 * The counter plugin of go-plugin's examples/bidirectional, in TypeScript. `Put` adds to a
 * stored counter, but the addition itself is a callback to the host: the host serves
 * `proto.AddHelper` through the broker and passes its id in `add_server`. Counters live in
 * `kv_<key>` files as `{"Value":n}`, like the Go plugin's, and `Get` of a key never put is an
 * error, as in Go. `COUNTER_NETWORK=tcp` serves on loopback TCP instead of a unix socket.
 *
 * @module
 */

import { grpcPlugin, logger, serve } from "../../plugin.ts";
import { AddHelper, Counter } from "../../gen/counter/counter_pb.ts";
import { COUNTER_HANDSHAKE } from "./shared.ts";

const log = logger.named("counter");

async function read(key: string): Promise<bigint> {
  const text = await Deno.readTextFile(`kv_${key}`);
  // Go's encoding/json writes int64 as a plain number: read it as text to keep all 64 bits.
  const match = /"Value"\s*:\s*(-?\d+)/.exec(text);
  if (!match) throw new Error(`kv_${key}: no "Value" in ${JSON.stringify(text)}`);
  return BigInt(match[1]);
}

await serve({
  handshake: COUNTER_HANDSHAKE,
  network: Deno.env.get("COUNTER_NETWORK") === "tcp" ? "tcp" : "unix",
  plugins: {
    counter: grpcPlugin(Counter, {
      async put({ addServer, key, value }, { broker }) {
        // Go: `v, _ := k.Get(key)`, so a missing or unreadable file counts as 0.
        const current = await read(key).catch(() => 0n);
        const helper = await broker.dial(addServer);
        try {
          const { r } = await helper.client(AddHelper).sum({ a: current, b: value });
          await Deno.writeTextFile(`kv_${key}`, `{"Value":${r}}`);
          log.info("put", { key, value: Number(value), total: Number(r) });
          return {};
        } finally {
          helper.close();
        }
      },
      async get({ key }) {
        return { value: await read(key) };
      },
    }),
  },
});
