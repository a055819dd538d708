"""Worker processes: each endpoint's handler script, run unchanged as a RunPod worker.

A worker is `python HANDLER` with RunPod's production environment pointing at this
server (its own id written into every URL), in a process group of its own: the SDK forks
a heartbeat process that would otherwise outlive a killed worker. A worker is ready at its
first job-take. Its output is held back until then, so a worker that dies while starting
(an import error, say) yields one line, the last it printed, instead of a traceback. Once
the server is up, a dead worker's jobs go back to the queue and a replacement starts.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..errors import BackendError
from .config import EndpointSpec, ServeConfig

log = logging.getLogger("vidagent.serve")

# The SDK logs whole job inputs at DEBUG (ours are megabytes of base64): WARN by default.
WORKER_ENV_DEFAULTS = {
    "RUNPOD_LOG_LEVEL": "WARN",
    "RUNPOD_SKIP_AUTO_SYSTEM_CHECKS": "true",
    "RUNPOD_SKIP_GPU_CHECK": "true",
}
MAX_LINE = 2000
MAX_RESTART_DELAY_S = 30.0
RETIRE_GRACE_S = 5.0  # a worker replaced by a release finishes its jobs in this long


class _Pipe(asyncio.SubprocessProtocol):
    """A worker's output and exit. Not asyncio's Process: its wait() only returns once the
    output pipe closes, and the SDK's heartbeat process keeps it open after a SIGKILL."""

    def __init__(self) -> None:
        loop = asyncio.get_running_loop()
        self.exited = loop.create_future()
        self.eof = loop.create_future()
        self.on_line: Callable[[bytes], None] = lambda line: None
        self._partial = b""

    def pipe_data_received(self, fd: int, data: bytes) -> None:
        *lines, self._partial = (self._partial + data).split(b"\n")
        if len(self._partial) > MAX_LINE:
            lines.append(self._partial)
            self._partial = b""
        for line in lines:
            self.on_line(line)

    def pipe_connection_lost(self, fd: int, exc: Exception | None) -> None:
        if self._partial:
            self.on_line(self._partial)
            self._partial = b""
        _resolve(self.eof)

    def process_exited(self) -> None:
        _resolve(self.exited)


@dataclass(eq=False)
class WorkerRecord:
    id: str
    endpoint: str
    handler: Path
    transport: asyncio.SubprocessTransport
    pipe: _Pipe
    started_at: float
    ready_at: float | None = None
    exited_at: float | None = None
    exit_code: int | None = None
    last_ping_at: float | None = None
    gone: bool = False  # exited and its output read to the end
    retired: bool = False  # replaced by a release (REST API): takes no job, is not restarted
    tail: deque[str] = field(default_factory=lambda: deque(maxlen=50))
    held: list[str] = field(default_factory=list)  # output printed before it was ready

    @property
    def pid(self) -> int:
        return self.transport.get_pid()

    @property
    def alive(self) -> bool:
        return self.exit_code is None


