/**
 * A plugin's own stdout and stderr, carried to the host over `plugin.GRPCStdio/StreamStdio`
 * (docs/protocol.md §6.4).
 *
 * Plugin side: {@link OutputCapture} takes what the plugin writes through the runtime's APIs
 * from the moment `serve()` has checked the magic cookie (so a process that merely imports
 * plugwire keeps its output), and holds it until a host streams it, in messages of at most
 * {@link STDIO_MESSAGE_SIZE} bytes. Host side:
 * {@link drainStdio} reads the stream for the plugin's whole life and hands the bytes to sinks.
 *
 * @module
 */

import { type GRPCStdio, StdioData_Channel } from "../gen/core/plugin/grpc_stdio_pb.ts";
import type { ServiceClient, ServiceImpl } from "./grpc.ts";
import { Wakeup } from "./queue.ts";
import { captureOutput, onExit, unrefDelay, writeRealStderr } from "./runtime.ts";

/**
 * The most output one StdioData message carries. go-plugin reads its pipes 1 KiB at a time and
 * sends each read as a message; the protocol does not fix a size (hosts write the bytes as they
 * come), and per-message cost dominates a stream of 1 KiB messages (bench/README.md, "stdio"), so
 * consecutive writes to one channel travel together, up to the size of a stream's message.
 */
export const STDIO_MESSAGE_SIZE = 32 * 1024;

/** Held output beyond this is dropped (oldest first) while no host reads it. */
const MAX_BUFFERED_BYTES = 16 * 1024 * 1024;

interface Chunk {
  channel: StdioData_Channel;
  data: Uint8Array;
}

/** At exit, at most this much unread output is written to the real stderr (the newest). */
export const EXIT_FLUSH_LIMIT = 64 * 1024;

/**
 * Captures the process's stdout/stderr writes and serves them to one host at a time.
 *
 * Output the host has not read when capture stops (the host's Shutdown, or the process ending
 * any way short of a signal) is not dropped: it is written to the process's real stderr, which
 * every go-plugin host reads and logs (stdout is not used: after the handshake go-plugin hosts
 * discard it). At most the newest {@link EXIT_FLUSH_LIMIT} bytes are written, after a line
 * saying how many older bytes were dropped, so that exiting stays bounded.
 */
export class OutputCapture {
  readonly #queue: Chunk[] = [];
  #buffered = 0;
  #dropped = 0;
  readonly #wakeup = new Wakeup();
  #restore: (() => void) | undefined;
  #stopExitHook: (() => void) | undefined;
  #handshakePrinted = false;
  #readers = 0;
  #ended = false;

  /**
   * Starts capturing. Idempotent. Until {@link OutputCapture.handshakePrinted}, stderr goes to
   * the real stderr, as in go-plugin: a plugin that dies before its handshake must still tell
   * the host why (the host shows the tail of its stderr).
   */
  start(): void {
    if (this.#restore) return;
    this.#ended = false;
    this.#restore = captureOutput((channel, bytes) => {
      if (channel === "stderr" && !this.#handshakePrinted) return writeRealStderr(bytes);
      this.push(channel === "stdout" ? StdioData_Channel.STDOUT : StdioData_Channel.STDERR, bytes);
    });
    this.#stopExitHook = onExit(() => this.flushUnread());
  }

  /** From now on stderr is captured too. */
  handshakePrinted(): void {
    this.#handshakePrinted = true;
  }

  /**
   * Stops capturing, restores the runtime's own stdout/stderr, ends the host's stream and
   * writes what the host did not read to the real stderr.
   */
  stop(): void {
    this.#restore?.();
    this.#restore = undefined;
    this.#stopExitHook?.();
    this.#stopExitHook = undefined;
    this.endStreams();
    this.flushUnread();
  }

  /** Ends the host's stream (it completes with OK); capture goes on until {@link stop}. */
  endStreams(): void {
    this.#ended = true;
    this.#wakeup.wake();
  }

  /**
   * Resolves once a reading host has taken everything captured so far, at once when no host
   * reads. A host that is still taking output gets more time: the wait ends when `idleMs` pass
   * without progress, or after `capMs` in all (true when everything was taken).
   */
  async drained(idleMs: number, capMs: number): Promise<boolean> {
    const end = Date.now() + capMs;
    let progressAt = Date.now();
    let left = this.#buffered;
    while (this.#buffered > 0 && this.#readers > 0 && Date.now() < end) {
      await unrefDelay(Math.min(10, end - Date.now()));
      if (this.#buffered < left) progressAt = Date.now();
      else if (Date.now() - progressAt >= idleMs) break;
      left = this.#buffered;
    }
    return this.#buffered === 0;
  }

  /** Writes what no host has read to the real stderr (bounded, see the class doc). */
  flushUnread(): void {
    if (this.#buffered === 0 && this.#dropped === 0) return;
    const chunks = this.#queue.splice(0);
    let skipped = this.#dropped;
    let total = this.#buffered;
    this.#buffered = 0;
    this.#dropped = 0;
    while (chunks.length && total > EXIT_FLUSH_LIMIT) {
      const chunk = chunks.shift()!;
      total -= chunk.data.length;
      skipped += chunk.data.length;
    }
    if (skipped > 0) {
      writeRealStderr(
        `plugwire: ${skipped} bytes of this plugin's output were never read by its host; ` +
          `the last ${total} bytes follow\n`,
      );
    }
    for (const chunk of chunks) writeRealStderr(chunk.data);
  }

  /** Queues a copy of bytes in chunks of at most {@link STDIO_MESSAGE_SIZE}. Empty writes are skipped. */
  push(channel: StdioData_Channel, bytes: Uint8Array): void {
    for (let i = 0; i < bytes.length; i += STDIO_MESSAGE_SIZE) {
      const data = bytes.slice(i, i + STDIO_MESSAGE_SIZE);
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
    this.#wakeup.wake();
  }

  /** Takes the oldest chunk, joined with the ones after it on the same channel while they fit. */
  #next(): Chunk | undefined {
    const first = this.#queue.shift();
    if (!first) return undefined;
    let size = first.data.length;
    let count = 0;
    for (const next of this.#queue) {
      if (next.channel !== first.channel || size + next.data.length > STDIO_MESSAGE_SIZE) break;
      size += next.data.length;
      count++;
    }
    this.#buffered -= size;
    if (count === 0) return first;
    const data = new Uint8Array(size);
    data.set(first.data);
    let at = first.data.length;
    for (const next of this.#queue.splice(0, count)) {
      data.set(next.data, at);
      at += next.data.length;
    }
    return { channel: first.channel, data };
  }

  /**
   * The GRPCStdio implementation: streams held and future chunks until the call ends or
   * capture stops.
   */
  impl(): ServiceImpl<typeof GRPCStdio> {
    // deno-lint-ignore no-this-alias
    const self = this;
    return {
      async *streamStdio(_request, ctx) {
        self.#readers++;
        try {
          while (!ctx.signal.aborted && !self.#ended) {
            const chunk = self.#next();
            if (chunk) {
              yield chunk;
              continue;
            }
            await self.#wakeup.wait(ctx.signal);
          }
        } finally {
          self.#readers--;
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
