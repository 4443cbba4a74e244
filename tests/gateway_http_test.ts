/**
 * The gateway over real HTTP with in-process plugins: routing, the typed context, results,
 * API keys, CORS, limits and the client address. Each test names the plugincore bug
 * (plugincore.md §9) whose right behaviour it shows.
 */

import assert from "node:assert/strict";
import { type Gateway, startGateway } from "../gateway.ts";
import { eventually, testNoLeftovers } from "./_util.ts";

const ECHO = new URL("./fixtures/gateway/echo.ts", import.meta.url).pathname;
const KEY = "k3y-Very-Secret-0123456789";

interface Started {
  gateway: Gateway;
  logs: string[];
  dir: string;
  [Symbol.asyncDispose](): Promise<void>;
}

async function gatewayWith(toml: string, env: Record<string, string> = {}): Promise<Started> {
  const dir = await Deno.makeTempDir({ prefix: "plugwire-gw-" });
  const file = `${dir}/plugwire.toml`;
  await Deno.writeTextFile(file, `listen = "127.0.0.1:0"\n${toml}`);
  const logs: string[] = [];
  const gateway = await startGateway({
    config: file,
    env: { ECHO, KEY, DIR: dir, ...env },
    handleSignals: false,
    log: (l) => logs.push(l),
  });
  return {
    gateway,
    logs,
    dir,
    async [Symbol.asyncDispose]() {
      await gateway.stop();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

async function call(
  gateway: Gateway,
  path: string,
  init: RequestInit = {},
): Promise<{ status: number; headers: Headers; body: unknown }> {
  const response = await fetch(`${gateway.url}${path}`, init);
  const text = await response.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON
  }
  return { status: response.status, headers: response.headers, body };
}

const bearer = (key: string) => ({ authorization: `Bearer ${key}` });

const ECHO_PLUGIN = `[plugins.echo]\nmodule = "\${ECHO}"\nparams = { greeting = "hi" }\n`;

Deno.test("bug 1: real statuses: 401 + WWW-Authenticate, 403, the handler's status, 500 as JSON", async () => {
  await using s = await gatewayWith(`[auth]\nkeys = ["\${KEY}"]\n${ECHO_PLUGIN}`);
  const none = await call(s.gateway, "/echo");
  assert.equal(none.status, 401);
  assert.match(none.headers.get("www-authenticate") ?? "", /^Bearer/);
  assert.deepEqual(none.body, { code: "unauthenticated", message: "an API key is required" });
  const wrong = await call(s.gateway, "/echo", { headers: bearer("nope") });
  assert.equal(wrong.status, 403);
  assert.equal((wrong.body as { code: string }).code, "permission_denied");
  const teapot = await call(s.gateway, "/echo/status", { headers: bearer(KEY) });
  assert.deepEqual([teapot.status, teapot.body], [418, { teapot: true }]);
  const thrown = await call(s.gateway, "/echo/throw", { headers: bearer(KEY) });
  assert.equal(thrown.status, 500);
  assert.equal(thrown.headers.get("content-type"), "application/json");
  assert.deepEqual(thrown.body, { code: "internal", message: "echo failed to handle the request" });
  const unknown = await call(s.gateway, "/nothing-here", { headers: bearer(KEY) });
  assert.equal(unknown.status, 404);
  assert.equal((unknown.body as { code: string }).code, "not_found");
});

Deno.test("bug 3: the body cannot smuggle a key or overwrite transport data: typed context", async () => {
  await using s = await gatewayWith(`[auth]\nkeys = ["\${KEY}"]\n${ECHO_PLUGIN}`);
  const smuggled = await call(s.gateway, "/echo/x?request_headers=1", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ request_headers: { Authorization: `Bearer ${KEY}` }, apikey: KEY }),
  });
  assert.equal(smuggled.status, 401);
  const ok = await call(s.gateway, "/echo/a/b?request=1&params=2", {
    method: "POST",
    headers: { ...bearer(KEY), "content-type": "application/json" },
    body: JSON.stringify({ request: 1, params: "body", log: null }),
  });
  assert.equal(ok.status, 200);
  const echoed = ok.body as Record<string, unknown>;
  assert.equal(echoed.id, "echo");
  assert.equal(echoed.method, "POST");
  assert.equal(echoed.path, "/a/b");
  assert.deepEqual(echoed.query, { request: "1", params: "2" });
  assert.deepEqual(echoed.body, { request: 1, params: "body", log: null });
  assert.deepEqual(echoed.params, { greeting: "hi" });
  assert.equal(echoed.authorization, `Bearer ${KEY}`);
  const form = await call(s.gateway, "/echo", {
    method: "POST",
    headers: { ...bearer(KEY), "content-type": "application/x-www-form-urlencoded" },
    body: "a=1&a=2&b=x",
  });
  assert.deepEqual((form.body as { body: unknown }).body, { a: ["1", "2"], b: "x" });
  const badJson = await call(s.gateway, "/echo", {
    method: "POST",
    headers: { ...bearer(KEY), "content-type": "application/json" },
    body: "{not json",
  });
  assert.equal(badJson.status, 400);
  assert.equal((badJson.body as { code: string }).code, "invalid_argument");
});

