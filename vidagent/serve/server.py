"""One `vidagent serve` run: listen, start the workers, print the ready line, stop on a signal.

The socket is bound before any worker starts, so a worker's URLs carry the real port even
with `--port 0`. stdout gets exactly one line, the ready line, once every worker has asked
for a job; everything else is logged to stderr. Stopping releases the long polls first, so
each worker sees its SIGTERM, finishes its jobs and posts their results while the server
still listens; only then does the server close.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import signal
import socket
import sys
from typing import TextIO

from aiohttp import web

from ..errors import ConfigError
from .app import Hub, build_app
from .config import ServeConfig
from .workers import Supervisor

log = logging.getLogger("vidagent.serve")

WORKER_GRACE_S = 5.0


async def serve(config: ServeConfig, api_key: str | None, out: TextIO = sys.stdout) -> int:
    sock = _bind(config.host, config.port)
    port = sock.getsockname()[1]
    base_url = f"http://{_url_host(sock)}:{port}/v2"
    hub = Hub(config, api_key=api_key, worker_token=secrets.token_urlsafe(24))
    hub.supervisor = Supervisor(config, base_url, hub.worker_token, on_lost=hub.store.worker_lost)
    runner = web.AppRunner(build_app(hub), access_log=None, shutdown_timeout=2.0)
    await runner.setup()
    await web.SockSite(runner, sock).start()
    ticker = asyncio.ensure_future(hub.tick_forever())

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    starting = asyncio.ensure_future(hub.supervisor.start())
    stopping = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait([starting, stopping], return_when=asyncio.FIRST_COMPLETED)
        if starting.done():
            starting.result()  # a worker that failed to start raises here
            ready = {"base_url": base_url, "rest_url": base_url,  # REST v2 shares /v2 here
                     "endpoints": {n: {"workers": s.workers} for n, s in config.endpoints.items()}}
            print(json.dumps(ready), file=out, flush=True)
            if not api_key and not _is_loopback(sock):
                log.warning("listening on %s without an API key", config.host)
            log.info("serving %s", base_url)
            await stopping
        log.info("stopping")
        return 0
    finally:
        # The signal handlers stay: a second Ctrl-C while workers drain changes nothing.
        starting.cancel()
        stopping.cancel()
        hub.close()
        await hub.supervisor.stop(WORKER_GRACE_S)
        ticker.cancel()
        await hub.aclose()
        await runner.cleanup()


def _bind(host: str, port: int) -> socket.socket:
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as exc:
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    return sock


def _url_host(sock: socket.socket) -> str:
    """How workers and clients on this machine reach the socket."""
    address = sock.getsockname()[0]
    if sock.family == socket.AF_INET6:
        return "[::1]" if address == "::" else f"[{address}]"
    return "127.0.0.1" if address == "0.0.0.0" else address


def _is_loopback(sock: socket.socket) -> bool:
    import ipaddress

    return ipaddress.ip_address(sock.getsockname()[0].split("%")[0]).is_loopback
