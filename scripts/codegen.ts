/**
 * `deno task codegen`: protobuf-es code from .proto files, with buf and protoc-gen-es from npm
 * at the pinned versions (scripts/codegen.sh).
 *
 * - No arguments: regenerates this repository's gen/ from proto/ and formats it.
 * - `--proto DIR --out DIR`: compiles a user's own .proto tree into OUT. The generated files
 *   import the protobuf-es runtime as `npm:@bufbuild/protobuf@<plugwire's version>`, so that in
 *   any project they use the same runtime as plugwire; `--bare` keeps protoc-gen-es's bare
 *   `@bufbuild/protobuf` imports for a project that maps the name itself.
 *
 * @module
 */

import { parseArgs } from "node:util";

const root = new URL("../", import.meta.url);
const { values } = parseArgs({
  args: Deno.args,
  options: {
    proto: { type: "string" },
    out: { type: "string" },
    bare: { type: "boolean", default: false },
  },
  strict: true,
});

async function run(cmd: string, args: string[]): Promise<void> {
  // Inherit stdout and stderr: buf's errors and codegen.sh's summary are the user's to read.
  const { success, code } = await new Deno.Command(cmd, {
    args,
    stdin: "null",
    stdout: "inherit",
    stderr: "inherit",
  }).output()
    .then((o) => o, (err: Error) => {
      console.error(`codegen: cannot run ${cmd}: ${err.message}`);
      Deno.exit(1);
    });
  if (!success) {
    console.error(`codegen: ${cmd} ${args.join(" ")} failed with status ${code}`);
    Deno.exit(code || 1);
  }
}

const script = new URL("scripts/codegen.sh", root).pathname;
if (values.proto === undefined && values.out === undefined) {
  await run("bash", [script]);
  await run(Deno.execPath(), ["fmt", "--quiet", new URL("gen", root).pathname]);
  Deno.exit(0);
}
if (values.proto === undefined || values.out === undefined) {
  console.error("usage: deno task codegen [--proto DIR --out DIR [--bare]]");
  Deno.exit(2);
}

// Relative paths are the caller's: `deno task` runs in the repository, but INIT_CWD names
// where the user typed the command.
const base = Deno.env.get("INIT_CWD") ?? Deno.cwd();
const resolve = (p: string) => p.startsWith("/") ? p : `${base}/${p}`;
const proto = resolve(values.proto);
const out = resolve(values.out);
await run("bash", [script, "--proto", proto, "--out", out]);

if (!values.bare) {
  const config = JSON.parse(await Deno.readTextFile(new URL("deno.json", root)));
  const runtime: string = config.imports["@bufbuild/protobuf"]; // npm:@bufbuild/protobuf@X.Y.Z
  for await (const file of walk(out)) {
    const text = await Deno.readTextFile(file);
    const pinned = text.replaceAll(
      /from "@bufbuild\/protobuf(\/[^"]*)?"/g,
      (_, sub: string | undefined) => `from "${runtime}${sub ?? ""}"`,
    );
    if (pinned !== text) await Deno.writeTextFile(file, pinned);
  }
}

async function* walk(dir: string): AsyncGenerator<string> {
  for await (const entry of Deno.readDir(dir)) {
    const path = `${dir}/${entry.name}`;
    if (entry.isDirectory) yield* walk(path);
    else if (entry.name.endsWith("_pb.ts")) yield path;
  }
}