Deno.test("bug 4: a configured key header is matched case-insensitively and allowed in CORS preflight", async () => {
  await using s = await gatewayWith(
    `[auth]\nkeys = ["\${KEY}"]\nheader = "X-Custom-Auth"\n` +
      `[cors]\nenabled = true\norigins = ["http://localhost:5173"]\n${ECHO_PLUGIN}`,
  );
  for (const name of ["X-Custom-Auth", "x-custom-auth", "X-CUSTOM-AUTH"]) {
    const r = await call(s.gateway, "/echo", { headers: { [name]: KEY } });
    assert.equal(r.status, 200, name);
  }
  const preflight = await fetch(`${s.gateway.url}/echo/anything`, {
    method: "OPTIONS",
    headers: {
      origin: "http://localhost:5173",
      "access-control-request-method": "POST",
      "access-control-request-headers": "x-custom-auth, content-type",
    },
  });
  await preflight.body?.cancel();
  assert.equal(preflight.status, 204);
  assert.equal(preflight.headers.get("access-control-allow-origin"), "http://localhost:5173");
  const allowed = (preflight.headers.get("access-control-allow-headers") ?? "").toLowerCase();
  assert.match(allowed, /x-custom-auth/);
  assert.match(allowed, /authorization/);
  // Credentials only when configured (and never with "*").
  assert.equal(preflight.headers.get("access-control-allow-credentials"), null);
});

Deno.test("bug 2: CORS off means off; on, only listed origins are echoed; preflight on control routes too", async () => {
  {
    await using s = await gatewayWith(
      `[cors]\nenabled = false\norigins = ["http://localhost:5173"]\n${ECHO_PLUGIN}public = true\n`,
    );
    const r = await fetch(`${s.gateway.url}/echo`, {
      headers: { origin: "http://localhost:5173" },
    });
    await r.body?.cancel();
    assert.equal(r.headers.get("access-control-allow-origin"), null);
  }
  await using s = await gatewayWith(
    `[cors]\nenabled = true\norigins = ["http://localhost:5173"]\ncredentials = true\n` +
      `${ECHO_PLUGIN}public = true\n`,
  );
  const listed = await fetch(`${s.gateway.url}/echo`, {
    headers: { origin: "http://localhost:5173" },
  });
  await listed.body?.cancel();
  assert.equal(listed.headers.get("access-control-allow-origin"), "http://localhost:5173");
  assert.equal(listed.headers.get("access-control-allow-credentials"), "true");
  const other = await fetch(`${s.gateway.url}/echo`, { headers: { origin: "http://h" } });
  await other.body?.cancel();
  assert.equal(other.headers.get("access-control-allow-origin"), null);
  const control = await fetch(`${s.gateway.url}/-/plugins`, {
    method: "OPTIONS",
    headers: { origin: "http://localhost:5173", "access-control-request-method": "GET" },
  });
  await control.body?.cancel();
  assert.equal(control.status, 204);
  assert.equal(control.headers.get("access-control-allow-origin"), "http://localhost:5173");
});

