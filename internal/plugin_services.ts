/**
 * The services on a plugin's gRPC server, registered in go-plugin's order (docs/protocol.md §6):
 * health, reflection, the plugins' own services, broker, controller, stdio. One function, so
 * that `serve()` (`server.ts`) and the in-process plugin of `testing.ts` (`in_process.ts`)
 * cannot drift apart; each brings the protocol services whose behaviour differs (how Shutdown
 * stops, whether output is captured).
 *
 * @module
 */

import type * as grpc from "@grpc/grpc-js";
import { GRPCBroker } from "../gen/core/plugin/grpc_broker_pb.ts";
import { Health } from "../gen/core/grpc/health/v1/health_pb.ts";
import type { GrpcBroker } from "./broker.ts";
import { PluginError } from "./errors.ts";
import type { ServiceImpl } from "./grpc.ts";
import { registrarFor, type ServiceRegistrar } from "./grpc_server.ts";
import { HealthService } from "./health.ts";
import type { Interceptor } from "./interceptors.ts";
import { ReflectionRegistry } from "./reflection.ts";
import type { PluginSet } from "./serve_options.ts";

/** The protocol's services whose behaviour depends on who serves. */
export interface ProtocolServices {
  /** GRPCBroker: the plugin side of the broker stream. */
  broker: Partial<ServiceImpl<typeof GRPCBroker, GrpcBroker>>;
  /** Adds GRPCController (serve() answers Shutdown on raw grpc-js, to see its reply delivered). */
  addController(registrar: ServiceRegistrar<GrpcBroker>): void;
  /**
   * Adds GRPCStdio, when the plugin's output is captured (none in process); on raw grpc-js
   * like the controller, to see the streams end.
   */
  addStdio?(registrar: ServiceRegistrar<GrpcBroker>): void;
}

/** What {@link registerPluginServices} made: the health service to flip, the names served. */
export interface RegisteredServices {
  /** The health service (set NOT_SERVING when stopping). */
  readonly health: HealthService;
  /** The reflection registry of every service added. */
  readonly reflection: ReflectionRegistry;
}

/**
 * Adds health, reflection, `plugins` (through `interceptors`), broker, controller and stdio to
 * `server`, in go-plugin's order.
 */
export function registerPluginServices(
  server: grpc.Server,
  broker: GrpcBroker,
  plugins: PluginSet,
  options: ProtocolServices & {
    interceptors?: Interceptor[];
    /**
     * Report a plugin whose registration throws as a `misconfigured` PluginError naming it
     * (serve(): its host shows the line on stderr); otherwise the error goes on as it is
     * (testing.ts: the test catches the TypeError of a strict implementation).
     */
    nameFailures?: boolean;
  },
): RegisteredServices {
  const reflection = new ReflectionRegistry();
  const onAdd = (name: string, descriptor?: Parameters<ReflectionRegistry["add"]>[1]) =>
    reflection.add(name, descriptor);
  const registrar = registrarFor(server, broker, onAdd);
  const health = new HealthService();

  registrar.add(Health, health.impl());
  reflection.register(registrar);
  // The caller's interceptors wrap the plugins' own services only, never the protocol's.
  const pluginRegistrar = options.interceptors?.length
    ? registrarFor(server, broker, onAdd, { interceptors: options.interceptors })
    : registrar;
  for (const [name, plugin] of Object.entries(plugins)) {
    try {
      plugin.register(pluginRegistrar);
    } catch (err) {
      if (err instanceof PluginError || !options.nameFailures) throw err;
      const reason = err instanceof Error ? err.message : String(err);
      throw new PluginError("misconfigured", `plugin ${JSON.stringify(name)}: ${reason}`, {
        cause: err,
      });
    }
  }
  registrar.add(GRPCBroker, options.broker);
  options.addController(registrar);
  options.addStdio?.(registrar);
  return { health, reflection };
}
