/**
 * The gateway's configuration: one TOML file, parsed with smol-toml, `${ENV}` interpolated and
 * validated with a zod schema. Every error names the key and the line it is on, and never
 * quotes a value that may be a secret (API keys, plugin environment).
 *
 * @module
 */

import { parse as parseToml, TomlError } from "smol-toml";
import { z } from "zod";

/**
 * The handshake of a subprocess plugin (go-plugin's HandshakeConfig, snake_case in TOML).
 *
 * @example The KV example's handshake, as the config file gives it
 * ```ts
 * import { parseGatewayConfig } from "@plugwire/plugwire/gateway";
 * import assert from "node:assert/strict";
 *
 * const config = parseGatewayConfig(`[plugins.kv]\ncmd = ["kv"]\nhandshake = ` +
 *   `{ protocol_version = 1, magic_cookie_key = "BASIC_PLUGIN", magic_cookie_value = "hello" }`);
 * const kv = config.plugins[0];
 * assert.equal(kv.kind === "grpc" && kv.handshake.magicCookieKey, "BASIC_PLUGIN");
 * ```
 */
export interface HandshakeSection {
  /** The application protocol version the plugin speaks. */
  protocolVersion: number;
  /** The environment variable carrying the cookie. */
  magicCookieKey: string;
  /** The cookie's value. */
  magicCookieValue: string;
}

/**
 * What every `[plugins.<id>]` table has.
 *
 * @example Keys of a plugin's own, replacing the global ones
 * ```ts
 * import { parseGatewayConfig } from "@plugwire/plugwire/gateway";
 * import assert from "node:assert/strict";
 *
 * const config = parseGatewayConfig(
 *   `[plugins.a]\nmodule = "a.ts"\nkeys = ["k"]\nkeys_mode = "replace"\nconcurrency = 4\n`,
 * );
 * assert.deepEqual([config.plugins[0].keysMode, config.plugins[0].concurrency], ["replace", 4]);
 * ```
 */
export interface CommonPluginSection {
  /** The plugin's id: its `[plugins.<id>]` key, case preserved. */
  id: string;
  /** No API key needed. */
  public: boolean;
  /** The plugin's own keys. */
  keys: string[];
  /** `add`: plugin keys and global keys both open it; `replace`: only the plugin's keys. */
  keysMode: "add" | "replace";
  /** Requests served at once before 503; undefined: `[limits] concurrency`. */
  concurrency?: number;
  /** The line of its `[plugins.<id>]` header, for messages. */
  line: number;
}

/**
 * An in-process HTTP plugin: a TypeScript module.
 *
 * @example `module` + `params`
 * ```ts
 * import { parseGatewayConfig } from "@plugwire/plugwire/gateway";
 * import assert from "node:assert/strict";
 *
 * const config = parseGatewayConfig(`[plugins.hello]\nmodule = "hello.ts"\nparams = { n = 1 }`, {
 *   file: "/srv/gw/plugwire.toml",
 * });
 * const hello = config.plugins[0];
 * assert.equal(hello.kind === "module" && hello.module, "/srv/gw/hello.ts");
 * ```
 */
export interface ModulePluginSection extends CommonPluginSection {
  /** Says which kind of plugin this is. */
  kind: "module";
  /** The module, resolved against the config file's directory. */
  module: string;
  /** Given to `initialize(params, ctx)` and to every request's context. */
  params: Record<string, unknown>;
}

/**
 * A go-plugin plugin started as a subprocess.
 *
 * @example AutoMTLS is on unless the file says otherwise
 * ```ts
 * import { parseGatewayConfig } from "@plugwire/plugwire/gateway";
 * import assert from "node:assert/strict";
 *
 * const config = parseGatewayConfig(`[plugins.kv]\ncmd = ["./kv"]\nhandshake = ` +
 *   `{ protocol_version = 1, magic_cookie_key = "K", magic_cookie_value = "V" }`, {
 *   file: "/srv/gw/plugwire.toml",
 * });
 * const kv = config.plugins[0];
 * assert.ok(kv.kind === "grpc" && kv.autoMtls && kv.cmd[0] === "/srv/gw/./kv");
 * ```
 */
