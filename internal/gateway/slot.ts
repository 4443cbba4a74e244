/**
 * One plugin id of the gateway: the instance that serves it now, its supervision (restart with
 * exponential backoff after a crash), its reload (a new instance beside the old one, traffic
 * switched when it is ready, the old one drained and stopped; a failed start leaves the old one
 * serving) and its numbers (calls, errors, latency, restarts, last log lines).
 *
 * Requests look the instance up per request through {@link PluginSlot.acquire}, so a swap is
 * seen by the next request and never by one in flight.
 *
 * @module
 */

/** What the gateway runs for one plugin id: a module, a subprocess or a Hipcheck plugin. */
export interface Instance {
  /** The process id, for subprocess plugins. */
  readonly pid?: number;
  /** The negotiated protocol version, for subprocess plugins. */
  readonly version?: number;
  /** True when the gateway talks to it over (mutual) TLS. */
  readonly tls: boolean;
  /** What it serves: `package.Service/Method` paths, queries, or `*` for an HTTP handler. */
  readonly methods: readonly string[];
  /** Settles with a reason when the instance dies on its own; never for in-process plugins. */
  readonly died: Promise<string>;
  /** Stops it (its in-flight requests have been drained before). */
  stop(): Promise<void>;
}

/**
 * Where a plugin is in its life: `restarting` after a crash (backoff), `failed` when it never
 * started and no restart is pending.
 *
 * @example Serving or not
 * ```ts
 * import type { PluginState } from "@plugwire/plugwire/gateway";
 * import assert from "node:assert/strict";
 *
 * const serving = (state: PluginState) => state === "ready";
 * assert.equal(serving("restarting"), false);
 * ```
 */
export type SlotState = "starting" | "ready" | "restarting" | "failed" | "stopping" | "stopped";

/** How a slot starts instances and how hard it tries. */
export interface SlotOptions<I extends Instance> {
  id: string;
  kind: "module" | "grpc" | "hipcheck";
  /** Starts a fresh instance; `log` appends to the slot's last log lines. */
  start: (log: (line: string) => void) => Promise<I>;
  /** Requests served at once; more get 503. */
  concurrency: number;
  /** How long a replaced or stopped instance may finish its in-flight requests. */
  drainMs: number;
  /** First restart delay after a crash; doubled after each crash in a row. @default {250} */
  backoffInitialMs?: number;
  /** The longest restart delay. @default {30000} */
  backoffMaxMs?: number;
  /** Receives the slot's own events (started, crashed, reloaded), as text lines. */
  onEvent?: (line: string) => void;
}

/** A request's hold on an instance; `release` records the outcome. */
export interface Lease<I extends Instance> {
  instance: I;
  release(ok: boolean): void;
}

/** Latency buckets (seconds) of the Prometheus histogram. */
export const LATENCY_BUCKETS: readonly number[] = [
  0.001,
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
  5,
  10,
];

const LOG_LINES = 50;
const LATENCY_WINDOW = 512;
/** An instance that stayed up this long resets the backoff. */
const STABLE_MS = 30_000;

/**
 * The status of a plugin, as `GET /-/plugins` and `Gateway.status()` show it.
 *
 * @example Plugins that are not serving
 * ```ts
 * import type { PluginStatus } from "@plugwire/plugwire/gateway";
 * import assert from "node:assert/strict";
 *
 * const down = (all: PluginStatus[]) => all.filter((p) => p.state !== "ready").map((p) => p.id);
 * assert.deepEqual(down([]), []);
 * ```
 */
export interface SlotStatus {
  /** The plugin id. */
  id: string;
  /** `module`, `grpc` or `hipcheck`. */
  kind: string;
  /** Where it is in its life. */
  state: SlotState;
  /** The process id of a subprocess plugin now serving. */
  pid: number | null;
  /** The negotiated protocol version of a gRPC plugin. */
  version: number | null;
  /** True when the gateway talks to it over mutual TLS. */
  tls: boolean;
  /** Seconds since the serving instance started. */
  uptimeSeconds: number | null;
  /** Restarts after crashes. */
  restarts: number;
  /** Successful reloads. */
  reloads: number;
  /** `package.Service/Method` paths, query names, or `*`. */
  methods: readonly string[];
  /** Requests answered. */
  calls: number;
  /** Requests that failed (5xx, or an RPC error). */
  errors: number;
  /** Requests in flight now. */
  inFlight: number;
  /** Latency over the last 512 requests, in ms. */
  latencyMs: { mean: number | null; p50: number | null; p99: number | null };
  /** Why the last start, restart or reload failed, or why it crashed. */
  lastError: string | null;
  /** Its last log lines (plugin logs and the gateway's notes about it). */
  logs: readonly string[];
}

