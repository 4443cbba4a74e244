/**
 * Sums a V8 `.heapsnapshot` (from bench/tools/heap_snapshot.ts, or any V8 runtime) by self size:
 * per constructor (objects, natives) or node type (strings, code, arrays…), the total, the
 * ArrayBuffers and the typed arrays over them with their backing stores, and the largest single
 * objects. Self sizes only: retained sizes (a dominator tree) are not computed, so an object that
 * holds a large graph shows only its own bytes here.
 *
 *     deno run -A bench/tools/heap_summary.ts /tmp/pw-exit.heapsnapshot [--top 25]
 *
 * @module
 */

import { parseArgs } from "node:util";

interface Snapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[], ...unknown[]] } };
  nodes: number[];
  strings: string[];
}

const { values, positionals } = parseArgs({
  args: Deno.args,
  allowPositionals: true,
  options: { top: { type: "string", default: "25" } },
});
if (positionals.length !== 1) {
  console.error("usage: heap_summary.ts <file.heapsnapshot> [--top N]");
  Deno.exit(2);
}
const top = Number(values.top);
const snap = JSON.parse(Deno.readTextFileSync(positionals[0])) as Snapshot;
const fields = snap.snapshot.meta.node_fields;
const types = snap.snapshot.meta.node_types[0];
const width = fields.length;
const TYPE = fields.indexOf("type");
const NAME = fields.indexOf("name");
const ID = fields.indexOf("id");
const SELF = fields.indexOf("self_size");

interface Group {
  count: number;
  size: number;
}
const groups = new Map<string, Group>();
const add = (key: string, size: number) => {
  const g = groups.get(key) ?? { count: 0, size: 0 };
  g.count++;
  g.size += size;
  groups.set(key, g);
};

/** Objects by constructor name and the backing stores V8 reports as native nodes. */
const BUFFER_NAMES = ["ArrayBuffer", "SharedArrayBuffer", "Uint8Array", "Buffer", "FastBuffer"];
const buffers = new Map<string, Group>();
let total = 0;
let nodeCount = 0;
const largest: { size: number; type: string; name: string; id: number }[] = [];

for (let i = 0; i < snap.nodes.length; i += width) {
  const type = types[snap.nodes[i + TYPE]];
  const name = snap.strings[snap.nodes[i + NAME]];
  const size = snap.nodes[i + SELF];
  nodeCount++;
  total += size;
  const key = type === "object" || type === "native" ? name : `(${type})`;
  add(key, size);
  if (
    (type === "object" && BUFFER_NAMES.includes(name)) ||
    (type === "native" && /ArrayBuffer|BackingStore/i.test(name))
  ) {
    const g = buffers.get(name) ?? { count: 0, size: 0 };
    g.count++;
    g.size += size;
    buffers.set(name, g);
  }
  if (largest.length < top || size > largest[largest.length - 1].size) {
    largest.push({ size, type, name: name.slice(0, 60), id: snap.nodes[i + ID] });
    largest.sort((a, b) => b.size - a.size);
    if (largest.length > top) largest.pop();
  }
}

const kib = (n: number) => (n / 1024).toFixed(1).padStart(10);
const pct = (n: number) => `${(100 * n / total).toFixed(1).padStart(5)}%`;

console.log(`${positionals[0]}: ${nodeCount} nodes, self size total ${kib(total).trim()} KiB`);
console.log(`\nSelf size by constructor / type (top ${top}):`);
console.log(`${"KiB".padStart(10)}  ${"share".padStart(6)}  ${"count".padStart(8)}  name`);
for (const [key, g] of [...groups].sort((a, b) => b[1].size - a[1].size).slice(0, top)) {
  console.log(`${kib(g.size)}  ${pct(g.size)}  ${String(g.count).padStart(8)}  ${key}`);
}
console.log("\nArrayBuffers, typed arrays and their backing stores (self sizes):");
for (const [name, g] of [...buffers].sort((a, b) => b[1].size - a[1].size)) {
  console.log(`${kib(g.size)}  ${String(g.count).padStart(8)}  ${name}`);
}
console.log(`\nLargest single objects (self size, top ${top}):`);
for (const o of largest) {
  console.log(`${kib(o.size)}  @${o.id}  (${o.type}) ${o.name}`);
}
