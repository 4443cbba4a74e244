"""A minimal pyvider-rpcplugin 0.5.5 plugin for the interop suite (plugwire check/inspect).

It serves what pyvider-rpcplugin itself adds to every plugin (health "plugin", GRPCBroker,
GRPCController, GRPCStdio) and no application service. Cookie BASIC_PLUGIN=hello, protocol
version 1, like go-plugin's examples. PYVIDER_TRANSPORT=tcp picks TCP (default unix).
"""

import asyncio
import os

from pyvider.rpcplugin import plugin_protocol, plugin_server


async def main() -> None:
    transport = os.environ.get("PYVIDER_TRANSPORT", "unix")
    protocol = plugin_protocol()
    protocol.supported_protocol_versions = [1]
    server = plugin_server(
        protocol=protocol,
        handler=object(),
        transport=transport,
        config={
            "PLUGIN_MAGIC_COOKIE_KEY": "BASIC_PLUGIN",
            "PLUGIN_MAGIC_COOKIE_VALUE": "hello",
            "PLUGIN_PROTOCOL_VERSIONS": [1],
        },
    )
    await server.serve()


if __name__ == "__main__":
    asyncio.run(main())
