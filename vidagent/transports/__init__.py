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
    cached: bool = False  # answered from the job cache: no worker ran, nothing billed


class Transport(Protocol):
    name: str
    max_payload_bytes: int | None  # the largest job body the backend accepts, if limited

    def concurrency(self, endpoint: str) -> int:
        """How many jobs to keep in flight on this endpoint."""
        ...

    async def submit(self, endpoint: str, payload: dict[str, Any]) -> JobResult: ...

    async def aclose(self) -> None: ...


class Router:
    """One transport per endpoint, behind the Transport interface the pipeline uses."""

    def __init__(self, routes: dict[str, Transport]):
        self.routes = routes
        self.name = "+".join(sorted({t.name for t in routes.values()}))

    def transport(self, endpoint: str) -> Transport:
        try:
            return self.routes[endpoint]
        except KeyError:
            raise ValueError(f"no transport for endpoint {endpoint!r}") from None

    def payload_limit(self, endpoint: str) -> int | None:
        return self.transport(endpoint).max_payload_bytes

    def concurrency(self, endpoint: str) -> int:
        return self.transport(endpoint).concurrency(endpoint)

    async def submit(self, endpoint: str, payload: dict[str, Any]) -> JobResult:
        return await self.transport(endpoint).submit(endpoint, payload)

    async def aclose(self) -> None:
        for transport in {id(t): t for t in self.routes.values()}.values():
            await transport.aclose()


def make_transport(settings: Settings, endpoints: list[str]) -> Router:
    """Transports for a run that needs `endpoints`: yolo and whisper run locally or on
    RunPod (auto: RunPod when all of them have endpoint ids); the VLM runs locally, or
    through the OpenAI route (RunPod's vLLM worker or any server at vlm_base_url)."""
    routes: dict[str, Transport] = {}
    backend = settings.resolved_backend(endpoints)
    local = remote = None
    for endpoint in endpoints:
        if endpoint == "vlm" and (settings.vlm_base_url or backend == "runpod"):
            from .openai_chat import OpenAIChatTransport

            routes[endpoint] = OpenAIChatTransport(settings)
        elif backend == "runpod":
            if remote is None:
                from .runpod import RunPodTransport

                remote = RunPodTransport(settings)
            routes[endpoint] = remote
        else:
            if local is None:
                from .local import LocalTransport

                local = LocalTransport()
            routes[endpoint] = local
    return Router(routes)
