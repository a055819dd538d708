"""Analyse one video: probe, one decode pass, jobs to the models, merge into a Report.

Frames come from a child process and audio from a thread, each through a bounded queue;
jobs start as items arrive, at most `concurrency` per endpoint, so decoding, inference
and merging overlap while memory stays bounded. A watchdog fails the video when nothing
moves for `stall_timeout_s`.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Protocol

from ..budget import Budget
from ..config import Settings
from ..errors import Stalled, VidagentError
from ..media.child import extract_frames_in_child
from ..media.probe import MediaInfo, probe
from ..media.stats import ExtractStats
from ..media.soundtrack import choose_streams, extract_audio
from ..plan import SamplingPlan, make_plan
from ..report.model import Report
from ..transports import Router, backends_of
from .merge import merge
from .run import VideoRun


class VideoProgress(Protocol):
    """What the pipeline tells its caller about one video as it goes; the CLI renders it."""

    def planned(self, media: MediaInfo, plan: SamplingPlan) -> None: ...

    def advanced(self, stage: str, items: int) -> None: ...


class _NoProgress:
    def planned(self, media: MediaInfo, plan: SamplingPlan) -> None:
        pass

    def advanced(self, stage: str, items: int) -> None:
        pass


async def analyze_video(
    path: Path,
    settings: Settings,
    transport: Router,
    progress: VideoProgress | None = None,
    limits: dict[str, asyncio.Semaphore] | None = None,
    budget: Budget | None = None,
    cpus: int | None = None,
) -> Report:
    """`limits` bound the jobs in flight per endpoint; share them between videos that run
    at once so that together they respect each endpoint's concurrency. `cpus`: the cores
    this video's decoder may use (the batch divides them between videos)."""
    progress = progress or _NoProgress()
    started = time.perf_counter()
    media = await asyncio.to_thread(probe, path)
    transcribe = settings.transcribe and media.has_audio
    streams = await asyncio.to_thread(choose_streams, path, media, settings.audio_stream) if transcribe else None
    plan = make_plan(media, settings, len(streams.positions) if streams else 0)
    progress.planned(media, plan)
    probed = time.perf_counter()

    stats = ExtractStats()
    if streams:
        stats.warnings += streams.warnings
    budget = budget or Budget(None)
    positions = streams.positions if streams else []
    run = VideoRun(media, settings, transport, progress, limits or endpoint_limits(transport), budget,
                   audio_streams=len(positions))
    frames = extract_frames_in_child(path, media, list(plan.frame_specs), settings.jpeg_quality, stats, cpus) \
        if plan.frame_specs else None

    async def everything() -> None:
        async with asyncio.TaskGroup() as jobs:
            run.jobs = jobs
            # Each stream has its own consumer, so a busy endpoint holds up only its own stream.
            audio = [jobs.create_task(run.consume_audio(extract_audio(path, media, plan.audio_chunk_s, stats, pos),
                                                        i, pos))
                     for i, pos in enumerate(positions)]
            if frames is not None:
                await run.consume_frames(frames)
            for task in audio:
                await task
            await run.extraction_finished()
            if settings.summary:
                await run._drain()  # every caption is in before the summary is asked for
                await run.summarise()

    try:
        await _watched(everything(), run, path, settings.stall_timeout_s)
    except BaseExceptionGroup as group:
        raise first_error(group) from None

    timings = {
        "probe_s": round(probed - started, 3),
        "total_s": round(time.perf_counter() - started, 3),
    }
    report = merge(media, settings, run.collected, stats, timings,
                   [media.audio_streams[p].index for p in positions], backends_of(transport))
    budget.price(report, report.backends)  # usd for the endpoints RunPod bills, only
    return report


async def _watched(work, run: VideoRun, path: Path, stall_s: float) -> None:
    """Run `work`; fail with Stalled when the run has not moved for `stall_s` seconds."""
    task = asyncio.ensure_future(work)
    try:
        while True:
            idle = time.monotonic() - run.last_progress
            done, _ = await asyncio.wait({task}, timeout=max(0.05, min(5.0, stall_s / 4, stall_s - idle)))
            if done:
                return task.result()
            idle = time.monotonic() - run.last_progress
            if idle >= stall_s:
                raise Stalled(f"{path}: no progress for {idle:.0f}s (waiting for {run.waiting_for()}); "
                              "raise stall_timeout_s if its jobs may take longer")
    finally:
        if not task.done():
            task.cancel()
            try:
                await task
            except BaseException:  # its jobs are cancelled; what stopped us is raised instead
                pass


def endpoint_limits(transport: Router) -> dict[str, asyncio.Semaphore]:
    return {name: asyncio.Semaphore(transport.concurrency(name)) for name in transport.routes}


def first_error(group: BaseExceptionGroup) -> BaseException:
    """TaskGroup wraps job failures; report the first user-facing one."""
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            return first_error(exc)
        if isinstance(exc, VidagentError):
            return exc
    return group.exceptions[0]