Deno.test("bug 5: keys never appear in logs, status or errors (compared as digests in constant time)", async () => {
  await using s = await gatewayWith(
    `[auth]\nkeys = ["\${KEY}"]\n${ECHO_PLUGIN}keys = ["plugin-only-key-xyz"]\n`,
  );
  await call(s.gateway, "/echo", { headers: bearer("wrong-key-abc") });
  await call(s.gateway, "/echo/throw", { headers: bearer(KEY) });
  const plugins = await call(s.gateway, "/-/plugins", { headers: bearer(KEY) });
  const metrics = await call(s.gateway, "/-/metrics", { headers: bearer(KEY) });
  const everything = JSON.stringify([
    s.logs,
    plugins.body,
    metrics.body,
    s.gateway.config.plugins
      .map((p) => p.id),
  ]);
  for (const secret of [KEY, "plugin-only-key-xyz", "wrong-key-abc"]) {
    assert.ok(!everything.includes(secret), `${secret} leaked`);
  }
  // Per-plugin keys add to the global ones by default.
  assert.equal(
    (await call(s.gateway, "/echo", { headers: bearer("plugin-only-key-xyz") })).status,
    200,
  );
  assert.equal((await call(s.gateway, "/echo", { headers: bearer(KEY) })).status, 200);
});

Deno.test("bug 6: a global key protects every plugin unless it is public; replace mode drops the global key", async () => {
  await using s = await gatewayWith(
    `[auth]\nkeys = ["\${KEY}"]\n` +
      `[plugins.closed]\nmodule = "\${ECHO}"\n` +
      `[plugins.open]\nmodule = "\${ECHO}"\npublic = true\n` +
      `[plugins.own]\nmodule = "\${ECHO}"\nkeys = ["own-key"]\nkeys_mode = "replace"\n`,
  );
  assert.equal((await call(s.gateway, "/closed")).status, 401);
  assert.equal((await call(s.gateway, "/open")).status, 200);
  assert.equal((await call(s.gateway, "/own", { headers: bearer(KEY) })).status, 403);
  assert.equal((await call(s.gateway, "/own", { headers: bearer("own-key") })).status, 200);
  // The query string carries no key unless configured.
  assert.equal((await call(s.gateway, `/closed?apikey=${KEY}`)).status, 401);
  // Control routes need the global key; health probes do not.
  assert.equal((await call(s.gateway, "/-/plugins")).status, 401);
  assert.equal((await call(s.gateway, "/-/healthz")).status, 200);
});

Deno.test("bugs 7, 8: sync and async handlers; every JSON value is JSON, not a repr", async () => {
  await using s = await gatewayWith(`${ECHO_PLUGIN}public = true\n`);
  const list = await call(s.gateway, "/echo/list");
  assert.deepEqual([list.status, list.body], [200, [1, "two", { three: 3 }]]);
  assert.equal(list.headers.get("content-type"), "application/json");
  assert.deepEqual((await call(s.gateway, "/echo/scalar")).body, 42);
  assert.deepEqual((await call(s.gateway, "/echo/string")).body, "plain");
  const raw = await call(s.gateway, "/echo/response");
  assert.deepEqual([raw.status, raw.body, raw.headers.get("x-raw")], [202, "raw", "1"]);
  assert.equal((await call(s.gateway, "/echo/nothing")).status, 204);
  const held = await call(s.gateway, "/echo/hold?ms=10");
  assert.equal(typeof (held.body as { held: string }).held, "string");
});

Deno.test("bug 12: a body over the limit is answered 413, not dropped", async () => {
  await using s = await gatewayWith(`[limits]\nbody_bytes = 1024\n${ECHO_PLUGIN}public = true\n`);
  const big = await call(s.gateway, "/echo", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ data: "x".repeat(2000) }),
  });
  assert.equal(big.status, 413);
  assert.equal((big.body as { code: string }).code, "resource_exhausted");
  // Chunked (no Content-Length) is counted too.
  const stream = new ReadableStream({
    start(c) {
      c.enqueue(new TextEncoder().encode(`{"data":"${"y".repeat(3000)}"}`));
      c.close();
    },
  });
  const chunked = await call(s.gateway, "/echo", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: stream,
  });
  assert.equal(chunked.status, 413);
  const small = await call(s.gateway, "/echo", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ data: "x" }),
  });
  assert.equal(small.status, 200);
});

