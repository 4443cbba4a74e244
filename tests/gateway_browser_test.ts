/**
 * The status page in a real headless browser (Debian's chromium driven by playwright-core):
 * it loads, lists the example gateway's plugins, shows the KV plugin going down after a crash
 * and coming back after its restart, and logs no console error. `.ci/run` installs chromium;
 * without /usr/bin/chromium this test fails rather than skips.
 *
 * A screenshot goes to `.cache/gateway-status.png` (git-ignored).
 */

import assert from "node:assert/strict";
import { chromium } from "playwright-core";
import { startGateway } from "../gateway.ts";
import { TEST_MARK, testNoLeftovers } from "./_util.ts";

const CHROMIUM = "/usr/bin/chromium";
const CONFIG = new URL("../examples/gateway/plugwire.toml", import.meta.url).pathname;
const SCREENSHOT = new URL("../.cache/gateway-status.png", import.meta.url).pathname;
const KEY = "browser-test-key";

Deno.test("status page: lists the example plugins and shows a crashed plugin coming back", async () => {
  assert.ok(
    await Deno.stat(CHROMIUM).then(() => true, () => false),
    `${CHROMIUM} is missing: apt-get install -y chromium (as .ci/run does)`,
  );
  await using gateway = await startGateway({
    config: CONFIG,
    port: 0,
    env: { ...Deno.env.toObject(), PLUGWIRE_API_KEY: KEY },
    handleSignals: false,
    log: () => {},
    pluginEnv: { PLUGWIRE_TEST_MARK: TEST_MARK },
    // Slow enough that the page (polling every second) sees the plugin down.
    restartBackoffMs: 2500,
  });
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--no-first-run",
    ],
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1400, height: 700 } });
    const problems: string[] = [];
    page.on("console", (message) => {
      if (message.type() === "error") problems.push(message.text());
    });
    page.on("pageerror", (error) => problems.push(error.message));
    // The key a user would type into the page's form, kept in the tab's sessionStorage.
    await page.addInitScript((key: string) => sessionStorage.setItem("plugwire-key", key), KEY);
    await page.goto(gateway.url);
    assert.equal(await page.title(), "plugwire gateway");

    const state = (id: string) => page.locator(`tr[data-plugin="${id}"] .state`);
    await state("kv").filter({ hasText: "ready" }).waitFor({ timeout: 30_000 });
    await state("hello").filter({ hasText: "ready" }).waitFor();
    const ids = await page.locator("tbody tr").evaluateAll((rows) =>
      rows.map((row) => row.getAttribute("data-plugin"))
    );
    assert.deepEqual(ids, ["hello", "kv", "files", "sha256"]);
    assert.equal(await page.locator('tr[data-plugin="kv"] .kind').textContent(), "grpc");
    assert.equal(await page.locator('tr[data-plugin="kv"] .version').textContent(), "v1 (mTLS)");

    const kvPid = gateway.status().find((p) => p.id === "kv")!.pid!;
    assert.equal(await page.locator('tr[data-plugin="kv"] .pid').textContent(), String(kvPid));
    Deno.kill(kvPid, "SIGKILL"); // a crash
    await state("kv").filter({ hasText: "restarting" }).waitFor({ timeout: 10_000 });
    await page.locator('tr[data-plugin="kv"] .restarts').filter({ hasText: "1" }).waitFor({
      timeout: 30_000,
    });
    await state("kv").filter({ hasText: "ready" }).waitFor({ timeout: 10_000 });
    const newPid = gateway.status().find((p) => p.id === "kv")!.pid!;
    assert.notEqual(newPid, kvPid);
    await page.locator('tr[data-plugin="kv"] .pid').filter({ hasText: String(newPid) }).waitFor();
    assert.match(await page.locator('tr[data-plugin="kv"] .logs').textContent() ?? "", /exited/);

    await Deno.mkdir(new URL("../.cache/", import.meta.url), { recursive: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    assert.deepEqual(problems, []);
  } finally {
    await browser.close();
  }
});

testNoLeftovers();
