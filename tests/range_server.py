"""A static file server that honours HTTP Range requests (RFC 9110 single ranges), run as
its own process by the tests and the segment benchmark.

    python tests/range_server.py ROOT [--no-range] [--expired-token T]

Prints `PORT <n>` once listening on 127.0.0.1. `--no-range` answers every GET with the
whole file (200), as a server without range support does; a request whose query has
`expires=<unix time>` in the past gets 403, as an expired presigned URL does.
`--fail-bytes A-B` answers 500 to every ranged GET that touches bytes A-B (a stretch of
the file the store cannot serve). `GET /_stats` returns the bytes and requests served so
far, as JSON (what a reader cost).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


class Stats:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.bytes = 0
        self.requests = 0
        self.ranged = 0

    def add(self, sent: int, ranged: bool) -> None:
        with self.lock:
            self.bytes += sent
            self.requests += 1
            self.ranged += ranged


class RangeHandler(SimpleHTTPRequestHandler):
    server_version = "RangeServer/1"
    honour_ranges = True
    failing: tuple[int, int] | None = None
    stats = Stats()

    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802
        parts = urlsplit(self.path)
        if parts.path == "/_stats":
            body = json.dumps({"bytes": self.stats.bytes, "requests": self.stats.requests,
                               "ranged": self.stats.ranged}).encode()
            self._reply(200, body, "application/json")
            return
        expires = parse_qs(parts.query).get("expires")
        if expires and expires[0].isdigit() and int(expires[0]) < time.time():
            self._reply(403, b"<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>",
                        "application/xml")
            return
        path = Path(self.translate_path(parts.path))
        if not path.is_file():
            self._reply(404, b"not found", "text/plain")
            return
        size = path.stat().st_size
        wanted = self.headers.get("Range")
        start, end, status = 0, size - 1, 200
        if wanted and self.honour_ranges:
            match = _RANGE.match(wanted.strip())
            if not match or (not match[1] and not match[2]):
                self._reply(416, b"", "text/plain", {"Content-Range": f"bytes */{size}"})
                return
            if match[1]:
                start = int(match[1])
                end = min(int(match[2]), size - 1) if match[2] else size - 1
            else:  # a suffix: the last N bytes
                start = max(0, size - int(match[2]))
            if start >= size or start > end:
                self._reply(416, b"", "text/plain", {"Content-Range": f"bytes */{size}"})
                return
            status = 206
            if self.failing and start <= self.failing[1] and end >= self.failing[0]:
                self._reply(500, b"InternalError", "text/plain")
                return
        self.send_response(status)
        self.send_header("Content-Type", "video/mp4")
        self.send_header("Content-Length", str(end - start + 1))
        if self.honour_ranges:
            self.send_header("Accept-Ranges", "bytes")
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.end_headers()
        sent = 0
        try:
            with path.open("rb") as file:
                file.seek(start)
                left = end - start + 1
                while left > 0:
                    block = file.read(min(left, 1 << 16))
                    if not block:
                        break
                    self.wfile.write(block)
                    sent += len(block)
                    left -= len(block)
        except (BrokenPipeError, ConnectionResetError):
            pass  # a reader that seeks closes its connection mid-body
        finally:
            self.stats.add(sent, status == 206)

    def _reply(self, status: int, body: bytes, kind: str, headers: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("root", type=Path, help="folder to serve")
    parser.add_argument("--no-range", action="store_true", help="ignore Range headers (answer 200, whole file)")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--fail-bytes", default=None, help="A-B: answer 500 to ranged GETs touching these bytes")
    args = parser.parse_args()
    os.chdir(args.root)
    RangeHandler.honour_ranges = not args.no_range
    if args.fail_bytes:
        first, last = args.fail_bytes.split("-")
        RangeHandler.failing = (int(first), int(last))
    server = ThreadingHTTPServer(("127.0.0.1", args.port), RangeHandler)
    server.daemon_threads = True
    print(f"PORT {server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


class RangeServer:
    """The server as a process, for tests: `RangeServer(root, *flags).url("clip.mp4")`."""

    def __init__(self, root: Path, *flags: str):
        import subprocess
        import sys

        self.proc = subprocess.Popen([sys.executable, __file__, str(root), *flags], stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if not line.startswith("PORT "):
            self.proc.kill()
            raise RuntimeError(f"range server did not start: {line!r}")
        self.base = f"http://127.0.0.1:{int(line.split()[1])}"

    def url(self, name: str, query: str = "") -> str:
        return f"{self.base}/{name}" + (f"?{query}" if query else "")

    def stats(self) -> dict:
        import httpx

        return httpx.get(f"{self.base}/_stats", timeout=10).json()

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


if __name__ == "__main__":
    main()
