/**
 * Hipcheck's launch protocol as a {@link ProtocolFlavour}, as Hipcheck core 3.15 launches
 * plugins (`plugin/manager.rs`): no handshake line, magic cookie, version negotiation or
 * TLS. The host picks a loopback port, passes `--port P --log-level L`, and counts the plugin as
 * ready once a gRPC connection to the port succeeds (`readiness: "connect-retry"`, done by
 * `launcher.ts` with core's backoff). It fits beside go-plugin's and RPCPlugin's flavours
 * without touching them; its plugin side is `plugin_server.ts`, started by its own entry point
 * (`servePlugin`), so it is never detected from the environment.
 *
 * @module
 */

import type { ProtocolFlavour } from "../flavour.ts";

/** Hipcheck's launch protocol. */
export const hipcheckFlavour: ProtocolFlavour = {
  name: "hipcheck",
  readiness: "connect-retry",
  hostEnv: () => ({}),
  launchArgs: ({ port, logLevel }) => [
    ...(port === undefined ? [] : ["--port", String(port)]),
    ...(logLevel === undefined ? [] : ["--log-level", logLevel]),
  ],
  tlsRequired: false,
  // The plugin ends when its query stream is closed; the host then waits and signals.
  hasController: false,
  exitWithoutCommonVersion: false,
  detect: () => false,
  chooseNetwork: () => "tcp",
  encodeCert: () => "",
};
