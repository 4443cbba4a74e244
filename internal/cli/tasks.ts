/**
 * `plugwire codegen`, `plugwire bundle` and `plugwire gateway`: front ends to what the
 * repository already has (the codegen task, scripts/ship.ts, the gateway).
 *
 * @module
 */

import * as path from "node:path";
import { pathExists, readFile, spawnProcess } from "../runtime.ts";
import { type Invocation, UsageError } from "./args.ts";
import { withProgress } from "./output.ts";
import { type CliIo, denoExecutable } from "./system.ts";

/** The plugwire checkout this module belongs to, or undefined (a bundled or remote copy). */
function checkoutRoot(): string | undefined {
  const root = new URL("../../", import.meta.url);
  if (root.protocol !== "file:") return undefined;
  const dir = decodeURIComponent(root.pathname);
  return pathExists(`${dir}scripts/ship.ts`) && pathExists(`${dir}deno.json`) ? dir : undefined;
}

function needCheckout(what: "codegen" | "bundle"): string {
  const root = checkoutRoot();
  if (!root) {
    throw new UsageError(
      `${what} is a task of a plugwire checkout, and this plugwire is not running from one: ` +
        "run it there (./scripts/deno.sh task plugwire …)",
      what,
    );
  }
  return root;
}

/** Runs a Deno subcommand, its output passed through; resolves to its exit status. */
async function runDeno(args: string[], cwd: string, io: CliIo, label: string): Promise<number> {
  const child = await spawnProcess(denoExecutable(), args, {
    env: Object.fromEntries(
      Object.entries(io.env).filter((e): e is [string, string] => e[1] !== undefined),
    ),
    cwd,
    stdin: "null",
  });
  const decoder = [new TextDecoder(), new TextDecoder()];
  child.stdout.onData((chunk) => io.stdout(decoder[0].decode(chunk, { stream: true })));
  child.stderr.onData((chunk) => io.stderr(decoder[1].decode(chunk, { stream: true })));
  const status = await withProgress(io, label, () => child.exited);
  return status.code ?? 1;
}

/** The shebang of a bundled plugwire command: it starts plugins, so it needs every permission. */
const CLI_SHEBANG = "#!/usr/bin/env -S deno run --quiet --no-prompt -A";

/** Runs `codegen`, `bundle` or `gateway`; returns the exit status. */
export async function runTask(invocation: Invocation, io: CliIo): Promise<number> {
  switch (invocation.subcommand) {
    case "codegen": {
      const root = needCheckout("codegen");
      return await runDeno(["task", "codegen", ...invocation.rest], root, io, "generating code");
    }
    case "bundle": {
      const [entry, output, ...extra] = invocation.rest;
      if (!entry || !output || extra.length) {
        throw new UsageError("give the plugin's entry file and the output file", "bundle");
      }
      const root = needCheckout("bundle");
      const entryPath = path.resolve(entry);
      const outputPath = path.resolve(output);
      if (!pathExists(entryPath)) {
        throw new UsageError(`${entry}: no such file`, "bundle");
      }
      const code = await runDeno(
        ["run", "-A", `${root}scripts/ship.ts`, "bundle", entryPath, outputPath],
        root,
        io,
        `bundling ${entry}`,
      );
      // ship.ts gives plugins their permissions; the command itself also starts processes.
      if (code === 0 && entryPath === path.resolve(`${root}cli.ts`)) {
        const text = new TextDecoder().decode(await readFile(outputPath));
        const { writeFile, chmod } = await import("node:fs/promises");
        await writeFile(outputPath, CLI_SHEBANG + text.slice(text.indexOf("\n")));
        await chmod(outputPath, 0o755);
      }
      return code;
    }
    case "gateway":
      return await runGateway(invocation, io);
    default:
      throw new UsageError("unknown task");
  }
}

async function runGateway(invocation: Invocation, io: CliIo): Promise<number> {
  let port: number | undefined;
  if (invocation.port !== undefined) {
    port = Number(invocation.port);
    if (!/^\d{1,5}$/.test(invocation.port) || port > 65535) {
      throw new UsageError(
        `--port ${JSON.stringify(invocation.port)}: not a port number`,
        "gateway",
      );
    }
  }
  const gateway = await import("../../gateway.ts");
  try {
    const running = await gateway.startGateway({ config: invocation.config!, port });
    io.stdout(`plugwire gateway listening on ${running.url}\n`);
    await running.closed;
    return 0;
  } catch (err) {
    if (err instanceof gateway.GatewayConfigError || err instanceof gateway.GatewayStartError) {
      io.stderr(`plugwire gateway: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
}
