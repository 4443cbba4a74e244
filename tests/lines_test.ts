/** LineSplitter: lines across chunks, the cap, characters cut by the cap, non-UTF-8 bytes. */

import assert from "node:assert/strict";
import { LineSplitter } from "../internal/lines.ts";

function split(chunks: (string | number[])[], max?: number): string[] {
  const out: string[] = [];
  const splitter = new LineSplitter((line) => out.push(line), max);
  for (const chunk of chunks) {
    splitter.push(
      typeof chunk === "string" ? new TextEncoder().encode(chunk) : new Uint8Array(chunk),
    );
  }
  splitter.flush();
  return out;
}

Deno.test("lines across chunks keep their newline; the rest comes at the end", () => {
  assert.deepEqual(split(["a", "b\nc", "\n\nd"]), ["ab\n", "c\n", "\n", "d"]);
});

Deno.test("a line longer than the cap is passed on in pieces of the cap", () => {
  assert.deepEqual(split(["abcdefg", "hij\nk"], 4), ["abcd", "efgh", "ij\n", "k"]);
});

Deno.test("a character cut by the cap goes whole into the next piece", () => {
  // "é" is 2 bytes: the first piece holds "ab" and one byte of it.
  assert.deepEqual(split(["abé\n"], 3), ["ab", "é\n"]);
});

Deno.test("bytes that are not UTF-8 become U+FFFD, one per bad byte", () => {
  assert.deepEqual(split([[0xff, 0xfe, 0x0a, 0x41]]), ["\ufffd\ufffd\n", "A"]);
});
