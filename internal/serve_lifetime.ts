/**
 * How a serving plugin ends (docs/protocol.md §6.3, §7): the process-level events a plugin answers besides the host's Shutdown call:
 * SIGINT (ignored, as go-plugin's plugins do, but in debug mode), SIGTERM, the host dying
 * (the plugin is reparented), and the process ending any other way (the socket file goes).
 *
 * @module
 */

import type { Logger } from "./logger.ts";
import {
  baseName,
  exitProcess,
  onExit,
  onSignal,
  removeEmptyDirSync,
  removePathSync,
  unrefDelay,
  watchParent,
} from "./runtime.ts";

/**
 * How long a Shutdown waits for a reading host to take the plugin's captured output: while the
 * host makes progress, up to the cap; 500 ms without progress ends the wait.
 */
export const STDIO_DRAIN_IDLE_MS = 500;
/** The most a Shutdown waits for a host that keeps reading the plugin's output. */
export const STDIO_DRAIN_CAP_MS = 5000;
/** How long a Shutdown waits for the host to have read its reply before the server stops. */
export const REPLY_DELIVERY_MS = 1000;
/** How long a SIGTERM that arrives during a Shutdown waits for it to finish. */
const SIGTERM_WAIT_MS = 5000;
/** How long a plugin whose host died gives its own shutdown before it exits anyway. */
const ORPHAN_STOP_MS = 1500;
/** Socket directories that hosts make per plugin (plugwire's, go-plugin's `plugin-dir*`). */
const HOST_SOCKET_DIR = /^(plugwire-|plugin-dir)/;

/** The items of `source` until `signal` aborts. */
export async function* until<T>(
  source: AsyncIterable<T>,
  signal: AbortSignal,
): AsyncGenerator<T> {
  const iterator = source[Symbol.asyncIterator]();
  const aborted = new Promise<"aborted">((resolve) => {
    if (signal.aborted) resolve("aborted");
    signal.addEventListener("abort", () => resolve("aborted"), { once: true });
  });
  try {
    for (;;) {
      const next = await Promise.race([iterator.next(), aborted]);
      if (next === "aborted" || next.done) return;
      yield next.value;
    }
  } finally {
    void iterator.return?.();
  }
}

/** Resolves true when `work` settles within `ms`, false otherwise. */
export async function settlesWithin(work: Promise<unknown>, ms: number): Promise<boolean> {
  return await Promise.race([
    work.then(() => true, () => true),
    unrefDelay(ms).then(() => false),
  ]);
}

/** What {@link superviseServing} watches over. */
export interface ServingProcess {
  /** Where the server listens. */
  network: "unix" | "tcp";
  address: string;
  /** The socket directory the host made, if any. */
  socketDir?: string;
  /** Debug mode: Ctrl-C stops the plugin. */
  debug: boolean;
  log: Logger;
  /** Stops serving (what Shutdown does); idempotent. */
  stop(): Promise<void>;
  /** The stop under way, if one is. */
  stopping(): Promise<void> | undefined;
  /** Closes the listener and removes the socket file. */
  unbind(): Promise<void>;
}

/**
 * Installs the plugin's answers to process-level events. Returns `release`, which removes
 * those that end with serving, and `releaseAll`, which removes the SIGTERM handler too (for a
 * start that failed: once serving has begun, SIGTERM is answered for the process's life).
 */
export function superviseServing(
  serving: ServingProcess,
): { release: () => void; releaseAll: () => void } {
  const cleanups: Array<() => void> = [];
  // If the process ends any other way (the SIGTERM handler below, an uncaught error), the
  // socket file must not outlive it.
  if (serving.network === "unix") cleanups.push(onExit(() => removePathSync(serving.address)));
  // go-plugin plugins ignore SIGINT: a Ctrl-C in the host's terminal reaches the whole process
  // group, and the host decides when its plugins stop. In debug mode the user's Ctrl-C stops it.
  cleanups.push(onSignal("SIGINT", () => {
    if (serving.debug) void serving.stop();
    else serving.log.trace("plugin received interrupt signal, ignoring");
  }));
  // SIGTERM ends the process as the default action would (status 143), but without leaving
  // the socket. During or after a Shutdown it is the host making sure: the Shutdown finishes
  // (bounded), onShutdown runs and the plugin exits 0. pyvider-rpcplugin's host sends SIGTERM
  // 50 ms after Shutdown.
  const offSigterm = onSignal("SIGTERM", () => {
    const stopping = serving.stopping();
    if (stopping) {
      void settlesWithin(stopping, SIGTERM_WAIT_MS).then((done) => {
        if (done) exitProcess(0);
        void serving.unbind().finally(() => exitProcess(143));
      });
      return;
    }
    void serving.unbind().finally(() => exitProcess(143));
  });
  // A host that dies (SIGKILL, a crash, a Ctrl-C it does not handle) never sends Shutdown; its
  // plugin is reparented. go-plugin's plugins then live on (go-plugin #10, #291); this one
  // stops (bounded), removes its socket and the host's socket directory if empty, and exits.
  cleanups.push(watchParent(() => {
    void settlesWithin(serving.stop(), ORPHAN_STOP_MS).then(() => {
      if (serving.network === "unix") {
        removePathSync(serving.address);
        const dir = serving.socketDir;
        if (dir && HOST_SOCKET_DIR.test(baseName(dir))) removeEmptyDirSync(dir);
      }
      exitProcess(0);
    });
  }));
  const release = () => {
    for (const cleanup of cleanups.splice(0)) cleanup();
  };
  return {
    release,
    releaseAll: () => {
      release();
      offSigterm();
    },
  };
}