/** One plugin id: the live instance, its supervision and its numbers. */
export class PluginSlot<I extends Instance = Instance> {
  readonly id: string;
  readonly kind: "module" | "grpc" | "hipcheck";
  state: SlotState = "starting";
  restarts = 0;
  reloads = 0;
  calls = 0;
  errors = 0;
  lastError: string | undefined;
  /** Cumulative histogram counts per bucket, plus the sum, for Prometheus. */
  readonly histogram: { buckets: number[]; count: number; sumSeconds: number } = {
    buckets: LATENCY_BUCKETS.map(() => 0),
    count: 0,
    sumSeconds: 0,
  };

  #options: SlotOptions<I>;
  #current: I | undefined;
  #startedAt = 0;
  #crashesInARow = 0;
  #active = 0;
  readonly #inFlight = new Map<I, number>();
  readonly #drained = new Map<I, () => void>();
  readonly #logs: string[] = [];
  readonly #latencies: number[] = [];
  #restartTimer: ReturnType<typeof setTimeout> | undefined;
  #stopping = false;
  #starting: Promise<void> | undefined;
  /** Old instances being drained and stopped; `stop()` waits for them too. */
  readonly #retiring = new Set<Promise<void>>();
  #reloading: Promise<void> | undefined;

  constructor(options: SlotOptions<I>) {
    this.id = options.id;
    this.kind = options.kind;
    this.#options = options;
  }

  /** The instance serving now, if any. */
  get current(): I | undefined {
    return this.#current;
  }

  /** Requests in flight on every instance of this slot. */
  get active(): number {
    return this.#active;
  }