class Supervisor:
    def __init__(self, config: ServeConfig, base_url: str, token: str, on_lost: Callable[[str], Any]):
        self.config = config
        self._base_url = base_url  # http://host:port/v2, as the workers reach this server
        self._token = token
        self._on_lost = on_lost
        self._records: dict[str, WorkerRecord] = {}
        self._serial: defaultdict[str, int] = defaultdict(int)
        self._failures: defaultdict[str, int] = defaultdict(int)  # starts in a row that died unready
        self._tasks: set[asyncio.Task] = set()
        self._changed = asyncio.Event()
        self._serving = False
        self._stopping = False

    # -- lifecycle --------------------------------------------------------------------

    async def start(self) -> None:
        """Start every worker and wait until each has asked for a job."""
        for endpoint, spec in self.config.endpoints.items():
            for _ in range(spec.workers):
                await self._spawn(endpoint)
        deadline = time.monotonic() + self.config.start_timeout_s
        while True:
            dead = [r for r in self._records.values() if r.gone]
            if dead:
                raise BackendError(self._startup_failure(dead[0]))
            if all(r.ready_at is not None for r in self._records.values()):
                self._serving = True
                return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                slow = sorted({r.endpoint for r in self._records.values() if r.ready_at is None})
                raise BackendError(
                    f"workers of endpoint {', '.join(slow)} did not ask for a job within "
                    f"{self.config.start_timeout_s:g} s; raise --start-timeout-s if the model loads slowly"
                )
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except asyncio.TimeoutError:
                pass

    async def stop(self, grace_s: float = 5.0) -> None:
        """SIGTERM every worker (the SDK finishes its jobs), SIGKILL what remains after grace_s."""
        self._stopping = True
        live = [r for r in self._records.values() if r.alive]
        for record in live:
            _signal_group(record.pid, signal.SIGTERM)
        if live:
            await asyncio.wait([r.pipe.exited for r in live], timeout=grace_s)
        for record in live:
            _signal_group(record.pid, signal.SIGKILL)  # stragglers, and heartbeat processes
        await asyncio.gather(*(r.pipe.exited for r in live))
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=2.0)
        for task in self._tasks:
            task.cancel()

    async def configure(self, endpoint: str, spec: EndpointSpec | None) -> None:
        """Run `endpoint` with `spec` from now on (the REST API created or changed it); None
        stops it. New workers start first; the old ones take no more jobs, finish theirs on
        SIGTERM and go, as in a RunPod release."""
        old = [r for r in self._records.values() if r.endpoint == endpoint and r.alive]
        if spec is None:
            self.config.endpoints.pop(endpoint, None)
        else:
            self.config.endpoints[endpoint] = spec
            for _ in range(spec.workers):
                await self._spawn(endpoint)
        for record in old:
            record.retired = True
            self._background(self._retire(record))

    # -- what the HTTP layer tells us -------------------------------------------------

    def lookup(self, worker_id: str) -> WorkerRecord | None:
        return self._records.get(worker_id)

    def mark_ready(self, record: WorkerRecord) -> None:
        if record.ready_at is not None:
            return
        record.ready_at = time.monotonic()
        self._failures[record.endpoint] = 0
        for line in record.held:
            log.info("%s | %s", record.id, line)
        record.held.clear()
        log.info("worker %s of endpoint %s ready (pid %d)", record.id, record.endpoint, record.pid)
        self._changed.set()

    def records(self, endpoint: str | None = None) -> list[WorkerRecord]:
        return [r for r in self._records.values() if endpoint is None or r.endpoint == endpoint]

    # -- internals --------------------------------------------------------------------

    async def _spawn(self, endpoint: str) -> None:
        spec = self.config.endpoints[endpoint]
        self._serial[endpoint] += 1
        worker_id = f"{endpoint}-w{self._serial[endpoint]}"
        try:
            transport, pipe = await asyncio.get_running_loop().subprocess_exec(
                _Pipe,
                spec.python or sys.executable,
                str(spec.handler),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                env=self._environment(endpoint, worker_id),
                start_new_session=True,
            )
        except OSError as exc:
            raise BackendError(f"cannot start a worker of endpoint {endpoint}: {exc}") from None
        record = WorkerRecord(worker_id, endpoint, spec.handler, transport, pipe, time.monotonic())
        pipe.on_line = lambda raw: self._line(record, raw)
        self._records[worker_id] = record
        self._forget_old_dead(endpoint)
        self._background(self._watch(record))
        log.debug("worker %s started (pid %d): %s", worker_id, record.pid, spec.handler)

    def _environment(self, endpoint: str, worker_id: str) -> dict[str, str]:
        base = f"{self._base_url}/{endpoint}"
        query = f"?token={self._token}"
        env = {**WORKER_ENV_DEFAULTS, **os.environ, **self.config.endpoints[endpoint].env}
        env.pop("VIDAGENT_SERVE_API_KEY", None)  # the client API key is none of a worker's business
        env.update(
            RUNPOD_POD_ID=worker_id,
            RUNPOD_AI_API_KEY=self._token,  # the heartbeat only runs with a key; this one is ours
            RUNPOD_WEBHOOK_GET_JOB=f"{base}/job-take/{worker_id}{query}",
            RUNPOD_WEBHOOK_POST_OUTPUT=f"{base}/job-done/{worker_id}/$ID{query}",
            RUNPOD_WEBHOOK_POST_STREAM=f"{base}/job-stream/{worker_id}/$ID{query}",
            RUNPOD_WEBHOOK_PING=f"{base}/ping/{worker_id}{query}",
            PYTHONUNBUFFERED="1",
        )
        return env

    async def _watch(self, record: WorkerRecord) -> None:
        await record.pipe.exited
        record.exit_code = record.transport.get_returncode()
        record.exited_at = time.monotonic()
        _signal_group(record.pid, signal.SIGKILL)  # the SDK's heartbeat process, if any
        try:
            await asyncio.wait_for(asyncio.shield(record.pipe.eof), 2.0)  # its last words
        except asyncio.TimeoutError:
            pass  # something outside its group still holds the pipe
        record.transport.close()
        record.gone = True
        self._changed.set()
        if self._stopping or not self._serving:
            return
        requeued = self._on_lost(record.id)
        if record.retired:
            log.info("worker %s (pid %d) retired with code %s; %d job(s) back in the queue",
                     record.id, record.pid, record.exit_code, len(requeued))
            return
        log.warning(
            "worker %s (pid %d) exited with code %s; %d job(s) back in the queue; starting a replacement",
            record.id, record.pid, record.exit_code, len(requeued),
        )
        if record.ready_at is None:
            # Died before taking a job (again): back off instead of spinning on a broken handler.
            self._failures[record.endpoint] += 1
            delay = min(MAX_RESTART_DELAY_S, 2.0 ** (self._failures[record.endpoint] - 1))
            log.warning("worker %s never became ready: %s; next try in %g s",
                        record.id, _last_line(record) or "no output", delay)
            await asyncio.sleep(delay)
        if not self._stopping:
            try:
                await self._spawn(record.endpoint)
            except BackendError as exc:
                log.error("%s", exc)

    async def _retire(self, record: WorkerRecord) -> None:
        _signal_group(record.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(asyncio.shield(record.pipe.exited), RETIRE_GRACE_S)
        except asyncio.TimeoutError:
            _signal_group(record.pid, signal.SIGKILL)

    def _line(self, record: WorkerRecord, raw: bytes) -> None:
        line = raw.decode("utf-8", "replace").rstrip()
        if len(line) > MAX_LINE:
            line = line[:MAX_LINE] + " …"
        if not line:
            return
        record.tail.append(line)
        if record.ready_at is None:
            record.held.append(line)
        else:
            log.info("%s | %s", record.id, line)

    def _startup_failure(self, record: WorkerRecord) -> str:
        reason = _last_line(record) or "no output"
        state = "before asking for a job" if record.ready_at is None else "while the others started"
        return (
            f"endpoint {record.endpoint}: worker {record.handler} exited with code "
            f"{record.exit_code} {state}: {reason}"
        )

    def _forget_old_dead(self, endpoint: str, keep: int = 16) -> None:
        dead = [r for r in self._records.values() if r.endpoint == endpoint and r.gone]
        for record in dead[:-keep]:
            del self._records[record.id]

    def _background(self, coro) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _last_line(record: WorkerRecord) -> str:
    for line in reversed(record.tail):
        if line.strip():
            return line.strip()[:300]
    return ""


def _resolve(future: asyncio.Future) -> None:
    if not future.done():
        future.set_result(None)


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass
