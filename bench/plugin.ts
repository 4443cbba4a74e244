/**
 * The plugwire plugin of the benchmark: the same services as the Go bench plugin
 * (`gobench plugin`): grpctest.Test (Double, Bidirectional, Stream, PrintStdio), proto.KV in
 * memory and plugwire.bench.Bench/Echo. Cookie BASIC_PLUGIN=hello, version 1; a unix socket,
 * or TCP when BENCH_NETWORK=tcp.
 *
 *     deno run -A bench/plugin.ts   # only useful when started by a host
 *
 * @module
 */

import { grpcPlugin, RpcError, serve, Status } from "../plugin.ts";
import { KV } from "../gen/kv/kv_pb.ts";
import { PingPong, Test } from "../gen/grpctest/grpctest_pb.ts";
import { KV_HANDSHAKE } from "../examples/kv/shared.ts";
import { Bench } from "./bench_service.ts";

const store = new Map<string, Uint8Array>();

await serve({
  handshake: KV_HANDSHAKE,
  network: Deno.env.get("BENCH_NETWORK") === "tcp" ? "tcp" : "unix",
  plugins: {
    test: grpcPlugin(Test, {
      double: ({ input }) => ({ output: input * 2 }),
      printKV: () => ({}),
      async bidirectional({ id }, { broker }) {
        const connection = await broker.dial(id);
        try {
          const { msg } = await connection.client(PingPong).ping({});
          if (msg !== "pong") throw new RpcError(Status.INTERNAL, `bad pong ${msg}`);
          return { id };
        } finally {
          connection.close();
        }
      },
      async *stream(requests) {
        for await (const { input } of requests) yield { output: input * 2 };
      },
      printStdio: ({ stdout, stderr }) => {
        if (stdout.length) Deno.stdout.writeSync(stdout);
        if (stderr.length) Deno.stderr.writeSync(stderr);
        return {};
      },
      panic: () => {
        throw new RpcError(Status.UNIMPLEMENTED, "the bench plugin does not panic");
      },
    }),
    kv: grpcPlugin(KV, {
      put({ key, value }) {
        store.set(key, value);
        return {};
      },
      get({ key }) {
        const value = store.get(key);
        if (!value) throw new RpcError(Status.NOT_FOUND, `key not found: ${key}`);
        return { value };
      },
    }),
    bench: grpcPlugin(Bench, {
      async *echo(requests) {
        for await (const message of requests) yield message;
      },
    }),
  },
});
