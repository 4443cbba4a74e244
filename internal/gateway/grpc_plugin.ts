/**
 * Subprocess plugins: any go-plugin plugin (plugwire, Go, Python), started with plugwire's own
 * host and called through its reflection service (internal/dynamic.ts), so the gateway needs
 * no `.proto` file.
 *
 * @module
 */

import { startPlugin } from "../client.ts";
import { type DynamicServices, loadServices } from "../dynamic.ts";
import type { PluginLogRecord } from "../logger.ts";
import type { GrpcPluginSection } from "./config.ts";
import type { Instance } from "./slot.ts";

/** A running subprocess plugin and its methods. */
export interface GrpcInstance extends Instance {
  readonly services: DynamicServices;
}

/** Starts the plugin, loads its services through reflection, and watches its process. */
export async function startGrpcPlugin(
  section: GrpcPluginSection,
  log: (line: string) => void,
  extraEnv: Record<string, string> = {},
): Promise<GrpcInstance> {
  const client = await startPlugin({
    cmd: section.cmd,
    handshake: section.handshake,
    // The gateway knows no service in advance: any version it accepts has an empty set.
    versionedPlugins: Object.fromEntries(section.versions.map((v) => [v, {}])),
    autoMtls: section.autoMtls,
    env: { ...section.env, ...extraEnv },
    cwd: section.cwd,
    name: section.id,
    stdin: "null",
    logger: (record) => log(formatRecord(record)),
    syncStdout: (line) => log(`[stdout] ${textOf(line)}`),
    syncStderr: (line) => log(`[stderr] ${textOf(line)}`),
  });
  let services: DynamicServices;
  try {
    services = await loadServices(client, { timeoutMs: 10_000 });
  } catch (err) {
    await client.kill();
    throw err;
  }
  const methods = services.list().filter((s) => !s.internal).flatMap((s) =>
    s.methods.map((m) => m.path)
  );
  let stopping = false;
  return {
    pid: client.pid,
    version: client.protocolVersion,
    tls: section.autoMtls,
    methods,
    services,
    died: client.exited.then((status) =>
      stopping
        ? "stopped"
        : `pid ${client.pid} exited (${
          status.signal ? `signal ${status.signal}` : `code ${status.code}`
        })`
    ),
    async stop() {
      stopping = true;
      await client.kill(); // Shutdown over gRPC, then SIGTERM, then SIGKILL
    },
  };
}

function formatRecord(record: PluginLogRecord): string {
  const fields = Object.entries(record.fields)
    .filter(([k]) => !k.startsWith("@"))
    .map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`)
    .join(" ");
  const module = record.module ? `${record.module}: ` : "";
  return `[${record.level}] ${module}${record.message}${fields ? ` ${fields}` : ""}`;
}

function textOf(data: unknown): string {
  return (typeof data === "string" ? data : new TextDecoder().decode(data as Uint8Array))
    .replace(/\n$/, "");
}
