/**
 * The host's plugins over the life of the host process: an exit hook that takes every plugin
 * down with the host however it ends short of SIGKILL, and, for hosts that opt in, a clean
 * shutdown of every plugin when the host itself gets SIGINT or SIGTERM (go-plugin's `Managed`
 * clients and `CleanupClients`).
 *
 * @module
 */

import { type ChildHandle, exitProcess, onExit, onSignal, removePathSync } from "./runtime.ts";

/** A started plugin: its process and the socket directory the host made for it. */
interface LiveChild {
  child: ChildHandle;
  socketDir?: string;
}

const liveChildren = new Set<LiveChild>();
const liveClients = new Set<{ kill(): Promise<void> }>();
let exitHookInstalled = false;

/**
 * Tracks a started plugin until the returned function is called: if the host process ends
 * first, the plugin is SIGKILLed and its socket directory removed, synchronously, on the way
 * out (an exit hook cannot wait for a graceful stop).
 */
export function trackChild(entry: LiveChild): () => void {
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    onExit(() => {
      for (const { child, socketDir } of liveChildren) {
        child.kill("SIGKILL");
        if (socketDir) removePathSync(socketDir);
      }
      liveChildren.clear();
    });
  }
  liveChildren.add(entry);
  return () => liveChildren.delete(entry);
}

/** Tracks a connected client for {@link cleanupPlugins} until the returned function is called. */
export function trackClient(client: { kill(): Promise<void> }): () => void {
  liveClients.add(client);
  return () => liveClients.delete(client);
}

/**
 * Kills every plugin this process started or reattached to and has not killed or closed yet,
 * each the graceful way (`kill()`: Shutdown, then SIGTERM, then SIGKILL), all at once; go-plugin's
 * `CleanupClients`. Resolves when they are gone; never rejects.
 *
 * @example Stopping every plugin at the end of a host's main
 * ```ts
 * import { cleanupPlugins, startPlugin } from "@plugwire/plugwire/host";
 * import { KV } from "../gen/kv/kv_pb.ts";
 * import assert from "node:assert/strict";
 *
 * const pluginFile = new URL("../examples/kv/plugin.ts", import.meta.url).pathname;
 * const cwd = await Deno.makeTempDir();
 * const plugin = await startPlugin({
 *   cmd: [Deno.execPath(), "run", "-A", "--quiet", pluginFile],
 *   handshake: { protocolVersion: 1, magicCookieKey: "BASIC_PLUGIN", magicCookieValue: "hello" },
 *   plugins: { kv: KV },
 *   cwd,
 *   logger: () => {},
 * });
 * await plugin.dispense("kv").put({ key: "a", value: new Uint8Array([1]) });
 * await cleanupPlugins(); // this plugin, and any other still running
 * assert.ok(plugin.hasExited);
 * assert.deepEqual(await plugin.exited, { code: 0, signal: null }); // a graceful Shutdown
 * await Deno.remove(cwd, { recursive: true });
 * ```
 */
export async function cleanupPlugins(): Promise<void> {
  await Promise.allSettled([...liveClients].map((client) => client.kill()));
}

/** Options of {@link killPluginsOnSignal}. */
export interface KillOnSignalOptions {
  /** The signals to act on. @default {["SIGINT", "SIGTERM"]} */
  signals?: Array<"SIGINT" | "SIGTERM">;
  /**
   * End the host once its plugins are gone, with status 128 + the signal's number (130, 143),
   * as the signal would have. With `false` the host's own handlers must end it.
   * @default {true}
   */
  exit?: boolean;
}

const SIGNAL_NUMBERS = { SIGINT: 2, SIGTERM: 15 } as const;

/**
 * Opts in to stopping every plugin when the host process itself gets SIGINT or SIGTERM: the
 * plugins are killed the graceful way ({@link cleanupPlugins}), then the host exits with
 * status 128 + the signal's number. A second signal while they stop SIGKILLs them and exits at
 * once. Returns a function that removes the handlers.
 *
 * Trade-offs: a signal handler replaces the runtime's default action, so with `exit: false` the
 * host no longer ends on these signals unless its own handler ends it; and the graceful stop
 * takes up to 2 × `killGraceMs` per plugin (in parallel) before the host exits. Without this,
 * a host ended by a signal leaves its plugins running (go-plugin's default too): plugins are
 * started in their own process group, so a terminal's Ctrl-C does not reach them.
 *
 * @example A host that stops its plugins on Ctrl-C and on SIGTERM
 * ```ts
 * import { killPluginsOnSignal } from "@plugwire/plugwire/host";
 * import assert from "node:assert/strict";
 *
 * const stopHandling = killPluginsOnSignal(); // SIGINT and SIGTERM; then exit 130 or 143
 * // ... start plugins and work ...
 * stopHandling(); // back to the runtime's default action
 * assert.equal(typeof stopHandling, "function");
 * ```
 */
export function killPluginsOnSignal(options: KillOnSignalOptions = {}): () => void {
  const signals = options.signals ?? ["SIGINT", "SIGTERM"];
  let stopping = false;
  const offs = signals.map((signal) =>
    onSignal(signal, () => {
      const status = 128 + SIGNAL_NUMBERS[signal];
      if (stopping) {
        // Asked twice: do not wait for the graceful stop.
        for (const { child } of liveChildren) child.kill("SIGKILL");
        if (options.exit !== false) exitProcess(status);
        return;
      }
      stopping = true;
      void cleanupPlugins().then(() => {
        stopping = false;
        if (options.exit !== false) exitProcess(status);
      });
    })
  );
  return () => {
    for (const off of offs) off();
  };
}
