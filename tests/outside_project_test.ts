// Using plugwire from a project outside this checkout: the README's recipe ("Using plugwire from
// another project") run as written in a temporary directory, host and plugin; and the codegen
// task on a proto tree outside proto/ (a copy of Terraform's tfplugin6.proto from the Go module
// cache), served in part and called.
import assert from "node:assert/strict";
import { TEST_MARK, testNoLeftovers, testRoot } from "./_util.ts";

const repo = new URL("../", import.meta.url).pathname.replace(/\/$/, "");
const deno = Deno.execPath();

/** The README's recipe: its code blocks, by the file named on their first line. */
async function readmeRecipe(): Promise<{ files: Record<string, string>; commands: string[] }> {
  const readme = await Deno.readTextFile(`${repo}/README.md`);
  const start = readme.indexOf("## Using plugwire from another project");
  const end = readme.indexOf("\n## ", start + 1);
  assert.ok(start >= 0, "README has the section");
  const section = readme.slice(start, end);
  const files: Record<string, string> = {};
  const commands: string[] = [];
  for (const [, lang, body] of section.matchAll(/```(\w+)\n([\s\S]*?)```/g)) {
    if (lang === "sh") {
      commands.push(...body.trim().split("\n"));
      continue;
    }
    const name = /^\/\/ (\S+)\n/.exec(body)?.[1];
    assert.ok(name, `a ${lang} block names its file on its first line`);
    files[name] = body.replaceAll("/path/to/plugwire", repo);
  }
  return { files, commands };
}

async function writeFiles(dir: string, files: Record<string, string>): Promise<void> {
  for (const [name, text] of Object.entries(files)) {
    const path = `${dir}/${name}`;
    await Deno.mkdir(path.slice(0, path.lastIndexOf("/")), { recursive: true });
    await Deno.writeTextFile(path, text);
  }
}

async function sh(cwd: string, command: string): Promise<string> {
  const out = await new Deno.Command("bash", {
    args: ["-c", command],
    cwd,
    env: {
      PLUGWIRE_TEST_MARK: TEST_MARK,
      PATH: `${deno.replace(/\/deno$/, "")}:${Deno.env.get("PATH")}`,
    },
    stdin: "null",
  }).output();
  const stdout = new TextDecoder().decode(out.stdout);
  const stderr = new TextDecoder().decode(out.stderr);
  assert.ok(out.success, `\`${command}\` failed (${out.code}):\n${stdout}\n${stderr}`);
  return stdout;
}

Deno.test("the README's recipe works in a project outside the checkout: codegen, plugin, host", async () => {
  const project = await Deno.makeTempDir({ dir: testRoot(), prefix: "project-" });
  try {
    const { files, commands } = await readmeRecipe();
    assert.deepEqual(Object.keys(files).sort(), [
      "deno.json",
      "host.ts",
      "plugin.ts",
      "proto/hello/hello.proto",
    ]);
    await writeFiles(project, files);
    assert.equal(commands.length, 2);
    // The codegen line, as written (it cds into the checkout and back through $OLDPWD).
    await sh(project, commands[0].replaceAll("/path/to/plugwire", repo));
    const generated = await Deno.readTextFile(`${project}/gen/hello/hello_pb.ts`);
    assert.match(generated, /from "npm:@bufbuild\/protobuf@2\.17\.0\/codegenv2"/);
    // `deno run -A host.ts ada   # hello, ada`
    const [command, expected] = commands[1].split(/\s+#\s+/);
    assert.equal(await sh(project, command), `${expected}\n`);
  } finally {
    await Deno.remove(project, { recursive: true });
  }
});

/** The directory of terraform-plugin-go v0.26.0 in the Go module cache, if Go can fetch it. */
async function terraformPluginGo(): Promise<string | undefined> {
  try {
    const out = await new Deno.Command("go", {
      args: ["mod", "download", "-json", "github.com/hashicorp/terraform-plugin-go@v0.26.0"],
      stdin: "null",
      stderr: "null",
    }).output();
    if (!out.success) return undefined;
    return JSON.parse(new TextDecoder().decode(out.stdout)).Dir;
  } catch {
    return undefined;
  }
}

const tfDir = await terraformPluginGo();

Deno.test({
  name: "codegen on a copy of Terraform's tfplugin6.proto: a partial Provider served and called",
  async fn() {
    assert.ok(tfDir, "go and the Go module proxy must be reachable (as for the interop suite)");
    const project = await Deno.makeTempDir({ dir: testRoot(), prefix: "tfproject-" });
    try {
      await Deno.mkdir(`${project}/proto/tfplugin6`, { recursive: true });
      await Deno.copyFile(
        `${tfDir}/tfprotov6/internal/tfplugin6/tfplugin6.proto`,
        `${project}/proto/tfplugin6/tfplugin6.proto`,
      );
      await Deno.chmod(`${project}/proto/tfplugin6/tfplugin6.proto`, 0o644);
      await sh(
        repo,
        `./scripts/deno.sh task codegen --proto ${project}/proto --out ${project}/gen`,
      );
      await writeFiles(project, {
        "deno.json": JSON.stringify({
          imports: {
            "@plugwire/plugwire/host": `${repo}/host.ts`,
            "@plugwire/plugwire/plugin": `${repo}/plugin.ts`,
          },
        }),
        "provider.ts": `
import { grpcPlugin, serve } from "@plugwire/plugwire/plugin";
import { Provider } from "./gen/tfplugin6/tfplugin6_pb.ts";
// Two of the Provider service's methods; the others answer UNIMPLEMENTED.
await serve({
  handshake: {
    protocolVersion: 6,
    magicCookieKey: "TF_PLUGIN_MAGIC_COOKIE",
    magicCookieValue: "d602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2",
  },
  plugins: {
    provider: grpcPlugin(Provider, {
      getProviderSchema: () => ({
        provider: { version: 1n, block: { attributes: [{ name: "region", type: new TextEncoder().encode('"string"'), optional: true }] } },
        resourceSchemas: { example_thing: { version: 2n, block: {} } },
      }),
      stopProvider: () => ({}),
    }),
  },
});
`,
        "host.ts": `
import { RpcError, startPlugin } from "@plugwire/plugwire/host";
import { Provider } from "./gen/tfplugin6/tfplugin6_pb.ts";
await using plugin = await startPlugin({
  cmd: [Deno.execPath(), "run", "-A", "provider.ts"],
  handshake: {
    protocolVersion: 6,
    magicCookieKey: "TF_PLUGIN_MAGIC_COOKIE",
    magicCookieValue: "d602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2",
  },
  plugins: { provider: Provider },
  autoMtls: true,
});
const provider = plugin.dispense("provider");
const schema = await provider.getProviderSchema({});
console.log(schema.provider?.block?.attributes[0].name, Object.keys(schema.resourceSchemas).join(","));
const failed = await provider.validateProviderConfig({}).catch((err: RpcError) => err);
console.log(failed instanceof RpcError ? failed.code + " " + failed.details : "answered");
`,
      });
      const out = await sh(project, `${deno} run -A host.ts`);
      assert.equal(out, "region example_thing\n12 method ValidateProviderConfig not implemented\n");
    } finally {
      await Deno.remove(project, { recursive: true });
    }
  },
});

testNoLeftovers();