export interface GrpcPluginSection extends CommonPluginSection {
  /** Says which kind of plugin this is. */
  kind: "grpc";
  /** The executable and its arguments (`./x` is relative to the config file). */
  cmd: string[];
  /** Must match the plugin's. */
  handshake: HandshakeSection;
  /** Speak mutual TLS with generated certificates. */
  autoMtls: boolean;
  /** Extra environment for the plugin (secrets allowed: never printed). */
  env: Record<string, string>;
  /** Protocol versions the gateway accepts; default: the handshake's. */
  versions: number[];
  /** Working directory; default: the config file's directory. */
  cwd?: string;
}

/**
 * A Hipcheck plugin, run through the TypeScript Hipcheck core.
 *
 * @example Publisher and name route it: `POST /hipcheck/mitre/entropy`
 * ```ts
 * import { parseGatewayConfig } from "@plugwire/plugwire/gateway";
 * import assert from "node:assert/strict";
 *
 * const config = parseGatewayConfig(
 *   `[plugins.entropy]\nhipcheck = ["entropy-plugin"]\npublisher = "mitre"\n`,
 * );
 * const p = config.plugins[0];
 * assert.equal(p.kind === "hipcheck" && `${p.publisher}/${p.name}`, "mitre/entropy");
 * ```
 */
export interface HipcheckPluginSection extends CommonPluginSection {
  /** Says which kind of plugin this is. */
  kind: "hipcheck";
  /** The command that starts the plugin. */
  cmd: string[];
  /** The plugin's publisher, as in its manifest. @default {"local"} */
  publisher: string;
  /** The plugin's name, as in its manifest. @default {its id} */
  name: string;
  /** The plugin's configuration, sent with SetConfiguration. */
  config: Record<string, unknown>;
  /**
   * Ids of the other Hipcheck plugins it sub-queries: they run in its core beside it (a core of
   * its own, so each plugin id is supervised and reloaded on its own).
   */
  depends: string[];
  /** Working directory; default: the config file's directory. */
  cwd?: string;
}

/**
 * One `[plugins.<id>]` table.
 *
 * @example Switching on the kind
 * ```ts
 * import { type PluginSection, parseGatewayConfig } from "@plugwire/plugwire/gateway";
 * import assert from "node:assert/strict";
 *
 * const describe = (p: PluginSection) => p.kind === "module" ? `/${p.id}` : `/plugins/${p.id}`;
 * const config = parseGatewayConfig(`[plugins.hello]\nmodule = "hello.ts"`);
 * assert.equal(describe(config.plugins[0]), "/hello");
 * ```
 */
export type PluginSection = ModulePluginSection | GrpcPluginSection | HipcheckPluginSection;

/**
 * The validated configuration, with defaults filled in and paths resolved.
 *
 * @example The defaults: loopback, 1 MiB bodies, 30 s deadline, CORS off
 * ```ts
 * import { type GatewayConfig, parseGatewayConfig } from "@plugwire/plugwire/gateway";
 * import assert from "node:assert/strict";
 *
 * const config: GatewayConfig = parseGatewayConfig("");
 * assert.deepEqual([config.hostname, config.port], ["127.0.0.1", 8080]);
 * assert.deepEqual([config.limits.bodyBytes, config.limits.timeoutMs], [1048576, 30000]);
 * assert.equal(config.cors.enabled, false);
 * ```
 */
export interface GatewayConfig {
  /** Host name or address to bind. */
  hostname: string;
  /** Port to bind; 0 picks a free one. */
  port: number;
  /** Serve HTTPS from these PEM files. */
  tls?: { certFile: string; keyFile: string };
  /** `[auth]`. */
  auth: {
    /** Global API keys (secrets). */
    keys: string[];
    /** One more header carrying the key, besides `Authorization: Bearer`. */
    header?: string;
    /** A query parameter carrying the key; off unless configured. */
    queryParam?: string;
  };
  /** `[cors]`. */
  cors: {
    /** On only when `enabled = true` (a TOML boolean). */
    enabled: boolean;
    /** Exact origins (`scheme://host[:port]`), or `*` alone. */
    origins: string[];
    /** Send `Access-Control-Allow-Credentials` (never with `*`). */
    credentials: boolean;
    /** How long a browser may cache a preflight. */
    maxAgeSeconds: number;
  };
  /** `[limits]`. */
  limits: {
    /** Largest request body; more is answered 413. */
    bodyBytes: number;
    /** Each request's deadline (passed to gRPC plugins as theirs). */
    timeoutMs: number;
    /** Requests served at once per plugin; more get 503 + Retry-After. */
    concurrency: number;
    /** How long shutdown waits for in-flight requests. */
    drainMs: number;
  };
  /** Peers whose X-Forwarded-For is believed. */
  trustedProxies: string[];
  /** Written with the gateway's pid once it listens; removed when it stops. */
  pidfile?: string;
  /** Reload when the config file changes. */
  watch: boolean;
  /** `[plugins.<id>]`, in file order. */
  plugins: PluginSection[];
  /** The file it was read from (absolute), if any. */
  file?: string;
}

