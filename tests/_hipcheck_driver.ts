/**
 * A small Hipcheck-core-like driver for plugin process tests: it starts a plugin as core does
 * (`--port P`, a port found by bind-0-then-close), calls the setup RPCs, and drives the query
 * stream with the shared query state machine, seeing the response headers and every chunk.
 *
 * @module
 */

import * as grpc from "@grpc/grpc-js";
import type { Buffer } from "node:buffer";
import {
  type InitiateQueryProtocolResponse,
  PluginService,
  type Query,
} from "../gen/hipcheck/v1/hipcheck_pb.ts";
import { type ServiceClient, serviceDefinition } from "../internal/grpc.ts";
import { createServiceClient } from "../internal/grpc_client.ts";
import { QueryExchange, type QueryMessage } from "../internal/hipcheck/query_state_machine.ts";
import { AsyncQueue } from "../internal/queue.ts";
import { denoCommand, TEST_MARK } from "./_util.ts";

/** A port that was free a moment ago, found the way core finds one (bind 0, close). */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

/** The open query stream, from the driver's (core's) side. */
export class QueryStream {
  readonly headers: Promise<void>;
  readonly received = new AsyncQueue<Query>();
  readonly ended: Promise<void>;
  readonly #call: grpc.ClientDuplexStream<unknown, InitiateQueryProtocolResponse>;
  readonly #iterator: AsyncIterator<Query>;
  messagesBeforeHeaders = 0;

  constructor(client: grpc.Client) {
    const def = serviceDefinition(PluginService).initiateQueryProtocol;
    this.#call = client.makeBidiStreamRequest(
      def.path,
      def.requestSerialize,
      def.responseDeserialize as (b: Buffer) => InitiateQueryProtocolResponse,
    );
    let gotHeaders = false;
    this.headers = new Promise((resolve) =>
      this.#call.on("metadata", () => {
        gotHeaders = true;
        resolve();
      })
    );
    this.#call.on("data", (response: InitiateQueryProtocolResponse) => {
      if (!gotHeaders) this.messagesBeforeHeaders++;
      this.received.push(response.query!);
    });
    this.ended = new Promise((resolve) => {
      this.#call.on("end", () => {
        this.received.end();
        resolve();
      });
      this.#call.on("error", () => {
        this.received.end();
        resolve();
      });
    });
    this.#iterator = this.received[Symbol.asyncIterator]();
  }

  send(...chunks: Query[]): void {
    for (const query of chunks) this.#call.write({ query });
  }

  async next(): Promise<Query> {
    const { value, done } = await this.#iterator.next();
    if (done) throw new Error("the plugin ended the stream");
    return value;
  }

  /** Reads chunks into `exchange` until it yields a whole message. */
  async nextMessage(exchange: QueryExchange): Promise<QueryMessage> {
    for (;;) {
      const message = exchange.receive(await this.next());
      if (message) return message;
    }
  }

  close(): void {
    this.#call.end();
  }
}

/** A plugin process started as Hipcheck core starts one. */
export class PluginProcess {
  readonly stderrLines: string[] = [];
  readonly status: Promise<Deno.CommandStatus>;
  readonly client: grpc.Client;
  readonly service: ServiceClient<typeof PluginService>;
  readonly #child: Deno.ChildProcess;
  readonly #stderrDone: Promise<void>;
  readonly #stdoutDone: Promise<void>;
  /** What the plugin wrote to stdout (Hipcheck core passes it into its own stdout). */
  stdout = "";

  /**
   * Starts `script` (a TypeScript file of this repository) or, given an array, that command,
   * with `--port P` and `args`.
   */
  constructor(script: string | string[], args: string[], env: Record<string, string> = {}) {
    const port = freePort();
    const [cmd, ...rest] = typeof script === "string"
      ? denoCommand(script, "--port", String(port), ...args)
      : [...script, "--port", String(port), ...args];
    const child = this.#child = new Deno.Command(cmd, {
      args: rest,
      env: { PLUGWIRE_TEST_MARK: TEST_MARK, NO_COLOR: "1", ...env },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.#stdoutDone = (async () => {
      for await (const text of child.stdout.pipeThrough(new TextDecoderStream())) {
        this.stdout += text;
      }
    })();
    this.status = this.#child.status;
    this.#stderrDone = (async () => {
      let rest = "";
      for await (const text of child.stderr.pipeThrough(new TextDecoderStream())) {
        const lines = (rest + text).split("\n");
        rest = lines.pop()!;
        this.stderrLines.push(...lines);
      }
      if (rest) this.stderrLines.push(rest);
    })();
    this.client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
    this.service = createServiceClient(PluginService, this.client);
  }

  /** The plugin's pid. */
  get pid(): number {
    return this.#child.pid;
  }

  /** Waits until the plugin accepts connections (core retries its connect the same way). */
  ready(): Promise<void> {
    return new Promise((resolve, reject) =>
      this.client.waitForReady(Date.now() + 30_000, (err) => err ? reject(err) : resolve())
    );
  }

  /** Log records (Hipcheck's JSON lines) on stderr. */
  records(): { level: string; fields: { message: string }; target: string }[] {
    return this.stderrLines.filter((l) => l.startsWith("{")).map((l) => JSON.parse(l));
  }

  async stop(): Promise<void> {
    this.client.close();
    try {
      this.#child.kill("SIGKILL");
    } catch {
      // already gone
    }
    await this.status;
    await this.#stderrDone;
    await this.#stdoutDone;
  }

  async exited(): Promise<Deno.CommandStatus> {
    const status = await this.status;
    await this.#stderrDone;
    await this.#stdoutDone;
    this.client.close();
    return status;
  }
}

/** A core-side exchange for `id` and the chunks of its SUBMIT. */
export const submit = (
  id: number,
  query: string,
  keys: unknown[],
  target = { publisher: "test", plugin: "fixture" },
  maxBytes?: number,
) => {
  const exchange = new QueryExchange(id, "core", maxBytes);
  const chunks = exchange.send({
    kind: "submit",
    ...target,
    query,
    keys,
    outputs: [],
    concerns: [],
  });
  return { exchange, chunks };
};
