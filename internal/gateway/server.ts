/**
 * The gateway itself: the plugin slots of a configuration, the Hono application that routes to
 * them (auth, CORS, limits, control routes, status page), reload and shutdown. Serving the
 * application on a socket is `listen.ts`'s job.
 *
 * @module
 */

import { Hono } from "hono";
import type { Context } from "hono";
import { cors } from "hono/cors";
import { bodyLimit } from "hono/body-limit";
import { RpcError, Status } from "../errors.ts";
import { checkKey, KeySet, type KeySources } from "./auth.ts";
import type { GatewayConfig, HipcheckPluginSection, PluginSection } from "./config.ts";
import { connectErrorResponse } from "./connect.ts";
import { loadGatewayConfig } from "./load.ts";
import { answerGrpc, type GrpcInstance, readGrpcBody, startGrpcPlugin } from "./grpc_plugin.ts";
import {
  answerModule,
  type ModuleInstance,
  type PluginRequest,
  readBody,
  startModulePlugin,
} from "./module_plugin.ts";
import { prometheusText } from "./metrics.ts";
import { type Instance, messageOf, PluginSlot, type SlotStatus } from "./slot.ts";
import { STATUS_PAGE_HTML } from "./status_page.ts";
import { answerHipcheck, type HipcheckInstance, startHipcheckPlugin } from "./hipcheck_plugin.ts";

/** What the HTTP layer passes along with each request. */
export interface ConnInfo {
  /** The peer's address (IP). */
  remoteAddr: string;
}

type Env = { Bindings: ConnInfo };

/** Options of a {@link GatewayCore} beyond its configuration. */
export interface GatewayCoreOptions {
  /** Receives the gateway's own log lines (never a secret). */
  log?: (line: string) => void;
  /** Extra environment for every subprocess plugin (tests mark their processes with it). */
  pluginEnv?: Record<string, string>;
  /** First restart delay after a crash. @default {250} */
  backoffInitialMs?: number;
  /** What `${NAME}` reads when the config file is read again. @default {the process's} */
  env?: Record<string, string | undefined>;
}

/** The gateway without its socket: slots, routing, reload, stop. */
export class GatewayCore {
  #config: GatewayConfig;
  #app: Hono<Env>;
  readonly #slots = new Map<string, PluginSlot>();
  readonly #options: GatewayCoreOptions;
  readonly #startedAt = Date.now();
  #draining = false;
  #applying: Promise<unknown> = Promise.resolve();

  constructor(config: GatewayConfig, options: GatewayCoreOptions = {}) {
    this.#config = config;
    this.#options = options;
    this.#app = this.#buildApp();
  }

  /** The configuration in force. */
  get config(): GatewayConfig {
    return this.#config;
  }

  /** The slots by plugin id. */
  get slots(): ReadonlyMap<string, PluginSlot> {
    return this.#slots;
  }

