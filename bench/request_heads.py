"""Memory under huge request headers, and plain request speed, of the server ``industrydata
serve`` runs (uvicorn + h11, head bounded) against uvicorn's default (httptools, unbounded),
both measured in the same run; prints numbers and ratios, never asserts.

    .venv/bin/python bench/request_heads.py
    .venv/bin/python bench/request_heads.py --header-mib 64 --connections 4 --requests 2000

Each server is a child process on a free loopback port with a fresh data dir. Memory: the
resident set (VmRSS) and its peak (VmHWM) after ``--connections`` clients each send one
request whose Authorization header is ``--header-mib`` MiB, at once. Speed: ``--requests``
sequential GETs of the discovery document over one keep-alive connection.
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

SERVERS = {
    "uvicorn default (httptools)": (
        "import uvicorn, sys; from industrydata.api import create_app; "
        "from industrydata.config import Settings; "
        "uvicorn.run(create_app(Settings(data_dir=sys.argv[1])), host='127.0.0.1', "
        "port=int(sys.argv[2]), log_level='warning', http='httptools')"
    ),
    "industrydata serve (h11, bounded)": (
        "import sys; from industrydata.api.server import serve; "
        "from industrydata.config import Settings; "
        "serve(Settings(data_dir=sys.argv[1]), host='127.0.0.1', port=int(sys.argv[2]))"
    ),
}
DISCOVERY = "/.well-known/openid-configuration"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _memory(pid: int) -> dict[str, int]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(value.split()[0]) * 1024
    return fields


def _send_huge_header(port: int, size: int) -> int:
    sent = 0
    chunk = b"A" * (1024 * 1024)
    with socket.create_connection(("127.0.0.1", port), timeout=120) as connection:
        try:
            connection.sendall(b"GET /beta/industryData HTTP/1.1\r\nHost: x\r\nAuthorization: ")
            while sent < size:
                connection.sendall(chunk)
                sent += len(chunk)
            connection.sendall(b"\r\n\r\n")
            connection.recv(1024)
        except (BrokenPipeError, ConnectionResetError):
            pass
    return sent


def _measure(code: str, args: argparse.Namespace) -> dict[str, float]:
    port = _free_port()
    with tempfile.TemporaryDirectory() as data_dir:
        server = subprocess.Popen([sys.executable, "-c", code, data_dir, str(port)])
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", trust_env=False) as client:
                deadline = time.monotonic() + 60
                while True:
                    try:
                        client.get(DISCOVERY)
                        break
                    except httpx.TransportError:
                        if time.monotonic() > deadline:
                            raise
                        time.sleep(0.05)
                started = time.perf_counter()
                for _ in range(args.requests):
                    client.get(DISCOVERY).raise_for_status()
                per_second = args.requests / (time.perf_counter() - started)
            before = _memory(server.pid)
            size = args.header_mib * 1024 * 1024
            with ThreadPoolExecutor(max_workers=args.connections) as pool:
                ports, sizes = [port] * args.connections, [size] * args.connections
                sent = list(pool.map(_send_huge_header, ports, sizes))
            time.sleep(0.5)
            after = _memory(server.pid)
        finally:
            server.terminate()
            server.wait(timeout=30)
    return {
        "requests_per_second": per_second,
        "rss_before_mib": before["VmRSS"] / 2**20,
        "rss_after_mib": after["VmRSS"] / 2**20,
        "peak_growth_mib": (after["VmHWM"] - before["VmRSS"]) / 2**20,
        "sent_mib": sum(sent) / 2**20,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--header-mib", type=int, default=64)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--requests", type=int, default=2000)
    args = parser.parse_args()
    results = {name: _measure(code, args) for name, code in SERVERS.items()}
    print(
        f"{args.connections} x {args.header_mib} MiB Authorization headers at once; "
        f"{args.requests} sequential GETs on one connection"
    )
    print(
        f"{'server':36} {'req/s':>8} {'RSS before':>11} {'RSS after':>10} "
        f"{'peak growth':>12} {'MiB sent':>9}"
    )
    for name, result in results.items():
        print(
            f"{name:36} {result['requests_per_second']:8.0f} {result['rss_before_mib']:10.0f}M "
            f"{result['rss_after_mib']:9.0f}M {result['peak_growth_mib']:11.0f}M "
            f"{result['sent_mib']:9.0f}"
        )
    baseline, bounded = results.values()
    growth = bounded["peak_growth_mib"] / max(baseline["peak_growth_mib"], 1e-9)
    speed = bounded["requests_per_second"] / baseline["requests_per_second"]
    print(f"bounded / default: peak growth {growth:.3f}, requests per second {speed:.2f}")


if __name__ == "__main__":
    main()
