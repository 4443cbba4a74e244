/**
 * The `plugwire` command: reads the command line and runs a subcommand.
 *
 * @module
 */

import { helpText, parseCommandLine, UsageError } from "./args.ts";
import { paint } from "./output.ts";
import type { CliIo } from "./system.ts";

/** Runs the command; returns the exit status (0 success, 1 failure, 2 bad command line). */
export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  const c = paint(io, "stderr");
  try {
    const invocation = parseCommandLine(argv);
    if (invocation.help) {
      io.stdout(helpText(invocation.subcommand));
      return 0;
    }
    switch (invocation.subcommand) {
      case "inspect": {
        const { inspect } = await import("./inspect.ts");
        return await inspect(invocation.host!, io, invocation.json);
      }
      case "call": {
        const { call } = await import("./call.ts");
        return await call(
          invocation.host!,
          invocation.method!,
          invocation.data,
          io,
          invocation.json,
        );
      }
      case "check": {
        const { check } = await import("./check.ts");
        return await check(invocation.host!, io, invocation.json);
      }
      case "codegen":
      case "bundle":
      case "gateway": {
        const tasks = await import("./tasks.ts");
        return await tasks.runTask(invocation, io);
      }
      default:
        io.stdout(helpText());
        return 0;
    }
  } catch (err) {
    if (err instanceof UsageError) {
      const hint = err.subcommand
        ? `run plugwire ${err.subcommand} --help for its options`
        : "run plugwire --help for the subcommands";
      io.stderr(`${c.red("plugwire")}: ${err.message}\n${hint}\n`);
      return 2;
    }
    io.stderr(`${c.red("plugwire")}: ${(err as Error)?.message ?? err}\n`);
    return 1;
  }
}
