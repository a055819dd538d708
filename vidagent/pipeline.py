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
from .budget import Budget
from .captions.gate import CaptionGate
from .config import SECRET_FIELDS, Settings
from .errors import VidagentError
from .media.audio import AudioChunk
from .media.probe import MediaInfo, probe
from .media.child import extract_frames_in_child
from .media.sampler import ExtractStats, SampledFrame, extract_audio
from .plan import SamplingPlan, make_plan
from .report.events import build_events
from .report.model import Caption, EndpointUsage, FrameDetections, Report, Segment, Transcript
from .report.tracks import build_tracks, count_objects
from .tasks import caption, detect, transcribe
from .transports import JobResult, Router

QUEUE_ITEMS = 32


class VideoProgress(Protocol):
    """What the pipeline tells its caller about one video as it goes; the CLI renders it."""

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
    captions: list[Caption] = field(default_factory=list)
    summary: str | None = None
    silent_chunks: int = 0
    audio_chunks: int = 0

    def record(self, endpoint: str, result: JobResult, items: int, tokens: tuple[int, int] = (0, 0)) -> None:
        usage = self.usage.setdefault(endpoint, EndpointUsage())
        usage.jobs += 1
        usage.cached_jobs += result.cached
        usage.items += items
        usage.prompt_tokens += tokens[0]
        usage.completion_tokens += tokens[1]
        usage.execution_s = round(usage.execution_s + result.execution_s, 3)
        usage.delay_s = round(usage.delay_s + result.delay_s, 3)


async def analyze_video(
    path: Path,
    settings: Settings,
    transport: Router,
    progress: VideoProgress | None = None,
    limits: dict[str, asyncio.Semaphore] | None = None,
    budget: Budget | None = None,
) -> Report:
    """`limits` bound the jobs in flight per endpoint; share them between videos that run
    at once so that together they respect each endpoint's concurrency."""
    progress = progress or _NoProgress()
    started = time.perf_counter()
    media = await asyncio.to_thread(probe, path)
    plan = make_plan(media, settings)
    progress.planned(media, plan)
    probed = time.perf_counter()

    stats = ExtractStats()
    frames = extract_frames_in_child(path, media, list(plan.frame_specs), settings.jpeg_quality, stats)
    chunks = extract_audio(path, media, plan.audio_chunk_s, stats) \
        if plan.audio_chunk_s and media.has_audio else None
    budget = budget or Budget(None)
    run = _VideoRun(media, settings, transport, progress, limits or endpoint_limits(transport), budget)
    try:
        async with asyncio.TaskGroup() as jobs:
            run.jobs = jobs
            # Each stream has its own consumer, so a busy endpoint holds up only its own stream.
            audio_done = jobs.create_task(run.consume_audio(chunks)) if chunks is not None else None
            await run.consume_frames(frames)
            if audio_done is not None:
                await audio_done
            await run.extraction_finished()
        if settings.summary:
            await run.summarise()
    except BaseExceptionGroup as group:
        raise first_error(group) from None

    timings = {
        "probe_s": round(probed - started, 3),
        "total_s": round(time.perf_counter() - started, 3),
    }
    report = _merge(media, settings, run.collected, stats, timings)
    for endpoint, usage in report.usage.items():
        usage.usd = budget.usd(endpoint, usage)
    return report


def endpoint_limits(transport: Router) -> dict[str, asyncio.Semaphore]:
    return {name: asyncio.Semaphore(transport.concurrency(name)) for name in transport.routes}


