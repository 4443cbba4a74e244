/**
 * How the `plugwire` command writes: colours only on a terminal and never with `NO_COLOR`, and
 * a progress line on stderr for any step that takes over a second.
 *
 * @module
 */

import type { CliIo } from "./system.ts";

/** Colour functions for one stream; identity functions when colours are off. */
export interface Paint {
  green(text: string): string;
  red(text: string): string;
  yellow(text: string): string;
  bold(text: string): string;
  dim(text: string): string;
}

/** Colours for stdout or stderr: on a terminal, and only without `NO_COLOR` (no-color.org). */
export function paint(io: CliIo, stream: "stdout" | "stderr"): Paint {
  const on = io.terminal[stream] && !io.env.NO_COLOR;
  const sgr = (open: number, close: number) => (text: string) =>
    on ? `\x1b[${open}m${text}\x1b[${close}m` : text;
  return {
    green: sgr(32, 39),
    red: sgr(31, 39),
    yellow: sgr(33, 39),
    bold: sgr(1, 22),
    dim: sgr(2, 22),
  };
}

/** The delay before a step gets a progress line. */
export const PROGRESS_AFTER_MS = 1000;

/**
 * Runs a step; if it takes over a second, says so on stderr: a live line with the elapsed
 * seconds on a terminal (erased when the step ends), one plain line otherwise.
 */
export async function withProgress<T>(
  io: CliIo,
  label: string,
  step: () => Promise<T>,
): Promise<T> {
  const started = Date.now();
  const live = io.terminal.stderr;
  let shown = false;
  const show = () => {
    const seconds = Math.round((Date.now() - started) / 1000);
    if (live) io.stderr(`\r\x1b[2K${label}… ${seconds} s`);
    else if (!shown) io.stderr(`plugwire: ${label}…\n`);
    shown = true;
  };
  let ticker: ReturnType<typeof setInterval> | undefined;
  const first = setTimeout(() => {
    show();
    if (live) ticker = setInterval(show, 1000);
  }, PROGRESS_AFTER_MS);
  try {
    return await step();
  } finally {
    clearTimeout(first);
    clearInterval(ticker);
    if (shown && live) io.stderr("\r\x1b[2K");
  }
}
