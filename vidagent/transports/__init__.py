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
    max_payload_bytes: int | None  # the largest job body the backend accepts, if limited

    def concurrency(self, endpoint: str) -> int:
        """How many jobs to keep in flight on this endpoint."""
        ...

    async def submit(self, endpoint: str, payload: dict[str, Any]) -> JobResult: ...

    async def aclose(self) -> None: ...


def make_transport(settings: Settings, endpoints: list[str]) -> Transport:
    """The backend for a run that needs `endpoints` (auto picks runpod when all have ids)."""
    backend = settings.resolved_backend(endpoints)
    if backend == "runpod":
        from .runpod import RunPodTransport

        return RunPodTransport(settings)
    from .local import LocalTransport

    return LocalTransport()
