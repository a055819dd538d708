"""One video through the segment path: the fleet decodes, this process plans and merges.

Probe over the URL (header, index, first frame), cut at keyframes (segments/planner.py),
one `segment` job per stretch through the same job runner as every other job (bounded per
endpoint, broken workers retried, a failure confined to its segment), then the segments'
results in plan order (segments/combine.py) go into the same caption gate, the same
summary and the same merge as the local path's. A failed segment leaves the report
`partial`, naming the stretch it leaves empty.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from ..budget import Budget
from ..config import Settings
from ..errors import ConfigError
from ..media.soundtrack import choose_streams
from ..media.stats import ExtractStats
from ..plan import make_plan
from ..report.model import Report
from ..segments.combine import combine
from ..segments.keyframes import survey
from ..segments.planner import DEFAULT_WORKERS, SegmentRange, plan_segments, segment_seconds, wanted_cuts
from ..segments.source import MediaURL, publish, readable_url, redact
from ..speakers.timeline import ChunkSpeakers
from ..storage import store_configured  # a bucket is named (asks nothing of boto3)
from ..transports import JobResult, backends_of
from ..workers.segment import ENDPOINT, JOB_SETTINGS
from .merge import merge
from .run import VideoRun
from .video import _NoProgress, _watched, endpoint_limits, first_error

SEARCH_S = 2.0  # how far a boundary's audio cut may move to find a pause
OVERLAP_S = 1.0  # audio each side transcribes past the cut (a word across it is heard whole)


def remote_segments(settings: Settings) -> bool:
    """The segment endpoint runs on RunPod (or `vidagent serve`), not in this process."""
    return (settings.backend != "local" and ENDPOINT not in settings.local_endpoints
            and bool(settings.runpod_segment_endpoint_id))


def uses_segments(settings: Settings, source: Path | MediaURL) -> bool:
    """The `segments` setting for one input: auto is on when the segment endpoint is remote
    and workers can read the media (a URL, or a local file the object store will take)."""
    if settings.segments != "auto":
        return settings.segments == "on"
    return remote_segments(settings) and (isinstance(source, MediaURL) or store_configured(settings))


def _where_workers_read(source, settings: Settings) -> tuple[str, Any, str | None, int]:
    """(url for the workers, what the client probes, content id or None, bytes uploaded)."""
    if isinstance(source, MediaURL):
        url = readable_url(source, settings)
        return url, MediaURL(url), None, 0
    if store_configured(settings):
        published = publish(source, settings)
        return published.url, source, f"sha256:{published.content_hash}", published.uploaded_bytes
    if remote_segments(settings):
        raise ConfigError(f"{source}: segment workers on RunPod cannot read a local file: configure an object "
                          "store (object_store_* settings), give an https:// URL, or --segments off")
    resolved = source.resolve()
    stat = resolved.stat()
    return str(resolved), source, f"file:{resolved}:{stat.st_size}:{stat.st_mtime_ns}", 0


async def analyze_segmented(source: Path | MediaURL, settings: Settings, transport, progress=None,
                            limits: dict[str, asyncio.Semaphore] | None = None, budget: Budget | None = None) -> Report:
    progress = progress or _NoProgress()
    started = time.perf_counter()
    url, probe_source, content, uploaded = await asyncio.to_thread(_where_workers_read, source, settings)
    published = time.perf_counter()
    workers = settings.segment_workers or await _endpoint_workers(transport) or DEFAULT_WORKERS

    def cuts(duration: float) -> list[float]:
        return wanted_cuts(duration, segment_seconds(duration, workers, settings.segment_seconds))

    surveyed = await asyncio.to_thread(survey, probe_source, cuts)
    media = surveyed.media
    if isinstance(source, MediaURL):
        media = media.model_copy(update={"path": str(source), "file_name": source.name})
    content = content or f"url:{redact(url)}:{media.size_bytes}:{surveyed.version or ''}"
    transcribe = settings.transcribe and media.has_audio
    streams = await asyncio.to_thread(choose_streams, probe_source, media, settings.audio_stream) \
        if transcribe else None
    positions = streams.positions[:1] if streams else []  # the segment path hears one stream
    plan = make_plan(media, settings, len(positions))
    length = segment_seconds(media.duration_s, workers, settings.segment_seconds)
    ranges = plan_segments(media.duration_s, length, surveyed.origin_pts, surveyed.time_base, surveyed.keyframes)
    progress.planned(media, plan)
    probed = time.perf_counter()

    stats = ExtractStats()
    if streams:
        stats.warnings += streams.warnings
        if len(streams.positions) > 1:
            stats.warnings.append("the segment path transcribes one audio stream; use --segments off for all")
    budget = budget or Budget(None)
    run = VideoRun(media, settings, transport, progress, limits or endpoint_limits(transport), budget,
                   audio_streams=len(positions))
    outputs: list[dict[str, Any] | None] = [None] * len(ranges)
    common = _common(settings, media, plan, surveyed, content, positions)

    async def everything() -> None:
        async with asyncio.TaskGroup() as jobs:
            run.jobs = jobs
            for piece in ranges:
                await _submit(run, piece, {**common, **_range_fields(piece, url, len(ranges))}, outputs)
            await run._drain()
            _take_results(run, outputs, plan, surveyed, settings, stats)
            await run.release_captions()
            await run.extraction_finished()
            if settings.summary:
                await run._drain()
                await run.summarise()

    try:
        await _watched(everything(), run, source, settings.stall_timeout_s)
    except BaseExceptionGroup as group:
        raise first_error(group) from None

    worker = [o["timings"] for o in outputs if o]
    timings = {
        "probe_s": round(probed - published, 3),
        "publish_s": round(published - started, 3),
        "total_s": round(time.perf_counter() - started, 3),
        "segments": float(len(ranges)),
        "segment_length_s": round(length, 3),
        "probe_bytes": float(surveyed.bytes_read),
        "uploaded_bytes": float(uploaded),
        **{f"segment_{k}": round(sum(t.get(k, 0.0) for t in worker), 3)
           for k in ("decode_s", "detect_s", "audio_decode_s", "transcribe_s", "total_s")},
    }
    report = merge(media, settings, run.collected, stats, timings, [media.audio_streams[p].index for p in positions],
                   backends_of(transport))
    budget.price(report, report.backends)
    return report


def _common(settings: Settings, media, plan, surveyed, content: str, positions: list[int]) -> dict[str, Any]:
    tb = surveyed.time_base
    return {
        "content": content,
        "time_base": f"{tb.numerator}/{tb.denominator}" if tb is not None else None,
        "origin_pts": surveyed.origin_pts,
        "frames": [{"kind": s.kind, "fps": s.fps, "long_side": s.long_side} for s in plan.frame_specs],
        "media": media.model_dump(mode="json"),
        "settings": settings.model_dump(mode="json", include=set(JOB_SETTINGS)),
        "audio_stream": positions[0] if positions else None,
    }


def _range_fields(piece: SegmentRange, url: str, count: int) -> dict[str, Any]:
    return {"url": url, "segment": piece.index, "start": piece.start, "end": piece.end,
            "start_pts": piece.start_pts, "end_pts": piece.end_pts,
            "cut_start": piece.index > 0, "cut_end": piece.index < count - 1}


def build_job(fields: dict[str, Any]) -> dict[str, Any]:
    """The SegmentJob (workers/segment.py) from the common and per-range fields."""
    job = {k: v for k, v in fields.items() if k not in ("audio_stream", "cut_start", "cut_end")}
    if fields.get("audio_stream") is not None:
        job["audio"] = {"stream": fields["audio_stream"], "cut_start": fields["cut_start"],
                        "cut_end": fields["cut_end"], "search_s": SEARCH_S, "overlap_s": OVERLAP_S}
    return job


async def _submit(run: VideoRun, piece: SegmentRange, fields: dict[str, Any], outputs: list) -> None:
    def done(result: JobResult) -> None:
        output = result.output
        if not isinstance(output, dict) or output.get("segment") != piece.index:
            raise ValueError(f"the reply is not {piece.label}'s")
        outputs[piece.index] = output
        run.collected.record(ENDPOINT, result, 1)

    await run._start("segment", ENDPOINT, build_job(fields), done, lambda: None,
                     span=(piece.start, piece.end), items=1)


def _take_results(run: VideoRun, outputs: list, plan, surveyed, settings: Settings, stats: ExtractStats) -> None:
    """The segments' results into the run, as the local path's jobs would have left them."""
    got = combine(outputs, list(plan.frame_specs), surveyed.time_base, surveyed.origin_pts,
                  settings.segment_pause_s, settings.word_timestamps or settings.speakers)
    collected = run.collected
    if settings.speakers:  # the merge splits segments by speaker (words kept) and clusters once
        collected.speaker_chunks += [ChunkSpeakers(0.0, reply) for reply in got.speakers]
        collected.chunks_without_speakers += got.without_speakers
        collected.speakers_from = ENDPOINT
    collected.detections += got.detections
    collected.segments += got.segments
    collected.languages += got.languages
    collected.audio_chunks += got.audio_chunks
    collected.silent_chunks += got.silent_chunks
    stats.warnings += got.warnings
    run.progress.advanced("detect", len(got.detections))
    run.progress.advanced("transcribe", got.audio_chunks)
    run.captions.results_known(got.detections, got.segments)
    for frame in got.caption_frames:
        run.captions.offer(frame)


async def _endpoint_workers(transport) -> int | None:
    routes = getattr(transport, "routes", {})
    ask = getattr(routes.get(ENDPOINT), "workers", None)
    return await ask(ENDPOINT) if ask is not None else None
