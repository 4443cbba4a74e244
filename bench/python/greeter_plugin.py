#!/usr/bin/env python3
"""python-plugin 0.1.0's examples/greeter plugin, as the benchmark runs it: the example's own
GreeterPlugin and handshake, served over a unix socket, or over TCP when BENCH_NETWORK=tcp
(pyplugin's ServeConfig.force_tcp; the example itself only listens on unix sockets on Linux).

    GREETER_PLUGIN=hello-from-pyplugin PLUGIN_PROTOCOL_VERSIONS=1 \\
        $PY_VENV_PYTHON bench/python/greeter_plugin.py "$PY_PLUGIN_SDIST"
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

if len(sys.argv) != 2:
    sys.exit("usage: greeter_plugin.py PY_PLUGIN_SDIST")
ROOT = Path(sys.argv[1]).resolve()
sys.path[:0] = [str(ROOT), str(ROOT / "src")]

from pyplugin import ServeConfig, serve  # noqa: E402
from examples.greeter.shared import HANDSHAKE, GreeterPlugin  # noqa: E402

if __name__ == "__main__":
    serve(ServeConfig(
        handshake_config=HANDSHAKE,
        plugins={"greeter": GreeterPlugin()},
        force_tcp=os.environ.get("BENCH_NETWORK") == "tcp",
    ))
