/**
 * plugwire: subprocess plugins over gRPC for TypeScript, wire compatible with HashiCorp's
 * go-plugin v1.8. A host starts a plugin as a child process, the plugin prints one handshake
 * line, and the two talk gRPC over a unix socket or loopback TCP, optionally with AutoMTLS.
 *
 * - Plugin authors: `@plugwire/plugwire/plugin` ({@link serve}, {@link grpcPlugin}, `logger`).
 * - Host authors: `@plugwire/plugwire/host` ({@link startPlugin}, {@link PluginClient}).
 *
 * @example
 * ```ts
 * import { PluginError, serve, startPlugin } from "@plugwire/plugwire";
 * import assert from "node:assert/strict";
 *
 * // One import for both sides; importing it changes nothing in this process.
 * assert.equal(typeof serve, "function");
 * assert.equal(typeof startPlugin, "function");
 * assert.equal(new PluginError("closed", "gone").code, "closed");
 * ```
 *
 * @module
 */

export * from "./host.ts";
export {
  type GrpcPlugin,
  grpcPlugin,
  type Logger,
  logger,
  type PluginLoggerOptions,
  type PluginSet,
  serve,
  type ServeOptions,
  type ServiceImplOptions,
  type ServingPlugin,
} from "./plugin.ts";
