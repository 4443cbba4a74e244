/**
 * Reading the configuration file: the text from disk, `${ENV}` from the process environment.
 *
 * @module
 */

import { resolve } from "node:path";
import { getEnvAll, readFile } from "../runtime.ts";
import { type GatewayConfig, GatewayConfigError, parseGatewayConfig } from "./config.ts";

/**
 * Reads and validates a configuration file; relative paths in it are relative to it.
 *
 * @param file The TOML file.
 * @param env What `${NAME}` reads. @default {the process's environment}
 * @returns The configuration.
 * @throws {GatewayConfigError} When the file cannot be read or is invalid.
 *
 * @example Reading a file
 * ```ts
 * import { loadGatewayConfig } from "@plugwire/plugwire/gateway";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/gw.toml`, `[plugins.hello]\nmodule = "hello.ts"\n`);
 * const config = await loadGatewayConfig(`${dir}/gw.toml`, {});
 * assert.equal(config.plugins[0].kind === "module" && config.plugins[0].module, `${dir}/hello.ts`);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function loadGatewayConfig(
  file: string,
  env: Record<string, string | undefined> | undefined = getEnvAll(),
): Promise<GatewayConfig> {
  const absolute = resolve(file);
  let text: string;
  try {
    text = new TextDecoder().decode(await readFile(absolute));
  } catch (err) {
    throw new GatewayConfigError(absolute, [{
      key: "(file)",
      line: 0,
      message: `cannot read it: ${(err as Error).message}`,
    }]);
  }
  return parseGatewayConfig(text, { file: absolute, env: env ?? getEnvAll() });
}
