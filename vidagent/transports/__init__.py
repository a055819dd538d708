"""Transports move job JSON to a worker and back; they know nothing of tasks.

`await transport.submit(endpoint, payload) -> JobResult`. Payload builders and result
parsers live with the tasks (vidagent/tasks); policy (batching, concurrency) lives in
the pipeline. Backends are looked up by name, so a new one plugs in the same way.

Which backend serves each endpoint is decided once, explicitly, by `decide_backends`: a run
never drifts to the local models because an endpoint id is missing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from ..config import Settings
from ..errors import ConfigError, JobsLeftRunning


@dataclass(frozen=True)
class JobResult:
    output: dict[str, Any]
    execution_s: float  # time the worker spent on the job (billed GPU time on RunPod)
    delay_s: float = 0.0  # time the job waited in a queue before a worker took it
    cached: bool = False  # answered from the job cache: no worker ran, nothing billed
    billed: bool = False  # RunPod bills it: a RunPod endpoint ran it (local and cached jobs are free)
    worker_id: str | None = None  # the RunPod worker that ran it, when the API says


class Transport(Protocol):
    name: str
    max_payload_bytes: int | None  # the largest job body the backend accepts, if limited

    def label(self, endpoint: str) -> str:
        """Where this endpoint's jobs run: "runpod", "local" or "openai:<host>"."""
        ...

    def concurrency(self, endpoint: str) -> int:
        """How many jobs to keep in flight on this endpoint."""
        ...

    async def submit(self, endpoint: str, payload: dict[str, Any]) -> JobResult: ...

    async def aclose(self) -> dict[str, list[str]]:
        """Release resources; cancel the jobs still live and return, per endpoint label, the
        ids of those that could not be confirmed cancelled (empty when there were none)."""
        ...


class Router:
    """One transport per endpoint, behind the Transport interface the pipeline uses."""

    def __init__(self, routes: dict[str, Transport]):
        self.routes = routes
        self.name = "+".join(sorted({t.name for t in routes.values()}))

    @property
    def backends(self) -> dict[str, str]:
        return backends_of(self)

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
        """Close every transport; raise JobsLeftRunning naming the jobs that may still bill."""
        left: dict[str, list[str]] = {}
        for transport in {id(t): t for t in self.routes.values()}.values():
            left.update(await transport.aclose() or {})
        if left:
            raise JobsLeftRunning(left)


def backends_of(router) -> dict[str, str]:
    """endpoint -> "runpod" | "local" | "openai:<host>", for a Router or anything wrapping one
    (the job cache) that exposes its `routes`."""
    return {endpoint: _label(transport, endpoint) for endpoint, transport in router.routes.items()}


def _label(transport, endpoint: str) -> str:
    label = getattr(transport, "label", None)  # a stand-in transport may only have a name
    return label(endpoint) if label is not None else transport.name


def decide_backends(settings: Settings, endpoints: list[str]) -> dict[str, str]:
    """Where each endpoint of this run goes: "local", "runpod", or "openai" (the VLM at
    vlm_base_url). A ConfigError, in one line, when only some of the RunPod endpoint ids the
    run needs are set and local execution of the others was not asked for."""
    chosen: dict[str, str] = {}
    remote = []
    for endpoint in endpoints:
        if endpoint in settings.local_endpoints:
            chosen[endpoint] = "local"
        elif endpoint == "vlm" and settings.vlm_base_url:  # a server named outright wins over --backend
            chosen[endpoint] = "openai"
        elif settings.backend == "local":
            chosen[endpoint] = "local"
        else:
            remote.append(endpoint)
    missing = [e for e in remote if not settings.endpoint_id(e)]
    if settings.backend == "auto" and remote and len(missing) == len(remote):
        chosen.update({e: "local" for e in remote})  # nothing set up for RunPod: all here
    elif missing:
        unset = ", ".join(f"RUNPOD_{e.upper()}_ENDPOINT_ID" for e in missing)
        on_runpod = [e for e in remote if e not in missing]
        why = f"but {', '.join(on_runpod)} runs on RunPod" if on_runpod else "(--backend runpod)"
        stages = ",".join(missing)
        raise ConfigError(
            f"{unset} not set {why}: set it, or run {stages} here with --local-endpoints {stages} "
            "(everything: --backend local)"
        )
    else:
        chosen.update({e: "runpod" for e in remote})
    return {e: chosen[e] for e in endpoints}


def make_transport(settings: Settings, endpoints: list[str]) -> Router:
    """Transports for a run that needs `endpoints`, as `decide_backends` says: yolo and
    whisper locally or on RunPod's job API; the VLM locally or through an OpenAI route
    (RunPod's vLLM worker, or any server at vlm_base_url)."""
    routes: dict[str, Transport] = {}
    local = remote = None
    for endpoint, backend in decide_backends(settings, endpoints).items():
        if backend == "local":
            from ..extras import require

            require(endpoint)  # before anything runs: which extra to install, not a traceback mid-run
            if local is None:
                from .local import LocalTransport

                local = LocalTransport()
            routes[endpoint] = local
        elif endpoint == "vlm":
            from .openai_chat import OpenAIChatTransport

            routes[endpoint] = OpenAIChatTransport(settings)
        else:
            if remote is None:
                from .runpod import RunPodTransport

                remote = RunPodTransport(settings)
            routes[endpoint] = remote
    return Router(routes)
