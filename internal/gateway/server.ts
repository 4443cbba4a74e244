/**
 * The gateway itself: the plugin slots of a configuration, the Hono application that routes to
 * them (auth, CORS, limits, control routes, status page), reload and shutdown. Serving the
 * application on a socket is `listen.ts`'s job.
 *
 * @module
 */

import { fromBinary, fromJson, type JsonValue, toBinary, toJson } from "@bufbuild/protobuf";
import { Hono } from "hono";
import type { Context } from "hono";
import { cors } from "hono/cors";
import { bodyLimit } from "hono/body-limit";
import { RpcError, Status } from "../errors.ts";
import { DynamicError } from "../dynamic.ts";
import { checkKey, KeySet, type KeySources } from "./auth.ts";
import type { GatewayConfig, HipcheckPluginSection, PluginSection } from "./config.ts";
import { connectCode, connectErrorResponse, httpStatusOf } from "./connect.ts";
import { type GrpcInstance, startGrpcPlugin } from "./grpc_plugin.ts";
import {
  type HttpPlugin,
  type ModuleInstance,
  type PluginContext,
  type PluginRequest,
  readBody,
  startModulePlugin,
  toResponse,
} from "./module_plugin.ts";
import { prometheusText } from "./metrics.ts";
import { type Instance, messageOf, PluginSlot, type SlotStatus } from "./slot.ts";
import { STATUS_PAGE_HTML } from "./status_page.ts";
import { type HipcheckInstance, startHipcheckPlugin } from "./hipcheck_plugin.ts";

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
      const result = await this.#reloadAll();
      return c.json(result, result.ok ? 200 : 409);
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

  async #reloadAll(): Promise<{ ok: boolean; failed: Record<string, string>; error?: string }> {
    const file = this.#config.file;
    if (!file) {
      const failed: Record<string, string> = {};
      await Promise.all([...this.#slots.keys()].map((id) =>
        this.reloadPlugin(id).catch((err) => {
          failed[id] = messageOf(err);
        })
      ));
      return { ok: Object.keys(failed).length === 0, failed };
    }
    const { loadGatewayConfig } = await import("./load.ts");
    let next: GatewayConfig;
    try {
      next = await loadGatewayConfig(file, this.#options.env);
    } catch (err) {
      // The config error names keys and lines, never values.
      return { ok: false, failed: {}, error: messageOf(err) };
    }
    const { failed } = await this.applyConfig(next);
    return { ok: Object.keys(failed).length === 0, failed };
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
    let ok = false;
    try {
      let body: unknown;
      try {
        body = await readBody(c.req.raw);
      } catch {
        ok = true; // the client's mistake, not the plugin's
        return connectErrorResponse(Status.INVALID_ARGUMENT, "the request body is not valid JSON");
      }
      const id = slot.id;
      const prefix = `/${id}`;
      const url = new URL(c.req.url);
      const request: PluginRequest = {
        method: c.req.method,
        path: url.pathname.slice(prefix.length) || "/",
        query: url.searchParams,
        headers: c.req.raw.headers,
        body,
        clientAddress: this.#clientAddress(c),
        raw: c.req.raw,
      };
      // (Deno's request.signal also fires after a successful response, so only the deadline.)
      const signal = AbortSignal.timeout(this.#deadlineMs(c.req.raw));
      const ctx: PluginContext = {
        id,
        params: lease.instance.params,
        log: (line) => slot.log(line),
        signal,
      };
      const plugin: HttpPlugin = lease.instance.plugin;
      const timedOut = new Promise<"timeout">((resolve) => {
        if (signal.aborted) resolve("timeout");
        signal.addEventListener("abort", () => resolve("timeout"), { once: true });
      });
      try {
        const result = await Promise.race([
          Promise.resolve().then(() => plugin.handle(request, ctx)),
          timedOut,
        ]);
        if (result === "timeout") {
          return connectErrorResponse(Status.DEADLINE_EXCEEDED, `${id} did not answer in time`);
        }
        const response = toResponse(result);
        ok = response.status < 500;
        return response;
      } catch (err) {
        slot.log(`[gateway] handler failed: ${messageOf(err)}`);
        this.#log(`${id}: handler failed: ${messageOf(err)}`);
        return connectErrorResponse(Status.INTERNAL, `${id} failed to handle the request`);
      }
    } finally {
      lease.release(ok);
    }
  }

  async #callGrpc(c: Context<Env>, slot: PluginSlot<GrpcInstance>): Promise<Response> {
    const type = (c.req.header("content-type") ?? "").split(";")[0].trim().toLowerCase();
    if (type !== "application/json" && type !== "application/proto") {
      return new Response(
        JSON.stringify({
          code: "unknown",
          message: "send the request as application/json (or Connect's application/proto)",
        }),
        {
          status: 415,
          headers: {
            "content-type": "application/json",
            "accept-post": "application/json, application/proto",
          },
        },
      );
    }
    const binary = type === "application/proto";
    let json: JsonValue = {};
    let bytes: Uint8Array | undefined;
    try {
      if (binary) bytes = new Uint8Array(await c.req.arrayBuffer());
      else {
        const text = await c.req.text();
        json = text.trim() === "" ? {} : JSON.parse(text);
      }
    } catch {
      return connectErrorResponse(Status.INVALID_ARGUMENT, "the request body is not valid JSON");
    }
    const lease = this.#acquire(slot);
    if (lease instanceof Response) return lease;
    const path = `${c.req.param("service")}/${c.req.param("method")}`;
    const { services } = lease.instance;
    const options = { timeoutMs: this.#deadlineMs(c.req.raw) };
    let method;
    try {
      method = services.method(path);
    } catch (err) {
      lease.release(!isServerError(err));
      return errorResponse(err);
    }
    if (bytes) {
      if (method.kind !== "unary") {
        lease.release(true);
        return connectErrorResponse(
          Status.UNIMPLEMENTED,
          `${path} is not unary; call it with application/json`,
        );
      }
      // Connect's binary unary: the same call, the messages as protobuf bytes.
      try {
        json = toJson(method.desc.input, fromBinary(method.desc.input, bytes), {
          registry: services.registry,
        });
      } catch (err) {
        lease.release(true);
        return connectErrorResponse(
          Status.INVALID_ARGUMENT,
          `the body is not a ${method.input}: ${messageOf(err)}`,
        );
      }
    }
    if (method.kind === "server_streaming") {
      let replies: AsyncIterator<unknown>;
      let first: IteratorResult<unknown>;
      try {
        replies = services.callServerStream(method, json, options)[Symbol.asyncIterator]();
        first = await replies.next();
      } catch (err) {
        lease.release(!isServerError(err));
        return errorResponse(err);
      }
      const encoder = new TextEncoder();
      let pending: IteratorResult<unknown> | undefined = first;
      const stream = new ReadableStream<Uint8Array>({
        async pull(controller) {
          try {
            const item = pending ?? await replies.next();
            pending = undefined;
            if (item.done) {
              lease.release(true);
              controller.close();
              return;
            }
            controller.enqueue(encoder.encode(JSON.stringify(item.value) + "\n"));
          } catch (err) {
            // The status line is sent already: the error is the stream's last line.
            lease.release(!isServerError(err));
            controller.enqueue(encoder.encode(JSON.stringify({ error: errorBody(err) }) + "\n"));
            controller.close();
          }
        },
        async cancel() {
          lease.release(true);
          await replies.return?.();
        },
      });
      return new Response(stream, { headers: { "content-type": "application/x-ndjson" } });
    }
    try {
      const reply = await services.callUnary(method, json, options);
      lease.release(true);
      if (bytes) {
        const message = fromJson(method.desc.output, reply, { registry: services.registry });
        return new Response(toBinary(method.desc.output, message), {
          headers: { "content-type": "application/proto" },
        });
      }
      return new Response(JSON.stringify(reply), {
        headers: { "content-type": "application/json" },
      });
    } catch (err) {
      lease.release(!isServerError(err));
      return errorResponse(err);
    }
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
    try {
      const output = await lease.instance.query(query ?? "", key, this.#deadlineMs(c.req.raw));
      lease.release(true);
      return new Response(JSON.stringify(output), {
        headers: { "content-type": "application/json" },
      });
    } catch (err) {
      lease.release(!isServerError(err));
      return errorResponse(err);
    }
  }
}

function errorBody(err: unknown): { code: string; message: string } {
  const { status, message } = errorParts(err);
  return { code: connectCode(status), message };
}

function errorParts(err: unknown): { status: number; message: string } {
  if (err instanceof RpcError) return { status: err.code, message: err.details };
  if (err instanceof DynamicError) return { status: err.status, message: err.message };
  if (err && typeof err === "object" && "status" in err && typeof err.status === "number") {
    return { status: err.status, message: messageOf(err) };
  }
  return { status: Status.INTERNAL, message: messageOf(err) };
}

/** True when the error is answered with a 5xx (what the `errors` count counts). */
function isServerError(err: unknown): boolean {
  return httpStatusOf(errorParts(err).status) >= 500;
}

/** A Connect error response for a failed call. */
function errorResponse(err: unknown): Response {
  const { status, message } = errorParts(err);
  return connectErrorResponse(status, message);
}