Deno.test("bug 13: X-Forwarded-For is believed only from a trusted proxy", async () => {
  {
    await using s = await gatewayWith(`${ECHO_PLUGIN}public = true\n`);
    const r = await call(s.gateway, "/echo", { headers: { "x-forwarded-for": "203.0.113.9" } });
    assert.equal((r.body as { clientAddress: string }).clientAddress, "127.0.0.1");
  }
  await using s = await gatewayWith(
    `trusted_proxies = ["127.0.0.1"]\n${ECHO_PLUGIN}public = true\n`,
  );
  const r = await call(s.gateway, "/echo", {
    headers: { "x-forwarded-for": "198.51.100.7, 203.0.113.9" },
  });
  assert.equal((r.body as { clientAddress: string }).clientAddress, "203.0.113.9");
});

Deno.test("limits: the deadline aborts a slow handler with 504; a full plugin answers 503 + Retry-After", async () => {
  await using s = await gatewayWith(
    `[limits]\ntimeout_ms = 60000\n${ECHO_PLUGIN}public = true\nconcurrency = 1\n`,
  );
  const slow = await call(s.gateway, "/echo/slow", { headers: { "connect-timeout-ms": "100" } });
  assert.equal(slow.status, 504);
  assert.equal((slow.body as { code: string }).code, "deadline_exceeded");
  const holding = call(s.gateway, `/echo/hold?until=${s.dir}/release`);
  await eventually("the first request in flight", () => s.gateway.status()[0].inFlight === 1);
  const refused = await call(s.gateway, "/echo");
  assert.equal(refused.status, 503);
  assert.equal(refused.headers.get("retry-after"), "1");
  await Deno.writeTextFile(`${s.dir}/release`, "");
  assert.equal((await holding).status, 200);
  assert.equal((await call(s.gateway, "/echo")).status, 200);
});

Deno.test("bug 9: reload swaps the live instance, drains and terminates the old; a failed reload keeps the old", async () => {
  await using s = await gatewayWith(
    `[auth]\nkeys = ["\${KEY}"]\n[plugins.echo]\nmodule = "\${ECHO}"\n` +
      `params = { fail_init_file = "\${DIR}/fail", terminated_file = "\${DIR}/terminated" }\n`,
  );
  const headers = bearer(KEY);
  const instanceOf = async () =>
    ((await call(s.gateway, "/echo", { headers })).body as { instance: string }).instance;
  const before = await instanceOf();
  const inFlight = call(s.gateway, `/echo/hold?until=${s.dir}/release`, { headers });
  await eventually("the request in flight", () => s.gateway.status()[0].inFlight === 1);
  const reload = call(s.gateway, "/-/plugins/echo/reload", { method: "POST", headers });
  // New requests go to the new instance at once; the old one waits for its request.
  await eventually("the switch", async () => (await instanceOf()) !== before);
  const after = await instanceOf();
  assert.equal(await Deno.stat(`${s.dir}/terminated`).catch(() => null), null);
  await Deno.writeTextFile(`${s.dir}/release`, "");
  assert.deepEqual((await inFlight).body, { held: before });
  assert.equal((await reload).status, 200);
  assert.equal(await Deno.readTextFile(`${s.dir}/terminated`), `${before}\n`);

  await Deno.writeTextFile(`${s.dir}/fail`, "");
  const refused = await call(s.gateway, "/-/plugins/echo/reload", { method: "POST", headers });
  assert.equal(refused.status, 400);
  assert.match((refused.body as { message: string }).message, /old instance keeps serving/);
  assert.equal(await instanceOf(), after);
  const status = s.gateway.status()[0];
  assert.equal(status.state, "ready");
  assert.match(status.lastError ?? "", /initialize refused/);
  assert.equal(status.reloads, 1);

  await Deno.remove(`${s.dir}/fail`);
  const all = await call(s.gateway, "/-/reload", { method: "POST", headers });
  assert.equal(all.status, 200);
  assert.notEqual(await instanceOf(), after);
  assert.equal(await Deno.readTextFile(`${s.dir}/terminated`), `${before}\n${after}\n`);
});

Deno.test("auth: the query string carries a key only when query_param is configured", async () => {
  await using s = await gatewayWith(
    `[auth]\nkeys = ["\${KEY}"]\nquery_param = "apikey"\n${ECHO_PLUGIN}`,
  );
  assert.equal((await call(s.gateway, `/echo?apikey=${KEY}`)).status, 200);
  assert.equal((await call(s.gateway, `/echo?apikey=wrong`)).status, 403);
  assert.equal((await call(s.gateway, `/echo?key=${KEY}`)).status, 401);
});

