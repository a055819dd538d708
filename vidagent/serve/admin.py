"""Ours, not RunPod's: `/_vidagent/stats` and `/_vidagent/workers`, for tests and drills.
They need the API key when one is set and are never faulted."""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from .hub import HUB, json_response


def routes() -> list[tuple[str, tuple[str, ...], str, Any]]:
    return [
        ("admin.stats", ("GET",), "/_vidagent/stats", admin_stats),
        ("admin.workers", ("GET",), "/_vidagent/workers", admin_workers),
    ]



async def admin_stats(request: web.Request) -> web.Response:
    hub = request.app[HUB]
    endpoints = {}
    for name, counters in hub.store.counters.items():
        counts = hub.store.counts(name)
        endpoints[name] = {
            "accepted": {"run": counters.accepted_run, "runsync": counters.accepted_runsync},
            # Beside "accepted", not in it: scripts compare that object whole.
            "openai": {"accepted": counters.accepted_openai},
            "final": dict(counters.final),
            "retried": counters.retried,
            "expired": counters.expired,
            "purged": counters.purged,
            "in_queue": counts["in_queue"],
            "in_progress": counts["in_progress"],
            "workers": hub.worker_states(name),
        }
    return json_response({
        "uptime_s": round(time.monotonic() - hub.started_at, 3),
        "endpoints": endpoints,
        "faults": {"injected": {str(code): n for code, n in sorted(hub.faults.injected.items())}},
    })


async def admin_workers(request: web.Request) -> web.Response:
    hub = request.app[HUB]
    now = time.monotonic()
    workers = [
        {
            "id": record.id,
            "endpoint": record.endpoint,
            "pid": record.pid,
            "alive": record.alive,
            "ready": record.ready_at is not None,
            "exit_code": record.exit_code,
            "jobs_in_progress": hub.store.worker_jobs(record.id),
            "uptime_s": round((record.exited_at or now) - record.started_at, 3),
            "last_ping_s_ago": None if record.last_ping_at is None else round(now - record.last_ping_at, 3),
        }
        for record in (hub.supervisor.records() if hub.supervisor else [])
    ]
    return json_response({"workers": workers})
