/**
 * In-process HTTP plugins (plugincore's model, in TypeScript): a module whose default export is
 * a {@link HttpPlugin} (or a function returning one, so every reload gets fresh state). The
 * handler receives the request and a typed context, never one dictionary that the body could
 * overwrite (plugincore.md §9 bug 3).
 *
 * @module
 */

import { Status } from "../errors.ts";
import { connectErrorResponse } from "./connect.ts";
import type { Instance } from "./slot.ts";

/**
 * A JSON value a handler may return (object members that are `undefined` are left out).
 *
 * @example Lists and scalars are JSON too
 * ```ts
 * import type { JsonValue } from "@plugwire/plugwire/gateway";
 * import assert from "node:assert/strict";
 *
 * const answers: JsonValue[] = [[1, "two"], 42, "text", null, { a: undefined, b: 1 }];
 * assert.equal(JSON.stringify(answers[4]), '{"b":1}');
 * ```
 */
export type JsonValue = null | boolean | number | string | JsonValue[] | {
  [key: string]: JsonValue | undefined;
};

/**
 * The request as a handler sees it: transport data, parsed once, read-only.
 *
 * @example A handler reading the path, the query and a JSON body
 * ```ts
 * import { definePlugin, type PluginRequest } from "@plugwire/plugwire/gateway";
 * import assert from "node:assert/strict";
 *
 * const plugin = definePlugin({
 *   handle: (request: PluginRequest) => ({
 *     path: request.path,
 *     name: request.query.get("name"),
 *     body: request.body as never,
 *   }),
 * });
 * const request: PluginRequest = {
 *   method: "POST",
 *   path: "/x",
 *   query: new URLSearchParams("name=Ada"),
 *   headers: new Headers(),
 *   body: { a: 1 },
 *   clientAddress: "127.0.0.1",
 *   raw: new Request("http://localhost/p/x?name=Ada"),
 * };
 * const ctx = { id: "p", params: {}, log: () => {}, signal: new AbortController().signal };
 * assert.deepEqual(await plugin.handle(request, ctx), { path: "/x", name: "Ada", body: { a: 1 } });
 * ```
 */
export interface PluginRequest {
  /** `GET`, `POST`, ... */
  readonly method: string;
  /** The path below the plugin's route: `/` for `/<id>`, `/a/b` for `/<id>/a/b`. */
  readonly path: string;
  /** The query string. */
  readonly query: URLSearchParams;
  /** The request headers (case-insensitive). */
  readonly headers: Headers;
  /**
   * The body: parsed JSON for `application/json`, a record of fields for a form, the text for
   * `text/*`, the bytes otherwise, `undefined` without a body.
   */
  readonly body: unknown;
  /** The client's address: the peer, or X-Forwarded-For's when the peer is a trusted proxy. */
  readonly clientAddress: string;
  /** The original request, with its body already read. */
  readonly raw: Request;
}

/**
 * What a handler gets besides the request: the plugin's params, a log, the deadline.
 *
 * @example Params from the config file, never mixed with the body
 * ```ts
 * import type { PluginContext } from "@plugwire/plugwire/gateway";
 * import assert from "node:assert/strict";
 *
 * const lines: string[] = [];
 * const ctx: PluginContext<{ greeting: string }> = {
 *   id: "hello",
 *   params: { greeting: "Hi" },
 *   log: (line) => lines.push(line),
 *   signal: AbortSignal.timeout(1000),
 * };
 * ctx.log(`${ctx.params.greeting} from ${ctx.id}`);
 * assert.deepEqual(lines, ["Hi from hello"]);
 * ```
 */
export interface PluginContext<P = Record<string, unknown>> {
  /** The plugin's id (its route). */
  readonly id: string;
  /** The plugin's `params` from the config file. */
  readonly params: Readonly<P>;
  /** Appends a line to the plugin's log (shown on the status page). */
  log(message: string): void;
  /** Aborted when the request's deadline passes or the client goes away. */
  readonly signal: AbortSignal;
}

/**
 * What `initialize` gets besides the params.
 *
 * @example Logging from initialize
 * ```ts
 * import type { PluginInitContext } from "@plugwire/plugwire/gateway";
 * import assert from "node:assert/strict";
 *
 * const lines: string[] = [];
 * const ctx: PluginInitContext = { id: "hello", log: (line) => lines.push(line) };
 * ctx.log("ready");
 * assert.deepEqual(lines, ["ready"]);
 * ```
 */
export interface PluginInitContext {
  /** The plugin's id. */
  readonly id: string;
  /** Appends a line to the plugin's log. */
  log(message: string): void;
}

/**
 * A handler's answer: a `Response` as it is, `[status, body]` (a two-element array whose first
 * element is an HTTP status 200-599), or any other JSON value (200). `undefined` answers 204.
 *
 * @example Three ways to answer
 * ```ts
 * import type { HandlerResult } from "@plugwire/plugwire/gateway";
 * import assert from "node:assert/strict";
 *
 * const answers: HandlerResult[] = [{ ok: true }, [404, { code: "not_found" }], new Response("x")];
 * assert.equal(answers.length, 3);
 * ```
 */
export type HandlerResult = Response | JsonValue | [number, JsonValue] | undefined;

