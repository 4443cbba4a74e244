/**
 * The Connect protocol's unary error model, used for every error the gateway answers: a JSON
 * body `{code, message, details?}` with a snake_case code and the HTTP status from Connect's
 * table (connectrpc.com/docs/protocol, "Error Codes").
 *
 * @module
 */

import { DynamicError } from "../dynamic.ts";
import { RpcError, Status, type StatusCode } from "../errors.ts";

/** Connect's code names by gRPC status number. */
const CODE_NAMES: Record<number, string> = {
  [Status.CANCELLED]: "canceled",
  [Status.UNKNOWN]: "unknown",
  [Status.INVALID_ARGUMENT]: "invalid_argument",
  [Status.DEADLINE_EXCEEDED]: "deadline_exceeded",
  [Status.NOT_FOUND]: "not_found",
  [Status.ALREADY_EXISTS]: "already_exists",
  [Status.PERMISSION_DENIED]: "permission_denied",
  [Status.RESOURCE_EXHAUSTED]: "resource_exhausted",
  [Status.FAILED_PRECONDITION]: "failed_precondition",
  [Status.ABORTED]: "aborted",
  [Status.OUT_OF_RANGE]: "out_of_range",
  [Status.UNIMPLEMENTED]: "unimplemented",
  [Status.INTERNAL]: "internal",
  [Status.UNAVAILABLE]: "unavailable",
  [Status.DATA_LOSS]: "data_loss",
  [Status.UNAUTHENTICATED]: "unauthenticated",
};

/** Connect's HTTP status by gRPC status number. */
const HTTP_STATUS: Record<number, number> = {
  [Status.CANCELLED]: 499,
  [Status.UNKNOWN]: 500,
  [Status.INVALID_ARGUMENT]: 400,
  [Status.DEADLINE_EXCEEDED]: 504,
  [Status.NOT_FOUND]: 404,
  [Status.ALREADY_EXISTS]: 409,
  [Status.PERMISSION_DENIED]: 403,
  [Status.RESOURCE_EXHAUSTED]: 429,
  [Status.FAILED_PRECONDITION]: 400,
  [Status.ABORTED]: 409,
  [Status.OUT_OF_RANGE]: 400,
  [Status.UNIMPLEMENTED]: 501,
  [Status.INTERNAL]: 500,
  [Status.UNAVAILABLE]: 503,
  [Status.DATA_LOSS]: 500,
  [Status.UNAUTHENTICATED]: 401,
};

/** The Connect code name of a gRPC status (`unknown` for anything unexpected). */
export function connectCode(status: StatusCode | number): string {
  return CODE_NAMES[status] ?? "unknown";
}

/** The HTTP status Connect gives a gRPC status. */
export function httpStatusOf(status: StatusCode | number): number {
  return HTTP_STATUS[status] ?? 500;
}

/** The JSON body of a Connect error. */
export interface ConnectErrorBody {
  code: string;
  message: string;
  details?: unknown[];
}

/** A Connect error response; `headers` adds e.g. `WWW-Authenticate` or `Retry-After`. */
export function connectErrorResponse(
  status: StatusCode | number,
  message: string,
  headers: Record<string, string> = {},
  details?: unknown[],
): Response {
  const body: ConnectErrorBody = { code: connectCode(status), message };
  if (details?.length) body.details = details;
  return new Response(JSON.stringify(body), {
    status: httpStatusOf(status),
    headers: { "content-type": "application/json", ...headers },
  });
}

/** The gRPC status and message a failure is answered with. */
function statusOf(err: unknown): { status: number; message: string } {
  if (err instanceof RpcError) return { status: err.code, message: err.details };
  if (err instanceof DynamicError) return { status: err.status, message: err.message };
  if (err && typeof err === "object" && "status" in err && typeof err.status === "number") {
    return { status: err.status, message: (err as unknown as Error).message };
  }
  return { status: Status.INTERNAL, message: err instanceof Error ? err.message : String(err) };
}

/** The Connect error body of a failure (for the last line of an NDJSON stream). */
export function errorBodyOf(err: unknown): ConnectErrorBody {
  const { status, message } = statusOf(err);
  return { code: connectCode(status), message };
}

/** The Connect error response of a failure. */
export function errorResponseOf(err: unknown): Response {
  const { status, message } = statusOf(err);
  return connectErrorResponse(status, message);
}

/** True when the failure is answered with a 5xx (what a plugin's `errors` count counts). */
export function isServerError(err: unknown): boolean {
  return httpStatusOf(statusOf(err).status) >= 500;
}
