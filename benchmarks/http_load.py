"""A lean HTTP/1.1 load generator: ``clients`` keep-alive connections, each sending GETs
back to back for ``seconds``, counting 200s and everything else.

Why not httpx: on a 2-core machine the load generator shares the cores with the server, and
httpx's AsyncClient spends ~1-2 ms of CPU per request, as much as the server it measures.
This client parses only the status line and Content-Length (the server under test always
sends it), so nearly all the CPU goes to the server, as with clients on other machines.

Run as a script it prints ``{"ok": N, "errors": M, "seconds": S}`` as JSON (the benchmark
starts it in its own process so its event loop does not share a GIL with anything).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from urllib.parse import urlsplit


async def _client(host: str, port: int, requests: list[bytes], start: int, step: int, stop: float,
                  counts: list[int]) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    i = start
    try:
        while time.perf_counter() < stop:
            writer.write(requests[i % len(requests)])
            i += step
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
                    break
            else:
                raise RuntimeError("response without Content-Length")
            await reader.readexactly(length)
            counts[0 if status == 200 else 1] += 1
    finally:
        writer.close()


async def hammer(url: str, paths: list[str], clients: int, seconds: float, token: str | None = None,
                 warmup: float = 0.5) -> dict[str, float]:
    """``clients`` connections looping over ``paths`` (relative to ``url``) for ``seconds``
    after ``warmup`` seconds; returns counts of 200 and non-200 answers in the timed part."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    requests = [(f"GET {parts.path}{p} HTTP/1.1\r\nHost: {host}:{port}\r\n{auth}"
                 f"Accept: application/json\r\n\r\n").encode() for p in paths]
    if warmup > 0:
        await asyncio.gather(*(_client(host, port, requests, k, clients, time.perf_counter() + warmup, [0, 0])
                               for k in range(clients)))
    counts = [0, 0]
    t0 = time.perf_counter()
    await asyncio.gather(*(_client(host, port, requests, k, clients, t0 + seconds, counts) for k in range(clients)))
    return {"ok": counts[0], "errors": counts[1], "seconds": time.perf_counter() - t0}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("url", help="base URL, e.g. http://127.0.0.1:8000/api/v1")
    ap.add_argument("paths", nargs="+", help="paths under the URL, cycled over")
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--token")
    args = ap.parse_args()
    paths = args.paths
    if len(paths) == 1 and paths[0].startswith("@"):  # @file: one path a line
        with open(paths[0][1:]) as f:
            paths = [line.strip() for line in f if line.strip()]
    print(json.dumps(asyncio.run(hammer(args.url, paths, args.clients, args.seconds, args.token))))


if __name__ == "__main__":
    main()
