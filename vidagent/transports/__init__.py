"""Transports move job JSON to a worker and back; they know nothing of tasks.

`await transport.submit(endpoint, payload) -> JobResult`. Payload builders and result
parsers live with the tasks (vidagent/tasks); policy (batching, concurrency) lives in
the pipeline. Backends are looked up by name, so a new one plugs in the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from ..config import Settings


@dataclass(frozen=True)
class JobResult:
    output: dict[str, Any]
    execution_s: float  # time the worker spent on the job (billed GPU time on RunPod)
    delay_s: float = 0.0  # time the job waited in a queue before a worker took it


class Transport(Protocol):
    name: str

    async def submit(self, endpoint: str, payload: dict[str, Any]) -> JobResult: ...

    async def aclose(self) -> None: ...


def make_transport(settings: Settings) -> Transport:
    if settings.backend == "local":
        from .local import LocalTransport

        return LocalTransport()
    raise ValueError(f"unknown backend {settings.backend!r}")
