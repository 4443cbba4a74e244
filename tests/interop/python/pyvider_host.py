"""A pyvider-rpcplugin 0.5.5 host (a go-plugin-style host on grpcio) for the interop tests.

It starts the plugin command given as JSON in argv[1] with the extra environment in argv[2]
(JSON), the way pyvider's host does: it sets only the magic cookie (named by its own
PLUGIN_MAGIC_COOKIE_KEY / PLUGIN_MAGIC_COOKIE_VALUE), never PLUGIN_PROTOCOL_VERSIONS or a port
range. It calls the plugin's KV Put and Get (messages encoded by hand: no generated stubs), then
stops it as pyvider does: Shutdown, 50 ms, then SIGTERM (terminate_gracefully). It prints one
JSON line: the Get result, the plugin's exit status, and the stderr lines pyvider relayed.
"""

import asyncio
import json
import logging
import sys

from pyvider.rpcplugin import plugin_client


def field(number: int, data: bytes) -> bytes:
    assert len(data) < 128
    return bytes([(number << 3) | 2, len(data)]) + data


async def main() -> None:
    command = json.loads(sys.argv[1])
    env = json.loads(sys.argv[2])
    client = plugin_client(command=command, config={"env": env})
    await client.start()
    process = client._process.process  # the Popen, to read the exit status after close()
    identity = lambda b: b  # noqa: E731
    put = client.grpc_channel.unary_unary(
        "/proto.KV/Put", request_serializer=identity, response_deserializer=identity
    )
    get = client.grpc_channel.unary_unary(
        "/proto.KV/Get", request_serializer=identity, response_deserializer=identity
    )
    await put(field(1, b"key") + field(2, b"from pyvider"), timeout=20)
    reply = await get(field(1, b"key"), timeout=20)
    await client.shutdown_plugin()
    await client.close()
    print(json.dumps({"get": reply[2:].decode(), "pid": process.pid, "exit": process.returncode}))


logging.basicConfig(level=logging.WARNING)
asyncio.run(main())