  /** Starts every plugin (concurrently); failures are retried in the background. */
  async start(): Promise<void> {
    for (const section of this.#config.plugins) this.#slots.set(section.id, this.#slotFor(section));
    await Promise.all([...this.#slots.values()].map((s) => s.start()));
    if (this.#config.auth.keys.length === 0) {
      this.#log("warning: no global API key: plugins without keys of their own are open");
    }
  }

  /** Answers one HTTP request. */
  fetch(request: Request, info: ConnInfo): Promise<Response> {
    return Promise.resolve(this.#app.fetch(request, info));
  }

  /** The status of every plugin. */
  status(): SlotStatus[] {
    return [...this.#slots.values()].map((s) => s.status());
  }

  /** Reloads one plugin for real (see {@link PluginSlot.reload}). */
  async reloadPlugin(id: string): Promise<void> {
    const slot = this.#slots.get(id);
    if (!slot) throw new RpcError(Status.NOT_FOUND, `no plugin ${id}`);
    const section = this.#config.plugins.find((p) => p.id === id)!;
    await slot.reload({ start: this.#starter(section) });
  }

  /**
   * Applies a new configuration: plugins added are started, removed ones stopped, the others
   * reloaded; auth, CORS and limits change at once. `listen` and `tls` need a restart.
   * Returns the ids whose reload failed (they keep their old instance).
   */
  applyConfig(next: GatewayConfig): Promise<{ failed: Record<string, string> }> {
    // One configuration change at a time (the route, SIGHUP and the file watcher may race).
    const run = this.#applying.catch(() => {}).then(() => this.#apply(next));
    this.#applying = run;
    return run;
  }

  async #apply(next: GatewayConfig): Promise<{ failed: Record<string, string> }> {
    const failed: Record<string, string> = {};
    const nextIds = new Set(next.plugins.map((p) => p.id));
    const removed = [...this.#slots.keys()].filter((id) => !nextIds.has(id));
    this.#config = next;
    this.#app = this.#buildApp();
    await Promise.all([
      ...removed.map(async (id) => {
        const slot = this.#slots.get(id)!;
        this.#slots.delete(id);
        await slot.stop();
      }),
      ...next.plugins.map(async (section) => {
        const slot = this.#slots.get(section.id);
        if (!slot || slot.kind !== section.kind) {
          if (slot) await slot.stop();
          const fresh = this.#slotFor(section);
          this.#slots.set(section.id, fresh);
          await fresh.start();
          if (!fresh.current) failed[section.id] = fresh.lastError ?? "start failed";
          return;
        }
        try {
          await slot.reload({
            start: this.#starter(section),
            concurrency: section.concurrency ?? next.limits.concurrency,
            drainMs: next.limits.drainMs,
          });
        } catch (err) {
          failed[section.id] = messageOf(err);
        }
      }),
    ]);
    return { failed };
  }

  /** Stops answering (503 from now on) and stops every plugin concurrently. */
  async stop(): Promise<void> {
    this.#draining = true;
    await Promise.all([...this.#slots.values()].map((s) => s.stop()));
  }

  /** Marks the gateway as draining: health and new plugin requests answer 503. */
  drain(): void {
    this.#draining = true;
  }

  #log(line: string): void {
    this.#options.log?.(line);
  }

  #slotFor(section: PluginSection): PluginSlot {
    return new PluginSlot<Instance>({
      id: section.id,
      kind: section.kind,
      start: this.#starter(section),
      concurrency: section.concurrency ?? this.#config.limits.concurrency,
      drainMs: this.#config.limits.drainMs,
      backoffInitialMs: this.#options.backoffInitialMs,
      onEvent: (line) => this.#log(line),
    });
  }

  #starter(section: PluginSection): (log: (line: string) => void) => Promise<Instance> {
    switch (section.kind) {
      case "module":
        return (log) => startModulePlugin(section.id, section.module, section.params, log);
      case "grpc":
        return (log) => startGrpcPlugin(section, log, this.#options.pluginEnv);
      case "hipcheck": {
        const all = this.#config.plugins;
        const dependencies = section.depends.map((id) =>
          all.find((p) => p.id === id) as HipcheckPluginSection
        );
        return (log) => startHipcheckPlugin(section, dependencies, log, this.#options.pluginEnv);
      }
    }
  }

  // ---- HTTP ----

  #buildApp(): Hono<Env> {
    const config = this.#config;
    const app = new Hono<Env>();
    const sources: KeySources = { header: config.auth.header, queryParam: config.auth.queryParam };
    const globalKeys = new KeySet(config.auth.keys);
    const pluginKeys = new Map<string, KeySet>();
    for (const p of config.plugins) {
      const own = new KeySet(p.keys);
      pluginKeys.set(
        p.id,
        p.public ? new KeySet([]) : p.keysMode === "replace" ? own : globalKeys.union(own),
      );
    }

    app.onError((err, c) => {
      this.#log(`internal error on ${c.req.method} ${c.req.path}: ${messageOf(err)}`);
      return connectErrorResponse(Status.INTERNAL, "internal error");
    });
    app.notFound((c) => connectErrorResponse(Status.NOT_FOUND, `no route for ${c.req.path}`));

    if (config.cors.enabled) {
      const origins = config.cors.origins;
      app.use(
        "*",
        cors({
          origin: origins.includes("*") ? "*" : origins,
          allowMethods: ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"],
          allowHeaders: [
            "Authorization",
            "Content-Type",
            "Connect-Protocol-Version",
            "Connect-Timeout-Ms",
            ...(config.auth.header ? [config.auth.header] : []),
          ],
          exposeHeaders: ["Retry-After", "WWW-Authenticate"],
          credentials: config.cors.credentials,
          maxAge: config.cors.maxAgeSeconds,
        }),
      );
    }

    // Checks a key set; answers 401 (none given) or 403 (wrong), or undefined to go on.
    const deny = (request: Request, keys: KeySet): Response | undefined => {
      const outcome = checkKey(request, keys, sources);
      if (outcome === "ok") return undefined;
      if (outcome === "missing") {
        return connectErrorResponse(Status.UNAUTHENTICATED, "an API key is required", {
          "www-authenticate": `Bearer realm="plugwire"`,
        });
      }
      return connectErrorResponse(Status.PERMISSION_DENIED, "the API key is not valid");
    };
    const limit = bodyLimit({
      maxSize: config.limits.bodyBytes,
      onError: () =>
        new Response(
          JSON.stringify({
            code: "resource_exhausted",
            message: `the request body is larger than ${config.limits.bodyBytes} bytes`,
          }),
          { status: 413, headers: { "content-type": "application/json" } },
        ),
    });

    // ---- control routes: /-/ never collides with a plugin id (ids cannot start with '-') ----
    app.get("/", (c) => c.html(STATUS_PAGE_HTML));
    app.get(
      "/-/healthz",
      (c) => this.#draining ? c.json({ status: "draining" }, 503) : c.json({ status: "ok" }),
    );
    app.get("/-/readyz", (c) => {
      const notReady = [...this.#slots.values()].filter((s) => !s.current).map((s) => s.id);
      return this.#draining || notReady.length
        ? c.json({ ready: false, notReady, draining: this.#draining }, 503)
        : c.json({ ready: true });
    });
    app.get("/-/plugins", (c) => {
      const denied = deny(c.req.raw, globalKeys);
      if (denied) return denied;
      return c.json({
        uptimeSeconds: Math.round((Date.now() - this.#startedAt) / 1000),
        plugins: this.status(),
      });
    });
    app.get("/-/metrics", (c) => {
      const denied = deny(c.req.raw, globalKeys);
      if (denied) return denied;
      return c.body(
        prometheusText(this.#slots.values(), Math.round((Date.now() - this.#startedAt) / 1000)),
        200,
        { "content-type": "text/plain; version=0.0.4; charset=utf-8" },
      );
    });
    app.post("/-/plugins/:id/reload", async (c) => {
      const denied = deny(c.req.raw, globalKeys);
      if (denied) return denied;
      const id = c.req.param("id");
      if (!this.#slots.has(id)) return connectErrorResponse(Status.NOT_FOUND, `no plugin ${id}`);
      try {
        await this.reloadPlugin(id);
      } catch (err) {
        return connectErrorResponse(
          Status.FAILED_PRECONDITION,
          `reload of ${id} failed; the old instance keeps serving: ${messageOf(err)}`,
        );
      }
      return c.json({ reloaded: id, plugin: this.#slots.get(id)!.status() });
    });
    app.post("/-/reload", async (c) => {
      const denied = deny(c.req.raw, globalKeys);
      if (denied) return denied;
      try {
        const { failed } = await this.reloadAll();
        const ok = Object.keys(failed).length === 0;
        return c.json({ ok, failed }, ok ? 200 : 409);
      } catch (err) {
        // A config error names keys and lines, never values.
        return c.json({ ok: false, failed: {}, error: messageOf(err) }, 409);
      }
    });

    // ---- subprocess gRPC plugins: POST /plugins/<id>/<package.Service>/<Method> ----
    app.post("/plugins/:id/:service/:method", async (c) => {
      const id = c.req.param("id");
      const slot = this.#slotOfKind(id, "grpc");
      if (!slot) return connectErrorResponse(Status.NOT_FOUND, `no gRPC plugin ${id}`);
      const denied = deny(c.req.raw, pluginKeys.get(id)!);
      if (denied) return denied;
      const tooBig = await limit(c, async () => {});
      return tooBig ?? await this.#callGrpc(c, slot as PluginSlot<GrpcInstance>);
    });

    // ---- Hipcheck plugins: POST /hipcheck/<publisher>/<name>[/<query>] ----
    const hipcheck = async (c: Context<Env>) => {
      const target = `${c.req.param("publisher")}/${c.req.param("name")}`;
      const section = this.#config.plugins.find((p) =>
        p.kind === "hipcheck" && `${p.publisher}/${p.name}` === target
      );
      const slot = section && this.#slotOfKind(section.id, "hipcheck");
      if (!slot) return connectErrorResponse(Status.NOT_FOUND, `no Hipcheck plugin ${target}`);
      const denied = deny(c.req.raw, pluginKeys.get(slot.id)!);
      if (denied) return denied;
      const tooBig = await limit(c, async () => {});
      return tooBig ??
        await this.#callHipcheck(c, slot as PluginSlot<HipcheckInstance>, c.req.param("query"));
    };
    app.post("/hipcheck/:publisher/:name", hipcheck);
    app.post("/hipcheck/:publisher/:name/:query", hipcheck);

    // ---- in-process HTTP plugins: /<id> and /<id>/* ----
    const moduleRoute = async (c: Context<Env>) => {
      const id = c.req.param("id")!;
      const slot = this.#slotOfKind(id, "module");
      if (!slot) return connectErrorResponse(Status.NOT_FOUND, `no route for ${c.req.path}`);
      const denied = deny(c.req.raw, pluginKeys.get(id)!);
      if (denied) return denied;
      const tooBig = await limit(c, async () => {});
      return tooBig ?? await this.#callModule(c, slot as PluginSlot<ModuleInstance>);
    };
    app.all("/:id", moduleRoute);
    app.all("/:id/*", moduleRoute);
    return app;
  }

  #slotOfKind(id: string, kind: PluginSlot["kind"]): PluginSlot | undefined {
    const slot = this.#slots.get(id);
    return slot?.kind === kind ? slot : undefined;
  }

  /**
   * Reads the configuration file again and applies it (without a file: reloads every plugin).
   * Returns the ids whose reload failed.
   * @throws {GatewayConfigError} When the file is invalid; nothing changes then.
   */
  async reloadAll(): Promise<{ failed: Record<string, string> }> {
    const file = this.#config.file;
    if (!file) {
      const failed: Record<string, string> = {};
      await Promise.all([...this.#slots.keys()].map((id) =>
        this.reloadPlugin(id).catch((err) => {
          failed[id] = messageOf(err);
        })
      ));
      return { failed };
    }
    return await this.applyConfig(await loadGatewayConfig(file, this.#options.env));
  }

  /** The request's deadline: the config's, or a shorter `Connect-Timeout-Ms`. */
  #deadlineMs(request: Request): number {
    const header = request.headers.get("connect-timeout-ms");
    const asked = header && /^\d{1,10}$/.test(header) ? Number(header) : undefined;
    const limit = this.#config.limits.timeoutMs;
    return asked !== undefined && asked > 0 ? Math.min(asked, limit) : limit;
  }

  #acquire<I extends Instance>(slot: PluginSlot<I>) {
    if (this.#draining) {
      return connectErrorResponse(Status.UNAVAILABLE, "the gateway is shutting down");
    }
    const lease = slot.acquire();
    if (lease === "busy") {
      return connectErrorResponse(Status.UNAVAILABLE, `${slot.id} is at its concurrency limit`, {
        "retry-after": "1",
      });
    }
    if (lease === "unavailable") {
      return connectErrorResponse(Status.UNAVAILABLE, `${slot.id} is not running (${slot.state})`, {
        "retry-after": "1",
      });
    }
    return lease;
  }

  #clientAddress(c: Context<Env>): string {
    const peer = c.env?.remoteAddr ?? "";
    const trusted = this.#config.trustedProxies;
    if (!trusted.includes(peer)) return peer;
    // The rightmost address that is not a trusted proxy is the client (bug 13).
    const hops = (c.req.header("x-forwarded-for") ?? "").split(",").map((s) => s.trim()).filter(
      Boolean,
    );
    for (let i = hops.length - 1; i >= 0; i--) if (!trusted.includes(hops[i])) return hops[i];
    return hops[0] ?? peer;
  }

  async #callModule(c: Context<Env>, slot: PluginSlot<ModuleInstance>): Promise<Response> {
    const lease = this.#acquire(slot);
    if (lease instanceof Response) return lease;
    let ok = true; // a bad body is the client's mistake, not the plugin's
    try {
      let body: unknown;
      try {
        body = await readBody(c.req.raw);
      } catch {
        return connectErrorResponse(Status.INVALID_ARGUMENT, "the request body is not valid JSON");
      }
      const url = new URL(c.req.url);
      const request: PluginRequest = {
        method: c.req.method,
        path: url.pathname.slice(`/${slot.id}`.length) || "/",
        query: url.searchParams,
        headers: c.req.raw.headers,
        body,
        clientAddress: this.#clientAddress(c),
        raw: c.req.raw,
      };
      const log = (line: string) => {
        slot.log(line);
        if (line.startsWith("[gateway]")) this.#log(`${slot.id}: ${line.slice(10)}`);
      };
      const response = await answerModule(
        slot.id,
        lease.instance,
        request,
        log,
        this.#deadlineMs(c.req.raw),
      );
      ok = response.status < 500;
      return response;
    } finally {
      lease.release(ok);
    }
  }

  async #callGrpc(c: Context<Env>, slot: PluginSlot<GrpcInstance>): Promise<Response> {
    // The body is read before a concurrency slot is taken: a slow upload holds none.
    const body = await readGrpcBody(c.req.raw);
    if (body instanceof Response) return body;
    const lease = this.#acquire(slot);
    if (lease instanceof Response) return lease;
    const path = `${c.req.param("service")}/${c.req.param("method")}`;
    return await answerGrpc(lease.instance, path, body, this.#deadlineMs(c.req.raw), lease.release);
  }

  async #callHipcheck(
    c: Context<Env>,
    slot: PluginSlot<HipcheckInstance>,
    query: string | undefined,
  ): Promise<Response> {
    let key;
    try {
      const text = await c.req.text();
      key = text.trim() === "" ? null : JSON.parse(text);
    } catch {
      return connectErrorResponse(Status.INVALID_ARGUMENT, "the key must be a JSON body");
    }
    const lease = this.#acquire(slot);
    if (lease instanceof Response) return lease;
    return await answerHipcheck(
      lease.instance,
      query ?? "",
      key,
      this.#deadlineMs(c.req.raw),
      lease.release,
    );
  }
}
