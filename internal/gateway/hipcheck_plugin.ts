/**
 * Hipcheck plugins, run through plugwire's TypeScript Hipcheck core
 * (internal/hipcheck/core.ts): `POST /hipcheck/<publisher>/<name>[/<query>]` with the key as
 * the JSON body answers the query's output.
 *
 * Each plugin id gets a core of its own, so it is supervised and reloaded on its own like any
 * other plugin; a sub-query to another plugin therefore fails with `unknown-plugin`.
 *
 * @module
 */

import { HipcheckCoreHost } from "../hipcheck/core.ts";
import { HipcheckCoreError } from "../hipcheck/core_errors.ts";
import { Status } from "../errors.ts";
import { pidAlive } from "../runtime.ts";
import type { HipcheckPluginSection } from "./config.ts";
import type { Instance } from "./slot.ts";

/** A running Hipcheck plugin. */
export interface HipcheckInstance extends Instance {
  /** `publisher/name`, as the plugin's routes use it. */
  readonly name: string;
  /** Runs one query (`""` is the default query) with a JSON key; resolves to its JSON output. */
  query(query: string, key: unknown, timeoutMs: number): Promise<unknown>;
}

/** A failed query, with the gRPC status the gateway answers with. */
class HipcheckQueryError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

const STATUS_OF: Record<string, number> = {
  "bad-target": Status.INVALID_ARGUMENT,
  "unknown-plugin": Status.NOT_FOUND,
  "unknown-query": Status.NOT_FOUND,
  "query-failed": Status.UNKNOWN,
  "query-cycle": Status.FAILED_PRECONDITION,
  "bad-reply": Status.INTERNAL,
  "config": Status.FAILED_PRECONDITION,
  "setup-failed": Status.UNAVAILABLE,
  "closed": Status.UNAVAILABLE,
};

/** Starts a Hipcheck plugin through the TypeScript Hipcheck core. */
export async function startHipcheckPlugin(
  section: HipcheckPluginSection,
  log: (line: string) => void,
  extraEnv: Record<string, string> = {},
): Promise<HipcheckInstance> {
  const core = await HipcheckCoreHost.start({
    plugins: [{
      publisher: section.publisher,
      name: section.name,
      cmd: section.cmd,
      config: section.config,
      cwd: section.cwd,
    }],
    env: extraEnv,
    logLevel: "info",
    logger: (record) => log(`[${record.level}] ${record.message}`),
  });
  const [info] = core.plugins;
  const name = `${section.publisher}/${section.name}`;
  let stopping = false;
  let timer: ReturnType<typeof setInterval> | undefined;
  // The core has no exit event of its own: its plugin process is watched here.
  const died = new Promise<string>((resolve) => {
    timer = setInterval(() => {
      if (!pidAlive(info.pid)) {
        clearInterval(timer);
        resolve(stopping ? "stopped" : `pid ${info.pid} exited`);
      }
    }, 500);
  });
  return {
    name,
    pid: info.pid,
    tls: false,
    methods: info.queries.map((q) => q.name === "" ? "(default)" : q.name),
    died,
    async query(query, key, timeoutMs) {
      let deadline: ReturnType<typeof setTimeout> | undefined;
      try {
        const result = await Promise.race([
          core.query(query ? `${name}/${query}` : name, key),
          new Promise<never>((_, reject) =>
            deadline = setTimeout(
              () =>
                reject(new HipcheckQueryError(Status.DEADLINE_EXCEEDED, `${name} took too long`)),
              timeoutMs,
            )
          ),
        ]);
        return result.output;
      } catch (err) {
        if (err instanceof HipcheckCoreError) {
          const concerns = err.concerns;
          throw new HipcheckQueryError(
            STATUS_OF[err.code] ?? Status.UNKNOWN,
            err.message + (concerns.length ? ` (concerns: ${concerns.join("; ")})` : ""),
          );
        }
        throw err;
      } finally {
        clearTimeout(deadline);
      }
    },
    async stop() {
      stopping = true;
      clearInterval(timer);
      await core.close();
    },
  };
}