/**
 * A configuration that cannot be used. `problems` lists each with its key path and line; the
 * message joins them. Values are never quoted, so secrets stay out of logs.
 *
 * @example Every problem at once, with its line
 * ```ts
 * import { GatewayConfigError, parseGatewayConfig } from "@plugwire/plugwire/gateway";
 * import assert from "node:assert/strict";
 *
 * assert.throws(
 *   () => parseGatewayConfig(`[cors]\nenabled = "false"\n`),
 *   (err) => err instanceof GatewayConfigError && err.problems[0].key === "cors.enabled" &&
 *     err.problems[0].line === 2,
 * );
 * ```
 */
export class GatewayConfigError extends Error {
  /** Each problem: the dotted key, its line (1-based; 0 when unknown) and what is wrong. */
  readonly problems: readonly { key: string; line: number; message: string }[];

  /**
   * Creates the error.
   *
   * @param file The file's name, for the message.
   * @param problems What is wrong, where.
   */
  constructor(
    file: string,
    problems: readonly { key: string; line: number; message: string }[],
  ) {
    super(
      `${file}: invalid gateway configuration:\n` +
        problems.map((p) => `  ${p.line ? `line ${p.line}: ` : ""}${p.key}: ${p.message}`).join(
          "\n",
        ),
    );
    this.name = "GatewayConfigError";
    this.problems = problems;
  }
}

const RESERVED_IDS = new Set(["-", "plugins", "hipcheck"]);
const ID = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;

const strictBool = z.boolean();
const positiveInt = z.number().int().positive();
const stringList = z.array(z.string().min(1));

const commonPlugin = {
  public: strictBool.default(false),
  keys: stringList.default([]),
  keys_mode: z.enum(["add", "replace"]).default("add"),
  concurrency: positiveInt.optional(),
};

const moduleSchema = z.strictObject({
  module: z.string().min(1),
  params: z.record(z.string(), z.unknown()).default({}),
  ...commonPlugin,
});

const grpcSchema = z.strictObject({
  cmd: stringList.min(1),
  handshake: z.strictObject({
    protocol_version: positiveInt,
    magic_cookie_key: z.string().min(1),
    magic_cookie_value: z.string().min(1),
  }),
  auto_mtls: strictBool.default(true),
  env: z.record(z.string(), z.string()).default({}),
  versions: z.array(positiveInt).min(1).optional(),
  cwd: z.string().optional(),
  ...commonPlugin,
});

const hipcheckSchema = z.strictObject({
  hipcheck: z.union([z.string().min(1), stringList.min(1)]),
  publisher: z.string().regex(/^[A-Za-z0-9_.-]+$/).default("local"),
  depends: z.array(z.string().min(1)).default([]),
  name: z.string().regex(/^[A-Za-z0-9_.-]+$/).optional(),
  config: z.record(z.string(), z.unknown()).default({}),
  cwd: z.string().optional(),
  ...commonPlugin,
});

const origin = z.string().refine((value) => {
  if (value === "*") return true;
  try {
    const url = new URL(value);
    return (url.protocol === "http:" || url.protocol === "https:") && url.origin === value;
  } catch {
    return false;
  }
}, { message: "not an origin: give scheme://host[:port] with no path or trailing slash" });

const topSchema = z.strictObject({
  listen: z.string().regex(/^(\[[0-9a-fA-F:]+\]|[^:\s]*):\d{1,5}$/, {
    message: "expected host:port, e.g. 127.0.0.1:8080",
  }).default("127.0.0.1:8080"),
  trusted_proxies: z.array(z.string().min(1)).default([]),
  watch: strictBool.default(false),
  pidfile: z.string().min(1).optional(),
  tls: z.strictObject({ cert: z.string().min(1), key: z.string().min(1) }).optional(),
  auth: z.strictObject({
    keys: stringList.default([]),
    header: z.string().regex(/^[A-Za-z0-9-]+$/, { message: "not a header name" }).optional(),
    query_param: z.string().min(1).optional(),
  }).default({ keys: [] }),
  cors: z.strictObject({
    enabled: strictBool.default(false),
    origins: z.array(origin).default([]),
    credentials: strictBool.default(false),
    max_age: z.number().int().nonnegative().default(600),
  }).default({ enabled: false, origins: [], credentials: false, max_age: 600 }),
  limits: z.strictObject({
    body_bytes: positiveInt.default(1024 * 1024),
    timeout_ms: positiveInt.default(30_000),
    concurrency: positiveInt.default(64),
    drain_ms: positiveInt.default(10_000),
  }).default({ body_bytes: 1024 * 1024, timeout_ms: 30_000, concurrency: 64, drain_ms: 10_000 }),
  plugins: z.record(z.string(), z.record(z.string(), z.unknown())).default({}),
  modules: z.array(z.string().min(1)).default([]),
});

