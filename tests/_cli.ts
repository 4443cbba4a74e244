/**
 * Running the `plugwire` command in a test: in-process through cli.ts's `main` with captured
 * output, every plugin it starts carrying the test mark; and reading its check report.
 *
 * @module
 */

import { type CliIo, main } from "../cli.ts";
import { TEST_MARK } from "./_util.ts";

/** What a run printed and its exit status. */
export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs `plugwire <args>` in this process. Plugin subcommands get `--env PLUGWIRE_TEST_MARK=…`
 * (so the leak check sees their plugins), inserted before the `--`.
 */
export async function plugwire(
  args: string[],
  options: { stdin?: string; terminal?: boolean; env?: Record<string, string> } = {},
): Promise<CliRun> {
  let stdout = "";
  let stderr = "";
  const io: CliIo = {
    stdout: (text) => void (stdout += text),
    stderr: (text) => void (stderr += text),
    readStdin: () => Promise.resolve(options.stdin ?? ""),
    env: { ...Deno.env.toObject(), ...options.env },
    terminal: { stdout: options.terminal ?? false, stderr: options.terminal ?? false },
  };
  const dashes = args.indexOf("--");
  const withMark = dashes < 0
    ? args
    : [...args.slice(0, dashes), "--env", `PLUGWIRE_TEST_MARK=${TEST_MARK}`, ...args.slice(dashes)];
  const code = await main(withMark, io);
  return { code, stdout, stderr };
}

/** One line of a check report. */
export interface ReportLine {
  verdict: "PASS" | "FAIL" | "SKIP";
  text: string;
}

/** The lines of a text check report, by point. */
export function reportLines(stdout: string): Map<string, ReportLine> {
  const out = new Map<string, ReportLine>();
  for (const line of stdout.split("\n")) {
    const m = /^(PASS|FAIL|SKIP) {2}(\S+)\s+(.*)$/.exec(line);
    if (m) out.set(m[2], { verdict: m[1] as ReportLine["verdict"], text: m[3] });
  }
  return out;
}

/** The points with a given verdict, sorted. */
export function pointsWith(
  lines: Map<string, ReportLine>,
  verdict: ReportLine["verdict"],
): string[] {
  return [...lines].filter(([, l]) => l.verdict === verdict).map(([id]) => id).sort();
}

/** Runs `tasks` with at most `limit` at a time; resolves to their results in order. */
export async function inPool<T>(limit: number, tasks: (() => Promise<T>)[]): Promise<T[]> {
  const results: T[] = new Array(tasks.length);
  let next = 0;
  const worker = async () => {
    while (next < tasks.length) {
      const i = next++;
      results[i] = await tasks[i]();
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, tasks.length) }, worker));
  return results;
}
