#!/usr/bin/env python3
"""python-plugin (pyplugin 0.1.0) side of plugwire's benchmark: a pyplugin host that runs one
measurement job against the greeter example plugin and prints one JSON line.

    $PY_VENV_PYTHON bench/python/bench_host.py PY_PLUGIN_SDIST JOB_JSON

JOB_JSON is the job format shared with the Go and TypeScript hosts (bench/README.md). The unary
call is greeter.Greeter/Greet{name:"bench"}. The greeter has no streaming method, no broker use
and no method that writes to stdout, so jobs asking for stream, stdio or broker figures are
refused (the driver marks those n/a).
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any


def status(pid: str) -> dict[str, int]:
    """VmRSS and VmHWM (kB) from /proc/PID/status."""
    out: dict[str, int] = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                key = line.split(":", 1)[0]
                if key in ("VmRSS", "VmHWM"):
                    out[key] = int(line.split()[1])
    except OSError:
        pass
    return out


def cpu_ms(pid: int) -> float:
    """CPU time (ms) a process has used so far, all threads (schedstat, ns)."""
    ns = 0
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{task}/schedstat") as f:
                    ns += int(f.read().split()[0])
            except OSError:
                pass
    except OSError:
        pass
    return ns / 1e6


def main() -> int:
    if len(sys.argv) != 3:
        sys.exit("usage: bench_host.py PY_PLUGIN_SDIST JOB_JSON")
    sdist = Path(sys.argv[1]).resolve()
    sys.path[:0] = [str(sdist), str(sdist / "src")]
    job: dict[str, Any] = json.loads(sys.argv[2])
    for unsupported in ("stream", "stdio", "broker"):
        if job.get(unsupported):
            print(json.dumps({"ok": False, "error": f"the greeter plugin cannot do {unsupported}"}))
            return 1

    logging.basicConfig(stream=sys.stderr, level=logging.WARNING)
    from examples.greeter.generated import greeter_pb2  # noqa: PLC0415
    from examples.greeter.shared import HANDSHAKE, GreeterPlugin  # noqa: PLC0415
    from pyplugin import Client, ClientConfig  # noqa: PLC0415

    request = greeter_pb2.GreetRequest(name="bench")

    async def start() -> tuple[Any, Any]:
        client = Client(ClientConfig(
            handshake_config=HANDSHAKE,
            plugins={"greeter": GreeterPlugin()},
            cmd=job["cmd"],
            auto_mtls=bool(job.get("mtls")),
        ))
        try:
            await client.start()
        except BaseException:
            await client.kill()
            raise
        return client, client.dispense("greeter")

    async def greet(stub: Any) -> None:
        resp = await stub.Greet(request)
        if resp.message != "hello, bench!":
            raise RuntimeError(f"Greet returned {resp.message!r}")

    async def cold() -> dict[str, Any]:
        total: list[float] = []
        connect: list[float] = []
        cpu: list[float] = []
        for _ in range(job["reps"]):
            t0 = time.perf_counter()
            client, stub = await start()
            t1 = time.perf_counter()
            await greet(stub)
            t2 = time.perf_counter()
            total.append((t2 - t0) * 1e3)
            connect.append((t1 - t0) * 1e3)
            cpu.append(cpu_ms(client.pid))
            await client.kill()
        return {"cold_ms": total, "connect_ms": connect, "plugin_cpu_ms": cpu}

    async def session() -> dict[str, Any]:
        client, stub = await start()
        res: dict[str, Any] = {}
        try:
            await greet(stub)
            pid = str(client.pid)
            u = job.get("unary")
            if u:
                for _ in range(u["warmup"]):
                    await greet(stub)
                res["plugin_idle"] = status(pid)
                samples: list[float] = []
                plugin_cpu, host_cpu = cpu_ms(client.pid), cpu_ms(os.getpid())
                for _ in range(u["rounds"]):
                    for _ in range(u["calls"]):
                        t0 = time.perf_counter()
                        await greet(stub)
                        samples.append((time.perf_counter() - t0) * 1e6)
                res["unary_us"] = samples
                res["unary_plugin_cpu_us"] = (cpu_ms(client.pid) - plugin_cpu) * 1e3 / len(samples)
                res["unary_host_cpu_us"] = (cpu_ms(os.getpid()) - host_cpu) * 1e3 / len(samples)
            t = job.get("throughput")
            if t:
                by: dict[str, list[float]] = {}
                for c in t["concurrency"]:
                    for _ in range(t["rounds"]):
                        left = [t["calls"]]

                        async def worker() -> None:
                            while left[0] > 0:
                                left[0] -= 1
                                await greet(stub)

                        t0 = time.perf_counter()
                        await asyncio.gather(*(worker() for _ in range(c)))
                        by.setdefault(str(c), []).append(t["calls"] / (time.perf_counter() - t0))
                res["throughput"] = by
            res["plugin_peak"] = status(pid)
        finally:
            await client.kill()
        return res

    async def scale() -> dict[str, Any]:
        t0 = time.perf_counter()

        async def one() -> Any:
            client, stub = await start()
            await greet(stub)
            return client

        results = await asyncio.gather(*(one() for _ in range(job["n"])), return_exceptions=True)
        elapsed = (time.perf_counter() - t0) * 1e3
        host = status("self")
        clients = [r for r in results if not isinstance(r, BaseException)]
        plugins_rss = sum(status(str(c.pid)).get("VmRSS", 0) for c in clients)
        await asyncio.gather(*(c.kill() for c in clients), return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            raise errors[0]
        return {"start_all_ms": elapsed, "host": host, "plugins_rss_kb": plugins_rss}

    async def run() -> dict[str, Any]:
        # pyplugin 0.1.0 reads each plugin's handshake line and then its stderr, for the
        # plugin's whole life, with blocking readline() calls on the loop's default executor:
        # one parked thread per running plugin. The default pool (min(32, cpus + 4) threads)
        # would deadlock a host of 50 plugins, so this host gives it enough threads.
        asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(max_workers=4 * 64))
        kind = job["kind"]
        if kind == "cold":
            return await cold()
        if kind == "session":
            return await session()
        if kind == "scale":
            return await scale()
        raise ValueError(f"unknown job kind {kind!r}")

    # pyplugin's AutoMTLS writes certs and keys to NamedTemporaryFile(delete=False) and never
    # removes them: keep them in a private directory that goes away at exit.
    tempfile.tempdir = tempfile.mkdtemp(prefix="bench-pyhost-")
    try:
        res = asyncio.run(run())
        res["ok"] = True
        print(json.dumps(res))
        return 0
    except Exception as e:  # noqa: BLE001
        print(json.dumps({"ok": False, "error": f"{type(e).__name__}: {e}"}))
        return 1
    finally:
        shutil.rmtree(tempfile.tempdir, ignore_errors=True)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
