/**
 * The standard gRPC health service, as grpc-go's `health.NewServer` serves it in a go-plugin
 * plugin (docs/protocol.md §6.1): go-plugin hosts `Check` the service named `plugin`.
 *
 * @module
 */

import {
  type Health,
  HealthCheckResponse_ServingStatus as ServingStatus,
} from "../gen/core/grpc/health/v1/health_pb.ts";
import { RpcError, Status } from "./errors.ts";
import type { ServiceImpl } from "./grpc.ts";

/** The service name go-plugin hosts check (`GRPCServiceName`). */
export const PLUGIN_HEALTH_SERVICE = "plugin";

/** A health service whose statuses can change while it runs (e.g. NOT_SERVING on shutdown). */
export class HealthService {
  readonly #statuses = new Map<string, ServingStatus>([
    ["", ServingStatus.SERVING],
    [PLUGIN_HEALTH_SERVICE, ServingStatus.SERVING],
  ]);
  readonly #watchers = new Set<() => void>();

  /** Sets every known service to a status and wakes the watchers. */
  setAll(status: ServingStatus): void {
    for (const name of this.#statuses.keys()) this.#statuses.set(name, status);
    for (const wake of this.#watchers) wake();
  }

  /** The implementation to register. */
  impl(): ServiceImpl<typeof Health> {
    const statuses = this.#statuses;
    const watchers = this.#watchers;
    return {
      check({ service }) {
        const status = statuses.get(service);
        if (status === undefined) throw new RpcError(Status.NOT_FOUND, "unknown service");
        return { status };
      },
      list() {
        return {
          statuses: Object.fromEntries([...statuses].map(([k, status]) => [k, { status }])),
        };
      },
      async *watch({ service }, ctx) {
        let last: ServingStatus | undefined;
        while (!ctx.signal.aborted) {
          const status = statuses.get(service) ?? ServingStatus.SERVICE_UNKNOWN;
          if (status !== last) yield { status };
          last = status;
          await new Promise<void>((resolve) => {
            const wake = () => {
              watchers.delete(wake);
              ctx.signal.removeEventListener("abort", wake);
              resolve();
            };
            watchers.add(wake);
            ctx.signal.addEventListener("abort", wake);
          });
        }
      },
    };
  }
}
