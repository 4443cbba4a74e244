/**
 * The counter plugin of go-plugin's examples/bidirectional, in TypeScript. `Put` adds to a
 * stored counter, but the addition itself is a callback to the host: the host serves
 * `proto.AddHelper` through the broker and passes its id in `add_server`. Counters live in
 * `kv_<key>` files as `{"Value":n}`, like the Go plugin's.
 *
 * @module
 */

import { grpcPlugin, logger, serve } from "../../plugin.ts";
import { AddHelper, Counter } from "../../gen/counter/counter_pb.ts";
import { COUNTER_HANDSHAKE } from "./shared.ts";

const log = logger.named("counter");

async function read(key: string): Promise<bigint> {
  try {
    const { Value } = JSON.parse(await Deno.readTextFile(`kv_${key}`));
    return BigInt(Value ?? 0);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return 0n;
    throw err;
  }
}

await serve({
  handshake: COUNTER_HANDSHAKE,
  plugins: {
    counter: grpcPlugin(Counter, {
      async put({ addServer, key, value }, { broker }) {
        const helper = await broker.dial(addServer);
        try {
          const { r } = await helper.client(AddHelper).sum({ a: await read(key), b: value });
          await Deno.writeTextFile(`kv_${key}`, JSON.stringify({ Value: Number(r) }));
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
