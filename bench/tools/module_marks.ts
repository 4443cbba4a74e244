/**
 * Where a bundled plugin's start-up goes, module by module: bundles `entry` unminified, puts a
 * `performance.now()` mark at the start of every module the bundle evaluates and one when the
 * handshake line is written, runs it `runs` times as a plugin would be started (magic cookie of
 * bench/plugin.ts, no host), and prints the median time from each mark to the next, npm packages
 * summed per package (a CommonJS module is marked when it is first required). The first mark comes
 * after the runtime's own start and the bundle's hoisted `node:` imports. bench/README.md, "Where the remaining gap to Go is".
 *
 *     deno run -A bench/tools/module_marks.ts bench/plugin.ts [runs] [top]
 *
 * @module
 */

const [entry, runsArg, topArg] = Deno.args;
if (!entry) throw new Error("usage: module_marks.ts <entry.ts> [runs] [top]");
const runs = Number(runsArg ?? 9);
const top = Number(topArg ?? 15);
const root = new URL("../../", import.meta.url).pathname;
const dir = await Deno.makeTempDir({ prefix: "plugwire-marks-" });

try {
  const bundle = `${dir}/bundle.js`;
  const built = await new Deno.Command(Deno.execPath(), {
    args: ["bundle", `--config=${root}deno.json`, "--platform=deno", "-o", bundle, entry],
    stderr: "piped",
  }).output();
  if (!built.success) throw new Error(new TextDecoder().decode(built.stderr));

  // esbuild writes `// <path>` before each module's code; the handshake line is the first write
  // to stdout (plugwire: Deno.stdout.writeSync; the floors: console.log), wrapped to mark it.
  const marked = ["globalThis.__marks = [];"];
  const preamble = `{
    const done = () => { if (globalThis.__marks.done) return; globalThis.__marks.done = true;
      globalThis.__marks.push(["(handshake line)", performance.now()]);
      Deno.stderr.writeSync(new TextEncoder().encode("MARKS " + JSON.stringify(globalThis.__marks) + "\\n")); };
    const w = Deno.stdout.writeSync.bind(Deno.stdout);
    Deno.stdout.writeSync = (b) => { const n = w(b); done(); return n; };
    const log = console.log.bind(console);
    console.log = (...a) => { log(...a); done(); };
  }`;
  marked.push(preamble);
  for (const line of (await Deno.readTextFile(bundle)).split("\n")) {
    marked.push(line);
    const module = /^\/\/ (\S+\.(?:ts|js|mjs|cjs))$/.exec(line)?.[1];
    if (module) {
      const name = module.replace(/^node_modules\/\.deno\/[^/]+\/node_modules\//, "npm:");
      marked.push(`globalThis.__marks.push([${JSON.stringify(name)}, performance.now()]);`);
    }
  }
  await Deno.writeTextFile(bundle, marked.join("\n"));

  const intervals = new Map<string, number[]>();
  const firsts: number[] = [];
  for (let i = 0; i < runs; i++) {
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--quiet", "--v8-flags=--max-semi-space-size=1", bundle],
      env: { BASIC_PLUGIN: "hello", PLUGIN_PROTOCOL_VERSIONS: "1", TMPDIR: dir },
      stdout: "null",
      stderr: "piped",
    }).spawn();
    const reader = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
    let text = "";
    const timer = setTimeout(() => child.kill("SIGKILL"), 10_000); // no handshake: give up
    while (!text.includes("MARKS ") || !text.slice(text.indexOf("MARKS ")).includes("\n")) {
      const { value, done } = await reader.read();
      if (done) break;
      text += value;
    }
    clearTimeout(timer);
    try {
      child.kill("SIGKILL");
    } catch {
      // Already gone.
    }
    await child.status;
    await reader.cancel();
    const json = /MARKS (.*)\n/.exec(text)?.[1];
    if (!json) throw new Error(`no marks from run ${i + 1}:\n${text}`);
    const marks = JSON.parse(json) as [string, number][];
    firsts.push(marks[0][1]);
    const run = new Map<string, number>();
    for (let m = 0; m < marks.length - 1; m++) {
      const [name, at] = marks[m];
      const key = /^npm:(@[^/]+\/[^/]+|[^/]+)/.exec(name)?.[0] ?? name;
      run.set(key, (run.get(key) ?? 0) + marks[m + 1][1] - at);
    }
    for (const [key, ms] of run) intervals.set(key, [...intervals.get(key) ?? [], ms]);
  }
  const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];
  console.log(`${runs} runs of ${entry}; first mark at ${median(firsts).toFixed(1)} ms (median)`);
  console.log("ms (median)  module or npm package (from its start to the next mark)");
  const rows = [...intervals].map(([name, v]) => [median(v), name] as const)
    .sort((a, b) => b[0] - a[0]);
  for (const [ms, name] of rows.slice(0, top)) console.log(`${ms.toFixed(2).padStart(8)}  ${name}`);
  const sum = rows.reduce((all, [ms]) => all + ms, 0);
  console.log(`${sum.toFixed(1).padStart(8)}  first mark to the handshake line (sum of medians)`);
} finally {
  await Deno.remove(dir, { recursive: true });
}