/**
 * An in-process HTTP plugin: a module's default export (or a function returning one, called
 * again on every reload so each instance starts fresh).
 *
 * @example A plugin module's whole text
 * ```ts
 * import type { HttpPlugin } from "@plugwire/plugwire/gateway";
 * import assert from "node:assert/strict";
 *
 * const plugin: HttpPlugin<{ greeting: string }> = {
 *   handle: (request, ctx) => ({ message: `${ctx.params.greeting}, ${request.query.get("name")}` }),
 * };
 * export default plugin;
 * assert.equal(typeof plugin.handle, "function");
 * ```
 *
 * @typeParam P The shape of its `params`.
 */
export interface HttpPlugin<P = Record<string, unknown>> {
  /** Runs once before the first request, with the plugin's params. A throw fails the start. */
  initialize?(params: P, ctx: PluginInitContext): void | Promise<void>;
  /** Answers a request to `/<id>` or `/<id>/...`. May be sync or async. */
  handle(
    request: PluginRequest,
    ctx: PluginContext<P>,
  ): HandlerResult | Promise<HandlerResult>;
  /** Runs when the plugin is reloaded or the gateway stops. */
  terminate?(): void | Promise<void>;
}

/** A loaded in-process plugin. */
export interface ModuleInstance extends Instance {
  readonly plugin: HttpPlugin;
  readonly params: Record<string, unknown>;
}

let generation = 0;

/**
 * Imports the module (a fresh copy on every call, so a reload picks up edits), builds its
 * plugin and runs `initialize`.
 */
export async function startModulePlugin(
  id: string,
  modulePath: string,
  params: Record<string, unknown>,
  log: (line: string) => void,
): Promise<ModuleInstance> {
  const url = new URL(modulePath, "file:///");
  // A query makes a new module instance: the runtime caches modules by URL.
  url.searchParams.set("plugwire-load", String(++generation));
  const mod = await import(url.href);
  const exported = mod.default ?? mod.plugin;
  const plugin: unknown = typeof exported === "function" ? await exported() : exported;
  if (!plugin || typeof (plugin as HttpPlugin).handle !== "function") {
    throw new TypeError(
      `${modulePath} must export default a plugin object with a handle(request, ctx) function`,
    );
  }
  const p = plugin as HttpPlugin;
  await p.initialize?.(params, { id, log });
  let terminated = false;
  return {
    plugin: p,
    params,
    tls: false,
    methods: ["*"],
    died: new Promise<string>(() => {}),
    async stop() {
      if (terminated) return;
      terminated = true;
      await p.terminate?.();
    },
  };
}

/** Turns a handler's answer into a response; JSON for every JSON value (bug 8). */
export function toResponse(result: HandlerResult): Response {
  if (result instanceof Response) return result;
  if (result === undefined) return new Response(null, { status: 204 });
  let status = 200;
  let body: JsonValue = result;
  if (
    Array.isArray(result) && result.length === 2 && typeof result[0] === "number" &&
    Number.isInteger(result[0]) && result[0] >= 200 && result[0] <= 599
  ) {
    status = result[0];
    body = result[1] as JsonValue;
  }
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json" },
  });
}

/** Reads a request body by its content type (the size limit has been applied before). */
export async function readBody(request: Request): Promise<unknown> {
  if (request.body === null) return undefined;
  const type = (request.headers.get("content-type") ?? "").split(";")[0].trim().toLowerCase();
  if (type === "application/json" || type.endsWith("+json")) {
    const text = await request.text();
    if (text.trim() === "") return undefined;
    return JSON.parse(text);
  }
  if (type === "application/x-www-form-urlencoded" || type === "multipart/form-data") {
    const form = await request.formData();
    const out: Record<string, FormDataEntryValue | FormDataEntryValue[]> = {};
    for (const [k, v] of form) {
      const prev = out[k];
      out[k] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [prev, v];
    }
    return out;
  }
  if (type.startsWith("text/")) return await request.text();
  const bytes = new Uint8Array(await request.arrayBuffer());
  return bytes.length ? bytes : undefined;
}

/**
 * Runs the plugin's handler on a request, within the deadline: its answer as a response, 504
 * when the deadline passes first, 500 (the error goes to `log`, not to the client) when it
 * throws.
 */
export async function answerModule(
  id: string,
  instance: ModuleInstance,
  request: PluginRequest,
  log: (line: string) => void,
  timeoutMs: number,
): Promise<Response> {
  // Only the deadline: Deno's request.signal also fires after a successful response.
  const signal = AbortSignal.timeout(timeoutMs);
  const ctx: PluginContext = { id, params: instance.params, log, signal };
  const timedOut = new Promise<"timeout">((resolve) => {
    if (signal.aborted) resolve("timeout");
    signal.addEventListener("abort", () => resolve("timeout"), { once: true });
  });
  try {
    const result = await Promise.race([
      Promise.resolve().then(() => instance.plugin.handle(request, ctx)),
      timedOut,
    ]);
    if (result === "timeout") {
      return connectErrorResponse(Status.DEADLINE_EXCEEDED, `${id} did not answer in time`);
    }
    return toResponse(result);
  } catch (err) {
    log(`[gateway] handler failed: ${err instanceof Error ? err.message : String(err)}`);
    return connectErrorResponse(Status.INTERNAL, `${id} failed to handle the request`);
  }
}
