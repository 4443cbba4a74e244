/**
 * Hipcheck plugins, run through plugwire's TypeScript Hipcheck core
 * (internal/hipcheck/core.ts): `POST /hipcheck/<publisher>/<name>[/<query>]` with the key as
 * the JSON body answers `{output, concerns}`.
 *
 * Each plugin id gets a core of its own, so it is supervised and reloaded on its own like any
 * other plugin; the plugins it sub-queries (`depends`) run in that core beside it. The core
 * answers identical queries once (Hipcheck core's memo), so an answer stays the same until the
 * plugin is reloaded or restarted.
 *
 * @module
 */

import { HipcheckCoreHost } from "../hipcheck/core.ts";
import { HipcheckCoreError } from "../hipcheck/core_errors.ts";
import { Status } from "../errors.ts";
import { pidAlive } from "../runtime.ts";
import type { HipcheckPluginSection } from "./config.ts";
import { errorResponseOf, isServerError } from "./connect.ts";
import type { Instance } from "./slot.ts";

/** A query's answer. */
export interface HipcheckAnswer {
  /** The query's output (a JSON value). */
  output: unknown;
  /** The concerns the plugin recorded while answering. */
  concerns: string[];
}

/** A running Hipcheck plugin. */
export interface HipcheckInstance extends Instance {
  /** Runs one query (`""`: the default query) with a JSON key. */
  query(query: string, key: unknown, timeoutMs: number): Promise<HipcheckAnswer>;
}

/** A failed query, with the gRPC status the gateway answers with. */
class HipcheckQueryError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.name = "HipcheckQueryError";
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

/** Starts a Hipcheck plugin (and the plugins it depends on) in a TypeScript Hipcheck core. */
export async function startHipcheckPlugin(
  section: HipcheckPluginSection,
  dependencies: readonly HipcheckPluginSection[],
  log: (line: string) => void,
  extraEnv: Record<string, string> = {},
): Promise<HipcheckInstance> {
  const specOf = (s: HipcheckPluginSection) => ({
    publisher: s.publisher,
    name: s.name,
    cmd: s.cmd,
    config: s.config,
    cwd: s.cwd,
  });
  const name = `${section.publisher}/${section.name}`;
  const core = await HipcheckCoreHost.start({
    plugins: [specOf(section), ...dependencies.map(specOf)],
    env: extraEnv,
    // More patient than core's 1 s per spawn: a gateway starts several plugins at once, often
    // on a busy machine, and a Deno or Python plugin takes a while to listen.
    connect: { backoffMs: 150, maxConnectAttempts: 8 },
    logLevel: "info",
    logger: (record) => {
      const who = record.plugin === name ? "" : `${record.plugin}: `;
      log(`[${record.level}] ${who}${record.message}`);
    },
  });
  const info = core.plugins.find((p) => `${p.publisher}/${p.name}` === name)!;
  const pids = core.plugins.map((p) => p.pid);
  let stopping = false;
  let timer: ReturnType<typeof setInterval> | undefined;
  // The core has no exit event of its own: its plugin processes are watched here.
  const died = new Promise<string>((resolve) => {
    timer = setInterval(() => {
      const gone = pids.find((pid) => !pidAlive(pid));
      if (gone === undefined) return;
      clearInterval(timer);
      resolve(stopping ? "stopped" : `pid ${gone} exited`);
    }, 500);
  });
  return {
    pid: info.pid,
    tls: false,
    methods: info.queries.map((q) => q.name === "" ? "(default)" : q.name),
    died,
    async query(query, key, timeoutMs) {
      const signal = AbortSignal.timeout(timeoutMs);
      try {
        const result = await core.query(query ? `${name}/${query}` : name, key, { signal });
        return { output: result.output, concerns: result.concerns };
      } catch (err) {
        if (signal.aborted) {
          throw new HipcheckQueryError(Status.DEADLINE_EXCEEDED, `${name} took too long`);
        }
        if (err instanceof HipcheckCoreError) {
          const concerns = err.concerns;
          throw new HipcheckQueryError(
            STATUS_OF[err.code] ?? Status.UNKNOWN,
            err.message + (concerns.length ? ` (concerns: ${concerns.join("; ")})` : ""),
          );
        }
        throw err;
      }
    },
    async stop() {
      stopping = true;
      clearInterval(timer);
      await core.close();
    },
  };
}

/** Answers `POST /hipcheck/<publisher>/<name>[/<query>]`; `release(ok)` is called once. */
export async function answerHipcheck(
  instance: HipcheckInstance,
  query: string,
  key: unknown,
  timeoutMs: number,
  release: (ok: boolean) => void,
): Promise<Response> {
  try {
    const answer = await instance.query(query, key, timeoutMs);
    release(true);
    return new Response(JSON.stringify(answer), {
      headers: { "content-type": "application/json" },
    });
  } catch (err) {
    release(!isServerError(err));
    return errorResponseOf(err);
  }
}