class _VideoRun:
    """Starts the jobs of one video, a bounded number per endpoint, and collects results."""

    def __init__(self, media: MediaInfo, settings: Settings, transport: Router, progress: VideoProgress,
                 limits: dict[str, asyncio.Semaphore], budget: Budget):
        self.media, self.settings, self.transport, self.progress = media, settings, transport, progress
        self.collected = _Collected()
        self.limits = limits
        self.budget = budget
        self.jobs: asyncio.TaskGroup | None = None
        self.batcher = detect.FrameBatcher(settings.yolo_batch, transport.payload_limit(detect.ENDPOINT)) \
            if settings.detect else None
        self.captions = CaptionGate(settings, media)
        self._changed = asyncio.Event()  # a job finished: held captions may be releasable
        if settings.caption or settings.summary:
            self._caption_prompt = caption.load_prompt(settings.caption_prompt, "caption.txt")

    async def consume_frames(self, frames: Iterator[SampledFrame]) -> None:
        async for frame in _iterate_in_thread(frames, "frames"):
            if frame.kind == "detect":
                await self.add_detect_frame(frame)
            else:
                self.captions.offer(frame)
            await self.release_captions()

    async def consume_audio(self, chunks: Iterator[AudioChunk]) -> None:
        async for chunk in _iterate_in_thread(chunks, "audio", maxsize=2):  # chunks are MBs each
            await self.send_chunk(chunk)
            await self.release_captions()

    async def add_detect_frame(self, frame: SampledFrame) -> None:
        self.captions.detect_frame_seen(frame.t)
        for batch in self.batcher.add(frame):
            await self.send_frames(batch)

    async def send_frames(self, frames: list[SampledFrame]) -> None:
        def done(result: JobResult) -> None:
            found = detect.parse_result(result.output, frames, self.media)
            self.collected.detections += found
            self.captions.detections_done(found)
            self.collected.record(detect.ENDPOINT, result, len(frames))
            self.progress.advanced("detect", len(frames))

        await self._start(detect.ENDPOINT, detect.build_job(frames, self.settings), done)

    async def send_chunk(self, chunk: AudioChunk) -> None:
        self.collected.audio_chunks += 1
        self.captions.chunk_seen(chunk)
        if chunk.is_silent:  # nothing to hear: send nothing, invent nothing
            self.collected.silent_chunks += 1
            self.captions.chunk_done(chunk, [])
            self.progress.advanced("transcribe", 1)
            return

        def done(result: JobResult) -> None:
            segments, language, probability = transcribe.parse_result(result.output, chunk)
            self.collected.segments += segments
            self.captions.chunk_done(chunk, segments)
            self.collected.languages.append((language, probability, chunk.duration))
            self.collected.record(transcribe.ENDPOINT, result, 1)
            self.progress.advanced("transcribe", 1)

        await self._start(transcribe.ENDPOINT, transcribe.build_job(chunk, self.settings), done)

    async def release_captions(self) -> None:
        for frame, reason, context in self.captions.release():
            self.progress.advanced("caption", 1)
            if reason is not None:
                await self._send_caption(frame, reason, context)

    async def extraction_finished(self) -> None:
        if self.batcher is not None and (last := self.batcher.flush()):
            await self.send_frames(last)
        self.captions.extraction_done()
        while self.captions.waiting():
            await self.release_captions()
            if self.captions.waiting():
                self._changed.clear()
                await self._changed.wait()

    async def _send_caption(self, frame: SampledFrame, reason: str, context: str) -> None:
        def done(result: JobResult) -> None:
            self.collected.captions.append(caption.parse_result(result.output, frame.t, reason))
            self.collected.record(caption.ENDPOINT, result, 1, caption.token_usage(result.output))

        payload = caption.build_job(frame, context, self.settings, self._caption_prompt)
        await self._start(caption.ENDPOINT, payload, done)

    async def summarise(self) -> None:
        from .tasks import summary

        async def submit(payload: dict[str, Any]) -> dict[str, Any]:
            async with self.limits[caption.ENDPOINT]:
                result = await self.transport.submit(caption.ENDPOINT, payload)
            self.budget.charge(caption.ENDPOINT, result)
            self.collected.record(caption.ENDPOINT, result, 1, caption.token_usage(result.output))
            return result.output

        # An EvidencedSummary: the Report takes it as `summary` (text, sentences, warnings).
        self.collected.summary = await summary.summarise(
            self.collected.captions, self.collected.segments, self.settings, submit)

    async def _start(self, endpoint: str, payload: dict[str, Any], on_result: Callable[[JobResult], None]):
        # Waiting here, not inside the task, is the backpressure that keeps memory flat.
        await self.limits[endpoint].acquire()
        self.jobs.create_task(self._run(endpoint, payload, on_result))

    async def _run(self, endpoint: str, payload: dict[str, Any], on_result: Callable[[JobResult], None]):
        try:
            result = await self.transport.submit(endpoint, payload)
            on_result(result)
            self.budget.charge(endpoint, result)
        finally:
            self.limits[endpoint].release()
            self._changed.set()


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
    if settings.caption or settings.summary:
        models["captioner"] = settings.vlm_model
    detections = sorted(got.detections, key=lambda d: d.t)
    tracks = build_tracks(detections)
    segments = sorted(got.segments, key=lambda s: (s.start, s.end))
    captions = sorted(got.captions, key=lambda c: c.t)
    return Report(
        vidagent_version=__version__,
        created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        media=media,
        settings=settings.model_dump(mode="json", exclude={"out", *SECRET_FIELDS}),
        models=models,
        detections=detections,
        transcript=Transcript(
            language=_main_language(got.languages, settings.language),
            language_probability=_language_probability(got.languages),
            segments=segments,
        ),
        captions=captions,
        summary=got.summary,
        tracks=tracks,
        events=build_events(tracks, Transcript(segments=segments), captions),
        object_counts=count_objects(tracks),
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


async def _iterate_in_thread(source: Iterator, name: str, maxsize: int = QUEUE_ITEMS) -> AsyncIterator:
    """Run a blocking generator in a thread; yield its items here, with backpressure.

    The thread hands items over without waiting for the event loop (call_soon_threadsafe)
    and blocks only when `maxsize` items are waiting: a blocking hand-over per item made
    the decoder wait on every busy moment of the loop (docs/benchmarks.md)."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue = asyncio.Queue()
    slots = threading.Semaphore(maxsize)
    stop = threading.Event()
    end = object()

    def put(entry) -> bool:
        while not slots.acquire(timeout=0.2):
            if stop.is_set():
                return False
        loop.call_soon_threadsafe(queue.put_nowait, entry)
        return True

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

    thread = threading.Thread(target=produce, name=name, daemon=True)
    thread.start()
    try:
        while True:
            item, error = await queue.get()
            slots.release()
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
