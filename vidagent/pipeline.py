"""Analyse one video: probe, one decode pass, jobs to the models, merge into a Report.

Extraction runs in a thread and streams items through a bounded queue; jobs are started
as items arrive, at most `concurrency` per endpoint, so decoding, inference and merging
overlap while memory stays bounded by the queue and the jobs in flight.
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, AsyncIterator, Callable, Iterator, Protocol

from . import __version__
from .config import SECRET_FIELDS, Settings
from .errors import VidagentError
from .media.audio import AudioChunk
from .media.probe import MediaInfo, probe
from .media.sampler import ExtractStats, SampledFrame, extract
from .plan import SamplingPlan, make_plan
from .report.model import EndpointUsage, FrameDetections, Report, Segment, Transcript
from .tasks import detect, transcribe
from .transports import JobResult, Transport

QUEUE_ITEMS = 32


class Progress(Protocol):
    """What the pipeline tells its caller as it goes; the CLI renders it."""

    def planned(self, media: MediaInfo, plan: SamplingPlan) -> None: ...

    def advanced(self, stage: str, items: int) -> None: ...


class _NoProgress:
    def planned(self, media: MediaInfo, plan: SamplingPlan) -> None:
        pass

    def advanced(self, stage: str, items: int) -> None:
        pass


@dataclass
class _Collected:
    detections: list[FrameDetections] = field(default_factory=list)
    segments: list[Segment] = field(default_factory=list)
    languages: list[tuple[str | None, float | None, float]] = field(default_factory=list)
    usage: dict[str, EndpointUsage] = field(default_factory=dict)
    silent_chunks: int = 0
    audio_chunks: int = 0

    def record(self, endpoint: str, result: JobResult, items: int) -> None:
        usage = self.usage.setdefault(endpoint, EndpointUsage())
        usage.jobs += 1
        usage.items += items
        usage.execution_s = round(usage.execution_s + result.execution_s, 3)
        usage.delay_s = round(usage.delay_s + result.delay_s, 3)


async def analyze_video(
    path: Path, settings: Settings, transport: Transport, progress: Progress | None = None
) -> Report:
    progress = progress or _NoProgress()
    started = time.perf_counter()
    media = await asyncio.to_thread(probe, path)
    plan = make_plan(media, settings)
    progress.planned(media, plan)
    probed = time.perf_counter()

    stats = ExtractStats()
    items = extract(path, media, list(plan.frame_specs), plan.audio_chunk_s, settings.jpeg_quality, stats)
    run = _VideoRun(media, settings, transport, progress)
    batcher = detect.FrameBatcher(settings.yolo_batch, transport.max_payload_bytes)
    try:
        async with asyncio.TaskGroup() as jobs:
            run.jobs = jobs
            async for item in _iterate_in_thread(items):
                if isinstance(item, AudioChunk):
                    await run.send_chunk(item)
                elif item.kind == "detect":
                    for batch in batcher.add(item):
                        await run.send_frames(batch)
            if last := batcher.flush():
                await run.send_frames(last)
    except BaseExceptionGroup as group:
        raise first_error(group) from None

    timings = {
        "probe_s": round(probed - started, 3),
        "total_s": round(time.perf_counter() - started, 3),
    }
    return _merge(media, settings, run.collected, stats, timings)


class _VideoRun:
    """Starts the jobs of one video, at most CONCURRENCY per endpoint, and collects results."""

    def __init__(self, media: MediaInfo, settings: Settings, transport: Transport, progress: Progress):
        self.media, self.settings, self.transport, self.progress = media, settings, transport, progress
        self.collected = _Collected()
        self.limits = {
            name: asyncio.Semaphore(transport.concurrency(name))
            for name in (detect.ENDPOINT, transcribe.ENDPOINT)
        }
        self.jobs: asyncio.TaskGroup | None = None

    async def send_frames(self, frames: list[SampledFrame]) -> None:
        def done(result: JobResult) -> None:
            self.collected.detections += detect.parse_result(result.output, frames, self.media)
            self.collected.record(detect.ENDPOINT, result, len(frames))
            self.progress.advanced("detect", len(frames))

        await self._start(detect.ENDPOINT, detect.build_job(frames, self.settings), done)

    async def send_chunk(self, chunk: AudioChunk) -> None:
        self.collected.audio_chunks += 1
        if chunk.is_silent:  # nothing to hear: send nothing, invent nothing
            self.collected.silent_chunks += 1
            self.progress.advanced("transcribe", 1)
            return

        def done(result: JobResult) -> None:
            segments, language, probability = transcribe.parse_result(result.output, chunk)
            self.collected.segments += segments
            self.collected.languages.append((language, probability, chunk.duration))
            self.collected.record(transcribe.ENDPOINT, result, 1)
            self.progress.advanced("transcribe", 1)

        await self._start(transcribe.ENDPOINT, transcribe.build_job(chunk, self.settings), done)

    async def _start(self, endpoint: str, payload: dict[str, Any], on_result: Callable[[JobResult], None]):
        # Waiting here, not inside the task, is the backpressure that keeps memory flat.
        await self.limits[endpoint].acquire()
        self.jobs.create_task(self._run(endpoint, payload, on_result))

    async def _run(self, endpoint: str, payload: dict[str, Any], on_result: Callable[[JobResult], None]):
        try:
            on_result(await self.transport.submit(endpoint, payload))
        finally:
            self.limits[endpoint].release()


def _merge(media: MediaInfo, settings: Settings, got: _Collected, stats: ExtractStats, timings) -> Report:
    warnings = list(stats.warnings)
    if settings.transcribe and not media.has_audio:
        warnings.append("no audio stream: the transcript is empty")
    elif settings.transcribe and got.audio_chunks and got.silent_chunks == got.audio_chunks:
        warnings.append("the audio is silent: nothing to transcribe")
    models = {}
    if settings.detect:
        models["detector"] = settings.yolo_model
    if settings.transcribe and media.has_audio:
        models["transcriber"] = settings.whisper_model
    return Report(
        vidagent_version=__version__,
        created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        media=media,
        settings=settings.model_dump(mode="json", exclude={"out", *SECRET_FIELDS}),
        models=models,
        detections=sorted(got.detections, key=lambda d: d.t),
        transcript=Transcript(
            language=_main_language(got.languages, settings.language),
            language_probability=_language_probability(got.languages),
            segments=sorted(got.segments, key=lambda s: (s.start, s.end)),
        ),
        warnings=warnings,
        timings=timings,
        usage=got.usage,
    )


def _main_language(languages, forced: str | None) -> str | None:
    if forced:
        return forced
    weight: dict[str, float] = {}
    for language, _, seconds in languages:
        if language:
            weight[language] = weight.get(language, 0.0) + seconds
    return max(weight, key=weight.get) if weight else None


def _language_probability(languages) -> float | None:
    scored = [(p, s) for _, p, s in languages if p is not None]
    total = sum(s for _, s in scored)
    return round(sum(p * s for p, s in scored) / total, 4) if total else None


async def _iterate_in_thread(source: Iterator, maxsize: int = QUEUE_ITEMS) -> AsyncIterator:
    """Run a blocking generator in a thread; yield its items here, with backpressure."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue = asyncio.Queue(maxsize)
    stop = threading.Event()
    end = object()

    def put(entry) -> bool:
        future = asyncio.run_coroutine_threadsafe(queue.put(entry), loop)
        while not stop.is_set():
            try:
                future.result(timeout=0.2)
                return True
            except TimeoutError:
                continue
        future.cancel()
        return False

    def produce() -> None:
        try:
            for item in source:
                if not put((item, None)):
                    return
            put((end, None))
        except BaseException as exc:  # handed to the consumer, which re-raises it
            put((end, exc))
        finally:
            source.close()

    thread = threading.Thread(target=produce, name="extract", daemon=True)
    thread.start()
    try:
        while True:
            item, error = await queue.get()
            if item is end:
                if error is not None:
                    raise error
                return
            yield item
    finally:
        stop.set()
        await asyncio.to_thread(thread.join)


def first_error(group: BaseExceptionGroup) -> BaseException:
    """TaskGroup wraps job failures; report the first user-facing one."""
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            return first_error(exc)
        if isinstance(exc, VidagentError):
            return exc
    return group.exceptions[0]