type Problem = { path: PropertyKey[]; message: string };

/**
 * Parses and validates a gateway configuration.
 *
 * @example `${ENV}` interpolation, with a default
 * ```ts
 * import { parseGatewayConfig } from "@plugwire/plugwire/gateway";
 * import assert from "node:assert/strict";
 *
 * const config = parseGatewayConfig(
 *   `listen = "127.0.0.1:\${PORT:-9000}"\n[auth]\nkeys = ["\${KEY}"]\n`,
 *   { env: { KEY: "s3cret" } },
 * );
 * assert.equal(config.port, 9000);
 * assert.deepEqual(config.auth.keys, ["s3cret"]);
 * ```
 *
 * @param text The TOML text.
 * @param options `file` names it in errors and is the base of relative paths; `env` is what
 *   `${NAME}` reads (`${NAME:-default}` gives a default).
 * @throws {GatewayConfigError} For any problem, all of them at once.
 */
export function parseGatewayConfig(
  text: string,
  options: { file?: string; env?: Record<string, string | undefined> } = {},
): GatewayConfig {
  const file = options.file ?? "<config>";
  const env = options.env ?? {};
  const lines = keyLines(text);
  const fail = (problems: Problem[]): never => {
    throw new GatewayConfigError(
      file,
      problems.map((p) => {
        const key = p.path.map(String).join(".") || "(top level)";
        return { key, line: lineOf(lines, p.path.map(String)), message: p.message };
      }),
    );
  };

  let raw: Record<string, unknown>;
  try {
    raw = parseToml(text) as Record<string, unknown>;
  } catch (err) {
    if (err instanceof TomlError) {
      // smol-toml's message repeats the offending line, which may hold a key: keep the first line.
      const first = err.message.split("\n")[0];
      throw new GatewayConfigError(file, [{ key: "(syntax)", line: err.line, message: first }]);
    }
    throw err;
  }

  const problems: Problem[] = [];
  const interpolated = interpolate(raw, [], env, problems) as Record<string, unknown>;
  if (problems.length) fail(problems);

  // Every problem at once: the plugins are checked even when the rest has problems.
  const top = topSchema.safeParse(interpolated);
  if (!top.success) {
    for (const i of top.error.issues) problems.push({ path: i.path, message: i.message });
  }
  const rawPlugins = interpolated.plugins;
  // `modules = ["NetInfo.ts"]`: in-process plugins whose id is the module's name ("NetInfo").
  const moduleList = top.data?.modules ?? [];
  const pluginTables = top.data?.plugins ??
    (rawPlugins && typeof rawPlugins === "object" && !Array.isArray(rawPlugins)
      ? Object.fromEntries(
        Object.entries(rawPlugins).filter(([, v]) => v && typeof v === "object"),
      ) as Record<string, Record<string, unknown>>
      : {});

  const base = file === "<config>" ? undefined : dirName(file);
  const resolve = (p: string) => (base && !p.startsWith("/") ? `${base}/${p}` : p);

  // A command given as ./x or ../x is relative to the config file, like every other path; its
  // arguments are the plugin's business (it runs in the config file's directory by default).
  const resolveCommand = (cmd: string[]) =>
    /^\.\.?\//.test(cmd[0]) ? [resolve(cmd[0]), ...cmd.slice(1)] : cmd;

  const plugins: PluginSection[] = [];
  for (const [id, body] of Object.entries(pluginTables)) {
    const at = (path: PropertyKey[]) => ["plugins", id, ...path];
    if (!ID.test(id) || RESERVED_IDS.has(id)) {
      problems.push({
        path: at([]),
        message: RESERVED_IDS.has(id)
          ? "this id is reserved for the gateway's own routes"
          : "an id is letters, digits, '_', '.' and '-', not starting with '.' or '-'",
      });
      continue;
    }
    const kinds = (["module", "cmd", "hipcheck"] as const).filter((k) => k in body);
    if (kinds.length !== 1) {
      problems.push({
        path: at([]),
        message: kinds.length
          ? `give only one of ${kinds.join(", ")}`
          : "give one of module (in-process), cmd (go-plugin subprocess) or hipcheck",
      });
      continue;
    }
    const line = lineOf(lines, ["plugins", id]);
    const schema = kinds[0] === "module"
      ? moduleSchema
      : kinds[0] === "cmd"
      ? grpcSchema
      : hipcheckSchema;
    const parsed = schema.safeParse(body);
    if (!parsed.success) {
      for (const i of parsed.error.issues) problems.push({ path: at(i.path), message: i.message });
      continue;
    }
    const d = parsed.data as Record<string, unknown>;
    const common = {
      id,
      public: d.public as boolean,
      keys: d.keys as string[],
      keysMode: d.keys_mode as "add" | "replace",
      concurrency: d.concurrency as number | undefined,
      line,
    };
    if (common.keysMode === "replace" && common.keys.length === 0 && !common.public) {
      problems.push({
        path: at(["keys"]),
        message: 'keys_mode = "replace" needs keys (or public = true)',
      });
    }
    if (kinds[0] === "module") {
      const m = d as z.infer<typeof moduleSchema>;
      plugins.push({ ...common, kind: "module", module: resolve(m.module), params: m.params });
    } else if (kinds[0] === "cmd") {
      const g = d as z.infer<typeof grpcSchema>;
      const handshake = {
        protocolVersion: g.handshake.protocol_version,
        magicCookieKey: g.handshake.magic_cookie_key,
        magicCookieValue: g.handshake.magic_cookie_value,
      };
      plugins.push({
        ...common,
        kind: "grpc",
        cmd: resolveCommand(g.cmd),
        handshake,
        autoMtls: g.auto_mtls,
        env: g.env,
        versions: g.versions ?? [handshake.protocolVersion],
        cwd: g.cwd === undefined ? base : resolve(g.cwd),
      });
    } else {
      const h = d as z.infer<typeof hipcheckSchema>;
      plugins.push({
        ...common,
        kind: "hipcheck",
        cmd: resolveCommand(typeof h.hipcheck === "string" ? [h.hipcheck] : h.hipcheck),
        publisher: h.publisher,
        name: h.name ?? id,
        config: h.config,
        depends: h.depends,
        cwd: h.cwd === undefined ? base : resolve(h.cwd),
      });
    }
  }

  for (const p of plugins) {
    if (p.kind !== "hipcheck") continue;
    p.depends.forEach((dep, i) => {
      const target = plugins.find((q) => q.id === dep);
      if (!target || target.kind !== "hipcheck" || dep === p.id) {
        problems.push({
          path: ["plugins", p.id, "depends", i],
          message: `${dep} is not another Hipcheck plugin of this file`,
        });
      }
    });
  }
  moduleList.forEach((module, i) => {
    const id = module.slice(module.lastIndexOf("/") + 1).replace(/\.[cm]?[jt]sx?$/, "");
    if (!ID.test(id) || RESERVED_IDS.has(id) || plugins.some((p) => p.id === id)) {
      problems.push({
        path: ["modules", i],
        message: `the module's name ${JSON.stringify(id)} is not a free plugin id; ` +
          "give it a [plugins.<id>] table instead",
      });
      return;
    }
    plugins.push({
      id,
      kind: "module",
      module: resolve(module),
      params: {},
      public: false,
      keys: [],
      keysMode: "add",
      line: lineOf(lines, ["modules"]),
    });
  });
  if (!top.success) fail(problems);
  const t = top.data!;
  const cors = t.cors;
  if (cors.enabled && cors.origins.length === 0) {
    problems.push({ path: ["cors", "origins"], message: "CORS is enabled with no origins" });
  }
  if (cors.credentials && cors.origins.includes("*")) {
    problems.push({
      path: ["cors", "credentials"],
      message: 'credentials need explicit origins, not "*"',
    });
  }
  const hasKeys = t.auth.keys.length > 0 || plugins.some((p) => p.keys.length > 0);
  if (t.auth.query_param && !hasKeys) {
    problems.push({ path: ["auth", "query_param"], message: "set without any key" });
  }
  if (problems.length) fail(problems);

  const portText = t.listen.slice(t.listen.lastIndexOf(":") + 1);
  const port = Number(portText);
  if (port > 65535) fail([{ path: ["listen"], message: "port above 65535" }]);
  let hostname = t.listen.slice(0, t.listen.lastIndexOf(":")) || "127.0.0.1";
  if (hostname.startsWith("[")) hostname = hostname.slice(1, -1);

  return {
    hostname,
    port,
    tls: t.tls ? { certFile: resolve(t.tls.cert), keyFile: resolve(t.tls.key) } : undefined,
    auth: { keys: t.auth.keys, header: t.auth.header, queryParam: t.auth.query_param },
    cors: {
      enabled: cors.enabled,
      origins: cors.origins,
      credentials: cors.credentials,
      maxAgeSeconds: cors.max_age,
    },
    limits: {
      bodyBytes: t.limits.body_bytes,
      timeoutMs: t.limits.timeout_ms,
      concurrency: t.limits.concurrency,
      drainMs: t.limits.drain_ms,
    },
    trustedProxies: t.trusted_proxies,
    watch: t.watch,
    pidfile: t.pidfile === undefined ? undefined : resolve(t.pidfile),
    plugins,
    file: file === "<config>" ? undefined : file,
  };
}

