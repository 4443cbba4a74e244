/**
 * Summarises a `.cpuprofile`: self time by function and by file (npm packages, plugwire's
 * modules, Deno's node polyfills), the top entries first.
 *
 *     deno run -A bench/tools/profile_summary.ts PROFILE [TOP]
 *
 * @module
 */

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: Node[];
  samples: number[];
  timeDeltas: number[];
}

const [file, topArg] = Deno.args;
const top = Number(topArg ?? 30);
const profile = JSON.parse(Deno.readTextFileSync(file)) as Profile;
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const self = new Map<number, number>();
for (let i = 0; i < profile.samples.length; i++) {
  const dt = profile.timeDeltas[i + 1] ?? 0;
  self.set(profile.samples[i], (self.get(profile.samples[i]) ?? 0) + dt);
}
const total = [...self.values()].reduce((a, b) => a + b, 0);

function area(url: string): string {
  if (!url) return "(native/vm)";
  const npm = /node_modules\/(?:\.deno\/[^/]+\/node_modules\/)?((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (npm) return `npm:${npm[1]}`;
  if (url.startsWith("ext:")) {
    return url.replace(/^ext:(deno_)?/, "ext:").split("/").slice(0, 2).join("/");
  }
  const local = /\/work\/[^/]+\/(.*)$/.exec(url);
  return local ? local[1] : url;
}

const fns = new Map<string, number>();
const areas = new Map<string, number>();
for (const [id, t] of self) {
  const n = byId.get(id)!;
  const f = n.callFrame;
  const name = `${f.functionName || "(anonymous)"} ${area(f.url)}:${f.lineNumber + 1}`;
  fns.set(name, (fns.get(name) ?? 0) + t);
  const a = f.url ? area(f.url) : f.functionName || "(vm)";
  areas.set(a, (areas.get(a) ?? 0) + t);
}
const pct = (t: number) => `${(100 * t / total).toFixed(1).padStart(5)}%`;
console.log(`total sampled ${(total / 1000).toFixed(0)} ms`);
console.log("\nby file:");
for (const [a, t] of [...areas].sort((x, y) => y[1] - x[1]).slice(0, top)) console.log(pct(t), a);
console.log("\nby function:");
for (const [f, t] of [...fns].sort((x, y) => y[1] - x[1]).slice(0, top)) console.log(pct(t), f);