  /** Appends a line to the slot's last log lines. */
  log(line: string): void {
    // Terminal colours (a Deno error, say) mean nothing on the status page.
    // deno-lint-ignore no-control-regex
    this.#logs.push(line.replace(/\u001b\[[0-9;]*m/g, ""));
    if (this.#logs.length > LOG_LINES) this.#logs.splice(0, this.#logs.length - LOG_LINES);
  }

  /**
   * Starts the first instance. A failure is recorded and retried with backoff (the gateway
   * serves its other plugins meanwhile); the returned promise settles after the first try.
   */
  start(): Promise<void> {
    this.#starting = this.#firstStart();
    return this.#starting;
  }

  async #firstStart(): Promise<void> {
    try {
      const instance = await this.#options.start((line) => this.log(line));
      // Stopped while it was starting (a SIGTERM during start-up): stop it too.
      if (this.#stopping) await instance.stop();
      else this.#install(instance);
    } catch (err) {
      this.#failed(`start failed: ${messageOf(err)}`);
    }
  }

  /** Takes a request slot on the current instance, or says why not. */
  acquire(): Lease<I> | "unavailable" | "busy" {
    const instance = this.#current;
    if (!instance || this.#stopping) return "unavailable";
    if (this.#active >= this.#options.concurrency) return "busy";
    this.#active++;
    this.#inFlight.set(instance, (this.#inFlight.get(instance) ?? 0) + 1);
    const began = performance.now();
    let released = false;
    return {
      instance,
      release: (ok) => {
        if (released) return;
        released = true;
        this.#active--;
        const left = (this.#inFlight.get(instance) ?? 1) - 1;
        this.#inFlight.set(instance, left);
        if (left === 0) this.#drained.get(instance)?.();
        this.#record(ok, (performance.now() - began) / 1000);
      },
    };
  }

  /**
   * Starts a new instance (with new options, if given) beside the current one, switches to it
   * once it is ready, then drains and stops the old one. When the new one fails, the old one
   * keeps serving and the reason is kept in `lastError` (and thrown).
   */
  reload(
    options?: Partial<Pick<SlotOptions<I>, "start" | "concurrency" | "drainMs">>,
  ): Promise<void> {
    const run = async () => {
      const start = options?.start ?? this.#options.start;
      let next: I;
      try {
        next = await start((line) => this.log(line));
      } catch (err) {
        this.lastError = `reload failed: ${messageOf(err)}`;
        this.#options.onEvent?.(`${this.id}: ${this.lastError}`);
        if (!this.#current) this.state = "failed";
        throw err;
      }
      if (this.#stopping) {
        await next.stop();
        return;
      }
      this.#options = { ...this.#options, ...options };
      const old = this.#current;
      clearTimeout(this.#restartTimer);
      this.#install(next);
      this.reloads++;
      this.lastError = undefined;
      this.#options.onEvent?.(`${this.id}: reloaded${next.pid ? ` (pid ${next.pid})` : ""}`);
      if (old) await this.#retire(old);
    };
    // One reload at a time: a second waits for the first, then reloads again.
    const previous = this.#reloading ?? Promise.resolve();
    const mine = previous.catch(() => {}).then(run);
    this.#reloading = mine.catch(() => {});
    return mine;
  }

  /** Drains and stops the current instance; no restart after this. */
  async stop(): Promise<void> {
    this.#stopping = true;
    clearTimeout(this.#restartTimer);
    await this.#starting; // an instance still starting is stopped as soon as it is up
    const instance = this.#current;
    this.state = "stopping";
    await Promise.all([...(instance ? [this.#retire(instance)] : []), ...this.#retiring]);
    this.#current = undefined;
    this.state = "stopped";
  }

  /** A snapshot for `/-/plugins`, the status page and the metrics. */
  status(): SlotStatus {
    const instance = this.#current;
    const sorted = [...this.#latencies].sort((a, b) => a - b);
    const pick = (q: number) =>
      sorted.length
        ? round(sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))])
        : null;
    return {
      id: this.id,
      kind: this.kind,
      state: this.state,
      pid: instance?.pid ?? null,
      version: instance?.version ?? null,
      tls: instance?.tls ?? false,
      uptimeSeconds: instance ? Math.round((Date.now() - this.#startedAt) / 100) / 10 : null,
      restarts: this.restarts,
      reloads: this.reloads,
      methods: instance?.methods ?? [],
      calls: this.calls,
      errors: this.errors,
      inFlight: this.#active,
      latencyMs: {
        mean: this.histogram.count
          ? round((this.histogram.sumSeconds / this.histogram.count) * 1000)
          : null,
        p50: pick(0.5),
        p99: pick(0.99),
      },
      lastError: this.lastError ?? null,
      logs: [...this.#logs],
    };
  }

  #install(instance: I): void {
    this.#current = instance;
    this.#startedAt = Date.now();
    this.state = "ready";
    this.#options.onEvent?.(
      `${this.id}: ready${instance.pid ? ` (pid ${instance.pid})` : ""}`,
    );
    instance.died.then((reason) => {
      if (this.#current !== instance || this.#stopping) return;
      if (Date.now() - this.#startedAt >= STABLE_MS) this.#crashesInARow = 0;
      this.#current = undefined;
      this.log(`[gateway] ${reason}`);
      this.#failed(reason);
    });
  }

  #failed(reason: string): void {
    if (this.#stopping) return;
    this.lastError = reason;
    const initial = this.#options.backoffInitialMs ?? 250;
    const max = this.#options.backoffMaxMs ?? 30_000;
    const delay = Math.min(max, initial * 2 ** this.#crashesInARow);
    this.#crashesInARow++;
    this.state = this.#current ? "ready" : "restarting";
    this.#options.onEvent?.(`${this.id}: ${reason}; restarting in ${delay} ms`);
    this.#restartTimer = setTimeout(() => {
      if (this.#stopping || this.#current) return;
      // Kept in #starting so that stop() waits for a restart under way.
      this.#starting = (async () => {
        try {
          const instance = await this.#options.start((line) => this.log(line));
          if (this.#stopping || this.#current) {
            await instance.stop();
            return;
          }
          this.restarts++;
          this.#install(instance);
        } catch (err) {
          this.#failed(`restart failed: ${messageOf(err)}`);
        }
      })();
    }, delay);
  }

  #retire(instance: I): Promise<void> {
    const retiring = this.#drainAndStop(instance);
    this.#retiring.add(retiring);
    return retiring.finally(() => this.#retiring.delete(retiring));
  }

  async #drainAndStop(instance: I): Promise<void> {
    if ((this.#inFlight.get(instance) ?? 0) > 0) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        new Promise<void>((resolve) => this.#drained.set(instance, resolve)),
        new Promise<void>((resolve) => timer = setTimeout(resolve, this.#options.drainMs)),
      ]);
      clearTimeout(timer);
    }
    this.#drained.delete(instance);
    this.#inFlight.delete(instance);
    try {
      await instance.stop();
    } catch (err) {
      this.log(`[gateway] stopping the old instance failed: ${messageOf(err)}`);
    }
  }

  #record(ok: boolean, seconds: number): void {
    this.calls++;
    if (!ok) this.errors++;
    const h = this.histogram;
    h.count++;
    h.sumSeconds += seconds;
    LATENCY_BUCKETS.forEach((le, i) => {
      if (seconds <= le) h.buckets[i]++;
    });
    this.#latencies.push(seconds * 1000);
    if (this.#latencies.length > LATENCY_WINDOW) this.#latencies.shift();
  }
}

function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}

/** The message of any thrown value. */
export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
