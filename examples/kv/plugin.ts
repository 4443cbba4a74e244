/**
 * The KV plugin of go-plugin's examples/grpc, in TypeScript: same service, cookie and
 * version, so go-plugin's Go host can run it and plugwire's host can run the Go plugin.
 * Like the Go plugin it keeps each value in a file `kv_<key>` in its working directory, so a
 * `put` and a later `get` from separate host runs meet. `KV_NETWORK=tcp` serves on loopback TCP
 * instead of a unix socket.
 *
 *     deno run -A examples/kv/plugin.ts   # only useful when started by a host
 *
 * @module
 */

import { grpcPlugin, logger, serve } from "../../plugin.ts";
import { KV } from "../../gen/kv/kv_pb.ts";
import { KV_HANDSHAKE } from "./shared.ts";

const log = logger.named("kv");
const SIGNATURE = "\n\nWritten from plugin-plugwire";

const serving = await serve({
  handshake: KV_HANDSHAKE,
  network: Deno.env.get("KV_NETWORK") === "tcp" ? "tcp" : "unix",
  plugins: {
    kv: grpcPlugin(KV, {
      async put({ key, value }) {
        const text = new TextDecoder().decode(value) + SIGNATURE;
        await Deno.writeTextFile(`kv_${key}`, text);
        log.info("put", { key, bytes: value.length });
        return {};
      },
      async get({ key }) {
        log.debug("get", { key });
        return { value: await Deno.readFile(`kv_${key}`) };
      },
    }),
  },
});
// Hosts show this line (they re-log a plugin's stderr), so a user can see where it listens.
log.info("serving", { network: serving.network, address: serving.address });
// The process serves on until the host shuts the plugin down; then serving.finished settles.
