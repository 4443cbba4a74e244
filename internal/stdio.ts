/**
 * A plugin's own stdout and stderr, carried to the host over `plugin.GRPCStdio/StreamStdio`
 * (docs/protocol.md §6.4).
 *
 * Plugin side: {@link OutputCapture} takes what the plugin writes through the runtime's APIs
 * from the moment `plugin.ts` is loaded, so nothing can reach fd 1 before the handshake line,
 * and holds it in chunks of at most 1 KiB until a host streams it. Host side:
 * {@link drainStdio} reads the stream for the plugin's whole life and hands the bytes to sinks.
 *
 * @module
 */

import { type GRPCStdio, StdioData_Channel } from "../gen/core/plugin/grpc_stdio_pb.ts";
import type { ServiceClient, ServiceImpl } from "./grpc.ts";
import { captureOutput, writeRealStderr } from "./runtime.ts";

/** go-plugin reads the plugin's pipes 1024 bytes at a time and sends each read as one message. */
export const STDIO_CHUNK_SIZE = 1024;

/** Held output beyond this is dropped (oldest first) while no host reads it. */
const MAX_BUFFERED_BYTES = 16 * 1024 * 1024;

interface Chunk {
  channel: StdioData_Channel;
  data: Uint8Array;
}

/** Captures the process's stdout/stderr writes and serves them to one host at a time. */
export class OutputCapture {
  readonly #queue: Chunk[] = [];
  #buffered = 0;
  #dropped = 0;
  #wake: (() => void) | undefined;
  #restore: (() => void) | undefined;
  #handshakePrinted = false;

  /**
   * Starts capturing. Idempotent. Until {@link OutputCapture.handshakePrinted}, stderr goes to
   * the real stderr, as in go-plugin: a plugin that dies before its handshake must still tell
   * the host why (the host shows the tail of its stderr).
   */
  start(): void {
    if (this.#restore) return;
    this.#restore = captureOutput((channel, bytes) => {
      if (channel === "stderr" && !this.#handshakePrinted) return writeRealStderr(bytes);
      this.push(channel === "stdout" ? StdioData_Channel.STDOUT : StdioData_Channel.STDERR, bytes);
    });
  }

  /** From now on stderr is captured too. */
  handshakePrinted(): void {
    this.#handshakePrinted = true;
  }

  /** Stops capturing and restores the runtime's own stdout/stderr. */
  stop(): void {
    this.#restore?.();
    this.#restore = undefined;
  }

  /** Whether capture is on. */
  get active(): boolean {
    return this.#restore !== undefined;
  }

  /** Queues bytes in chunks of at most {@link STDIO_CHUNK_SIZE}. Empty writes are skipped. */
  push(channel: StdioData_Channel, bytes: Uint8Array): void {
    for (let i = 0; i < bytes.length; i += STDIO_CHUNK_SIZE) {
      const data = bytes.slice(i, i + STDIO_CHUNK_SIZE);
      this.#queue.push({ channel, data });
      this.#buffered += data.length;
    }
    while (this.#buffered > MAX_BUFFERED_BYTES) {
      const old = this.#queue.shift()!;
      this.#buffered -= old.data.length;
      if (this.#dropped === 0) {
        writeRealStderr(
          "plugwire: plugin output is not being read by the host; dropping the oldest output\n",
        );
      }
      this.#dropped += old.data.length;
    }
    this.#wake?.();
  }

  /** The GRPCStdio implementation: streams held and future chunks until the call ends. */
  impl(): ServiceImpl<typeof GRPCStdio> {
    // deno-lint-ignore no-this-alias
    const self = this;
    return {
      async *streamStdio(_request, ctx) {
        while (!ctx.signal.aborted) {
          const chunk = self.#queue.shift();
          if (chunk) {
            self.#buffered -= chunk.data.length;
            yield chunk;
            continue;
          }
          await new Promise<void>((resolve) => {
            const wake = () => {
              self.#wake = undefined;
              ctx.signal.removeEventListener("abort", wake);
              resolve();
            };
            self.#wake = wake;
            ctx.signal.addEventListener("abort", wake);
          });
        }
      },
    };
  }
}

/**
 * Where the host sends a plugin's streamed output.
 *
 * @example Collecting a plugin's stdout as text
 * ```ts
 * import type { StartOptions, StdioSink } from "@plugwire/plugwire/host";
 * import { KV } from "../gen/kv/kv_pb.ts";
 * import assert from "node:assert/strict";
 *
 * const decoder = new TextDecoder();
 * let output = "";
 * const collect: StdioSink = (bytes) => {
 *   output += decoder.decode(bytes, { stream: true });
 * };
 * const options: StartOptions = {
 *   cmd: ["./kv-plugin"],
 *   handshake: { protocolVersion: 1, magicCookieKey: "BASIC_PLUGIN", magicCookieValue: "hello" },
 *   plugins: { kv: KV },
 *   syncStdout: collect, // what the plugin prints, in order, once it is connected
 * };
 * collect(new TextEncoder().encode("ready\n")); // what the host does with each chunk
 * assert.equal(output, "ready\n");
 * ```
 */
export type StdioSink = (bytes: Uint8Array) => void;

/**
 * Reads a plugin's GRPCStdio stream until it ends, sending each chunk to its sink. A plugin
 * without the service, a closed connection or a cancelled call end it quietly, as in go-plugin.
 */
export async function drainStdio(
  client: ServiceClient<typeof GRPCStdio>,
  sinks: { stdout: StdioSink; stderr: StdioSink },
  signal: AbortSignal,
  onUnknown: (channel: number) => void,
): Promise<void> {
  try {
    for await (const { channel, data } of client.streamStdio({}, { signal })) {
      if (channel === StdioData_Channel.STDOUT) sinks.stdout(data);
      else if (channel === StdioData_Channel.STDERR) sinks.stderr(data);
      else onUnknown(channel);
    }
  } catch {
    // Unimplemented, Unavailable, Cancelled or EOF: the stream is over, nothing to report.
  }
}
