#!/usr/bin/env python3
"""A python-plugin (pyplugin 0.1.0) host for plugwire's interop suite.

Launches a go-plugin style KV plugin, dispenses proto.KV, does Put then Get and prints JSON
lines on stdout (see tests/interop/README.md). Run it with the venv that peers.sh builds:

    $PYTHON tests/interop/python/pyhost_kv.py [--mtls|--no-mtls] [--key K] [--value V] \
        [--cookie KEY=VALUE] [--versions 1,2] [--stubs DIR] -- PLUGIN_ARGV...

The grpclib stubs (kv_pb2.py, kv_grpc.py) are generated from proto/kv/kv.proto by peers.sh into
tests/interop/.peers/pygen/kv; --stubs or $PYHOST_KV_STUBS overrides that directory.
"""
from __future__ import annotations

import argparse
import asyncio
import base64
import json
import logging
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any


def out(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj, sort_keys=True) + "\n")
    sys.stdout.flush()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mtls", dest="mtls", action="store_true", default=True,
                    help="AutoMTLS (the default, as in pyplugin)")
    ap.add_argument("--no-mtls", dest="mtls", action="store_false", help="plaintext")
    ap.add_argument("--key", default="hello")
    ap.add_argument("--value", default="from-pyhost")
    ap.add_argument("--cookie", default="BASIC_PLUGIN=hello", help="magic cookie KEY=VALUE")
    ap.add_argument("--versions", default="1", help="app protocol versions, e.g. 1,2")
    ap.add_argument("--stubs", default=os.environ.get("PYHOST_KV_STUBS")
                    or str(Path(__file__).resolve().parent.parent / ".peers" / "pygen" / "kv"))
    ap.add_argument("--start-timeout", type=float, default=30.0)
    ap.add_argument("argv", nargs=argparse.REMAINDER, help="plugin command (after --)")
    a = ap.parse_args()
    argv = a.argv[1:] if a.argv[:1] == ["--"] else a.argv
    if not argv:
        ap.error("missing plugin command after --")

    logging.basicConfig(stream=sys.stderr, level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("pyplugin").setLevel(logging.DEBUG)
    kill_log: list[str] = []

    class KillLog(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            msg = record.getMessage()
            if "Shutdown failed" in msg or "gracefully" in msg or "SIGTERM" in msg:
                kill_log.append(msg)

    logging.getLogger("pyplugin.client").addHandler(KillLog())
    sys.path.insert(0, a.stubs)
    try:
        import kv_grpc  # noqa: PLC0415  (generated at peer-install time)
        import kv_pb2  # noqa: PLC0415
        from grpclib.client import Channel  # noqa: PLC0415
        from pyplugin import Client, ClientConfig, HandshakeConfig, Plugin  # noqa: PLC0415
        from pyplugin.broker import GRPCBroker  # noqa: PLC0415
    except ImportError as e:
        out({"type": "error", "step": "import", "error": f"{e} (stubs dir {a.stubs})"})
        return 1

    key, _, value = a.cookie.partition("=")
    versions = [int(v) for v in a.versions.split(",") if v.strip()]

    class KVPlugin(Plugin):
        def servicers(self, broker: GRPCBroker) -> list:
            return []

        def stub(self, broker: GRPCBroker, channel: Channel) -> Any:
            return kv_grpc.KVStub(channel)

    plugins: Any = {"kv": KVPlugin()}
    if len(versions) > 1:
        plugins = {v: {"kv": KVPlugin()} for v in versions}

    async def run() -> int:
        step = "connect"
        client = Client(ClientConfig(
            handshake_config=HandshakeConfig(protocol_version=versions[0],
                                             magic_cookie_key=key, magic_cookie_value=value),
            plugins=plugins,
            cmd=argv,
            auto_mtls=a.mtls,
            start_timeout=a.start_timeout,
        ))
        try:
            await client.start()
            rc = client.reattach_config()
            out({"type": "connected", "negotiated_version": client.negotiated_version,
                 "network": rc.network if rc else None, "addr": rc.addr if rc else None,
                 "protocol": rc.protocol if rc else None,
                 "tls": bool(rc and rc.server_cert_pem)})
            kv = client.dispense("kv")
            step = "kv-put"
            await asyncio.wait_for(kv.Put(kv_pb2.PutRequest(key=a.key, value=a.value.encode())), 10)
            out({"type": "kv-put", "ok": True, "key": a.key})
            step = "kv-get"
            resp = await asyncio.wait_for(kv.Get(kv_pb2.GetRequest(key=a.key)), 10)
            out({"type": "kv-get", "ok": True, "key": a.key,
                 "value": resp.value.decode("utf-8", "replace"),
                 "value_b64": base64.b64encode(resp.value).decode()})
            return 0
        except Exception as e:  # noqa: BLE001
            out({"type": "error", "step": step, "error": f"{type(e).__name__}: {e}"})
            print(f"pyhost_kv: {step}: {type(e).__name__}: {e}", file=sys.stderr)
            return 1
        finally:
            proc = getattr(client, "_proc", None)
            await client.kill()
            # pyplugin counts a Shutdown RPC without a response as not graceful; a Go plugin
            # stops its server inside Shutdown, so that is the usual case against Go.
            res: dict[str, Any] = {"type": "killed", "kill_log": kill_log,
                                   "shutdown_rpc_ok": not any("Shutdown failed" in m for m in kill_log),
                                   "sigterm_sent": any("SIGTERM" in m for m in kill_log)}
            if proc is not None:
                res["exit_code"] = proc.poll()
            out(res)

    # pyplugin's AutoMTLS writes its cert and private key to NamedTemporaryFile(delete=False) and
    # never removes them: keep them in a private dir that goes away at exit.
    tempfile.tempdir = tempfile.mkdtemp(prefix="pyhost-kv-")
    try:
        return asyncio.run(run())
    finally:
        shutil.rmtree(tempfile.tempdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
