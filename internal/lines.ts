/**
 * Splits another process's byte stream into lines with bounded work: each chunk is searched
 * for a newline once, where it arrived, and a line longer than the cap is passed on in pieces of
 * at most the cap, as go-plugin's host does with its 64 KiB `PluginLogBufferSize`. Bytes that are
 * not UTF-8 become U+FFFD; a character cut by the cap goes whole into the next piece.
 *
 * @module
 */

/** go-plugin's `PluginLogBufferSize`: the longest stderr line a host passes on in one piece. */
export const MAX_LINE_BYTES = 64 * 1024;

const NEWLINE = 0x0a;

/** Receives each line, with its "\n" when it had one (a piece of a longer line has none). */
export type LineSink = (line: string) => void;

/** A line splitter over chunks of bytes. */
export class LineSplitter {
  readonly #onLine: LineSink;
  readonly #maxBytes: number;
  readonly #decoder = new TextDecoder();
  /** The bytes of the line being read, not yet ended by a newline or the cap. */
  #pending: Uint8Array[] = [];
  #pendingBytes = 0;

  /**
   * @param onLine Receives every line or piece.
   * @param maxBytes The longest piece, in bytes.
   */
  constructor(onLine: LineSink, maxBytes: number = MAX_LINE_BYTES) {
    this.#onLine = onLine;
    this.#maxBytes = maxBytes;
  }

  /** Takes the next chunk. Its bytes are searched once; only complete lines are decoded. */
  push(chunk: Uint8Array): void {
    let start = 0;
    while (start < chunk.length) {
      const room = this.#maxBytes - this.#pendingBytes;
      const end = Math.min(chunk.length, start + room);
      const newline = chunk.subarray(start, end).indexOf(NEWLINE);
      if (newline >= 0) {
        this.#emit(chunk.subarray(start, start + newline + 1));
        start += newline + 1;
      } else if (end - start === room) {
        // The cap: pass on what there is as one piece.
        this.#emit(chunk.subarray(start, end));
        start = end;
      } else {
        // Copied: the caller may reuse the chunk's memory.
        this.#pending.push(chunk.slice(start));
        this.#pendingBytes += chunk.length - start;
        break;
      }
    }
  }

  /** Passes on what is left (the end of the stream). */
  flush(): void {
    const text = this.#decoder.decode(this.#take(new Uint8Array(0)));
    if (text) this.#onLine(text);
  }

  #emit(last: Uint8Array): void {
    const text = this.#decoder.decode(this.#take(last), { stream: true });
    if (text) this.#onLine(text);
  }

  /** The pending bytes followed by `last`, and nothing pending afterwards. */
  #take(last: Uint8Array): Uint8Array {
    if (this.#pending.length === 0) return last;
    const all = new Uint8Array(this.#pendingBytes + last.length);
    let offset = 0;
    for (const part of this.#pending) {
      all.set(part, offset);
      offset += part.length;
    }
    all.set(last, offset);
    this.#pending = [];
    this.#pendingBytes = 0;
    return all;
  }
}
