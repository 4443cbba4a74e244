/**
 * Reading the configuration file: the text from disk, `${ENV}` from the process environment.
 *
 * @module
 */

import { resolve } from "node:path";
import { getEnvAll, readFile } from "../runtime.ts";
import { type GatewayConfig, GatewayConfigError, parseGatewayConfig } from "./config.ts";

/** Reads and validates a configuration file; relative paths in it are relative to it. */
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
