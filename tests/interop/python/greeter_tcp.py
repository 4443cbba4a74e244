#!/usr/bin/env python3
"""python-plugin 0.1.0's examples/greeter plugin, served over TCP (ServeConfig.force_tcp).

The example itself always listens on a unix socket on Linux; pyplugin's own ``force_tcp``
option (a scan of PLUGIN_MIN_PORT..PLUGIN_MAX_PORT) is what its TCP tests use. This launcher
runs the example's unchanged GreeterPlugin and handshake with that option, from the unpacked
sdist given as the first argument (``$PY_PLUGIN_SDIST``):

    GREETER_PLUGIN=hello-from-pyplugin PLUGIN_PROTOCOL_VERSIONS=1 \\
        $PY_VENV_PYTHON tests/interop/python/greeter_tcp.py "$PY_PLUGIN_SDIST"
"""
from __future__ import annotations

import sys
from pathlib import Path

if len(sys.argv) != 2:
    sys.exit("usage: greeter_tcp.py PY_PLUGIN_SDIST")
ROOT = Path(sys.argv[1]).resolve()
sys.path[:0] = [str(ROOT), str(ROOT / "src")]

from pyplugin import ServeConfig, serve  # noqa: E402
from examples.greeter.shared import HANDSHAKE, GreeterPlugin  # noqa: E402

if __name__ == "__main__":
    serve(ServeConfig(handshake_config=HANDSHAKE, plugins={"greeter": GreeterPlugin()}, force_tcp=True))