Deno.test("reload: POST /-/reload adds and removes plugins; watch = true reloads on a file change", async () => {
  await using s = await gatewayWith(`watch = true\n${ECHO_PLUGIN}public = true\n`);
  const file = `${s.dir}/plugwire.toml`;
  const text = await Deno.readTextFile(file);
  assert.equal((await call(s.gateway, "/second")).status, 404);
  // An invalid file is refused and changes nothing.
  await Deno.writeTextFile(file, text + `[plugins.second]\nmodule = 7\n`);
  await eventually("the refusal in the log", () => s.logs.some((l) => /reload refused/.test(l)));
  assert.ok(s.logs.some((l) => /line \d+: plugins\.second\.module/.test(l)));
  assert.deepEqual(s.gateway.status().map((p) => p.id), ["echo"]);
  // A valid one: the watcher reloads it, and the new plugin serves.
  await Deno.writeTextFile(file, text + `[plugins.second]\nmodule = "\${ECHO}"\npublic = true\n`);
  await eventually("the second plugin", () => s.gateway.status().some((p) => p.id === "second"));
  await eventually(
    "the second plugin to be ready",
    () => s.gateway.status().find((p) => p.id === "second")?.state === "ready",
  );
  assert.equal((await call(s.gateway, "/second")).status, 200);
  // Removed from the file and reloaded through the control route: gone.
  await Deno.writeTextFile(
    file,
    text.replace("watch = true", "watch = false") +
      `[plugins.second]\nmodule = "\${ECHO}"\npublic = true\n`,
  );
  await new Promise((r) => setTimeout(r, 400)); // the watcher's own reload settles
  await Deno.writeTextFile(
    file,
    text.replace("watch = true", "watch = false").replace(
      "[plugins.echo]",
      "[plugins.third]",
    ),
  );
  const reload = await call(s.gateway, "/-/reload", { method: "POST" });
  assert.deepEqual(reload, {
    status: 200,
    headers: reload.headers,
    body: { ok: true, failed: {} },
  });
  assert.deepEqual(s.gateway.status().map((p) => p.id).sort(), ["third"]);
  assert.equal((await call(s.gateway, "/echo")).status, 404);
  assert.equal((await call(s.gateway, "/third/list")).status, 200);
});

const hasOpenssl = (() => {
  try {
    return new Deno.Command("openssl", { args: ["version"], stdout: "null" }).outputSync().success;
  } catch {
    return false;
  }
})();

Deno.test({
  name: "TLS: serves HTTPS from cert and key files (and plain HTTP gets nothing)",
  async fn() {
    assert.ok(hasOpenssl, "openssl must be on PATH to make the test certificate");
    const dir = await Deno.makeTempDir({ prefix: "plugwire-gw-tls-" });
    try {
      const made = await new Deno.Command("openssl", {
        args: [
          "req",
          "-x509",
          "-newkey",
          "ec",
          "-pkeyopt",
          "ec_paramgen_curve:P-256",
          "-nodes",
          "-keyout",
          `${dir}/key.pem`,
          "-out",
          `${dir}/cert.pem`,
          "-days",
          "1",
          "-subj",
          "/CN=localhost",
          "-addext",
          "subjectAltName=DNS:localhost,IP:127.0.0.1",
          "-addext",
          "basicConstraints=critical,CA:FALSE", // rustls refuses a CA certificate as a leaf
        ],
        stdout: "null",
        stderr: "piped",
      }).output();
      assert.ok(made.success, new TextDecoder().decode(made.stderr));
      await using s = await gatewayWith(
        `[tls]\ncert = "${dir}/cert.pem"\nkey = "${dir}/key.pem"\n${ECHO_PLUGIN}public = true\n`,
      );
      assert.match(s.gateway.url, /^https:\/\/127\.0\.0\.1:\d+$/);
      const client = Deno.createHttpClient({
        caCerts: [await Deno.readTextFile(`${dir}/cert.pem`)],
      });
      try {
        const response = await fetch(`${s.gateway.url}/echo/list`, { client });
        assert.deepEqual(await response.json(), [1, "two", { three: 3 }]);
      } finally {
        client.close();
      }
      await assert.rejects(fetch(s.gateway.url.replace("https:", "http:") + "/echo/list"));
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

testNoLeftovers();