/** Replaces `${NAME}` and `${NAME:-default}` in every string; `$${` stays a literal `${`. */
function interpolate(
  value: unknown,
  path: PropertyKey[],
  env: Record<string, string | undefined>,
  problems: Problem[],
): unknown {
  if (typeof value === "string") {
    return value.replace(
      /\$(\$)?\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g,
      (whole, escaped: string | undefined, name: string, fallback: string | undefined) => {
        if (escaped) return whole.slice(1);
        const v = env[name];
        if (v !== undefined && v !== "") return v;
        if (fallback !== undefined) return fallback;
        problems.push({ path, message: `environment variable ${name} is not set` });
        return "";
      },
    );
  }
  if (Array.isArray(value)) return value.map((v, i) => interpolate(v, [...path, i], env, problems));
  if (value && typeof value === "object" && !(value instanceof Date)) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      out[k] = interpolate(v, [...path, k], env, problems);
    }
    return out;
  }
  return value;
}

/**
 * The line of every table header and key in a TOML text, by dotted path. Arrays of tables and
 * multi-line values are rare in a gateway config; their inner keys fall back to the nearest
 * enclosing key's line.
 */
function keyLines(text: string): Map<string, number> {
  const lines = new Map<string, number>();
  let table: string[] = [];
  const splitKey = (key: string): string[] =>
    [...key.matchAll(/\s*("(?:[^"\\]|\\.)*"|'[^']*'|[A-Za-z0-9_-]+)\s*(?:\.|$)/g)].map((m) =>
      m[1].replace(/^["']|["']$/g, "")
    );
  text.split("\n").forEach((raw, index) => {
    const line = raw.trim();
    const header = /^\[\[?([^\]]+)\]\]?/.exec(line);
    if (header) {
      table = splitKey(header[1]);
      for (let i = 1; i <= table.length; i++) {
        const key = table.slice(0, i).join(".");
        if (!lines.has(key)) lines.set(key, index + 1);
      }
      return;
    }
    const assignment = /^((?:"(?:[^"\\]|\\.)*"|'[^']*'|[A-Za-z0-9_.\s-])+?)\s*=/.exec(line);
    if (assignment) {
      const key = [...table, ...splitKey(assignment[1])].join(".");
      if (!lines.has(key)) lines.set(key, index + 1);
      // Keys of an inline table on the same line: `params = { a = 1, b = 2 }`.
      const inline = /=\s*\{(.*)\}/.exec(line);
      if (inline) {
        for (const m of inline[1].matchAll(/([A-Za-z0-9_-]+)\s*=/g)) {
          const inner = `${key}.${m[1]}`;
          if (!lines.has(inner)) lines.set(inner, index + 1);
        }
      }
    }
  });
  return lines;
}

function lineOf(lines: Map<string, number>, path: string[]): number {
  for (let n = path.length; n > 0; n--) {
    const line = lines.get(path.slice(0, n).join("."));
    if (line) return line;
  }
  return 0;
}

function dirName(file: string): string {
  const i = file.lastIndexOf("/");
  return i < 0 ? "." : i === 0 ? "/" : file.slice(0, i);
}
