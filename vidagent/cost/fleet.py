"""The segment path priced next to the single-client path: wall time, client CPU, bytes
uploaded, worker seconds and dollars, for a fleet of N segment workers. Pure.

Single-client path (today's): the client decodes every frame it samples and uploads the
JPEGs and the audio; the models run on the yolo and whisper endpoints, as `estimate()`
prices them. Its wall time is the slowest of the client's decode, its upload and the
GPU work spread over N workers, after one cold start.

Segment path: the client hashes and uploads the file once (nothing for a URL input),
probes it and signs one URL per segment; segments of `segment_seconds` (default: the
duration over N, 10 to 600 s) go to N workers, each decoding its range and running both
models. Wall = hash + upload + probe + signing + one cold start + waves x (queue + one
segment's worker time), waves = ceil(segments / N). Billed = segments' worker time + each
started worker's cold start and idle timeout. Decode and inference are added, not
overlapped, within a segment: an upper bound on a worker's time.

The VLM (captions, summary) costs the same on either path and is left out of both.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel, Field

from ..config import Settings
from .estimate import MediaFacts, configured_work, cost_of
from .tables import PriceTable, SegmentProfile, TimeProfile, load_profile

MIN_SEGMENT_S = 10.0
MAX_SEGMENT_S = 600.0
DEFAULT_UPLINK_MBPS = 100.0


class PathCost(BaseModel):
    wall_s: float = Field(description="Start to report, for all videos.")
    client_cpu_s: float = Field(description="CPU seconds on the machine that runs vidagent.")
    uploaded_bytes: int = Field(description="What leaves the client: the file (segment) or JPEGs and audio (single).")
    upload_s: float = Field(description="uploaded_bytes at the stated uplink.")
    worker_s: float = Field(description="Busy worker seconds (billed, without cold starts).")
    cold_starts: int
    billed_s: float = Field(description="worker_s + cold starts x (cold_start_s + idle_s).")
    usd_flex: float


class SegmentWork(BaseModel):
    segments: int
    segment_s: float
    waves: int
    decode_s: float = Field(description="One full segment's decode on a worker.")
    inference_s: float = Field(description="One full segment's YOLO and Whisper seconds.")
    overhead_s: float = Field(description="Per segment: job fetch, open, seek.")


class FleetEstimate(BaseModel):
    workers: int
    uplink_mbps: float
    uploaded_already: bool
    segment: PathCost
    single: PathCost
    work: SegmentWork
    faster: Literal["segment", "single", "same"]
    cheaper: Literal["segment", "single", "same"]
    speedup: float | None = Field(description="single wall / segment wall.")
    pool: str
    figures: dict[str, str] = Field(description="Where each figure comes from.")
    notes: list[str]


def segment_length(duration_s: float, workers: int, segment_seconds: float | None) -> float:
    """One segment per worker, so the fleet finishes together, within 10-600 s."""
    if segment_seconds is not None:
        return segment_seconds
    return min(MAX_SEGMENT_S, max(MIN_SEGMENT_S, duration_s / workers))


def fleet_estimate(
    videos: Sequence[MediaFacts],
    settings: Settings,
    prices: PriceTable,
    profile: TimeProfile,
    workers: int,
    segment_seconds: float | None = None,
    uplink_mbps: float = DEFAULT_UPLINK_MBPS,
    uploaded_already: bool = False,
) -> FleetEstimate:
    if workers < 1:
        raise ValueError("workers must be at least 1")
    seg = profile.segment or load_profile().segment  # a profile without the section: the shipped one's
    uplink = uplink_mbps * 1e6 / 8  # bytes per second
    segments = waves_s = decode_total = infer_total = 0.0
    one = SegmentWork(segments=0, segment_s=0, waves=0, decode_s=0, inference_s=0, overhead_s=seg.seconds_per_segment)
    file_bytes = single_bytes = client_decode = 0.0
    for video in videos:
        length = segment_length(video.duration_s, workers, segment_seconds)
        count = max(1, math.ceil(video.duration_s / length - 1e-9))
        decode_per_s, infer_per_s = _worker_rates(video, settings, profile, seg)
        segments += count
        decode_total += video.duration_s * decode_per_s
        infer_total += video.duration_s * infer_per_s
        one = SegmentWork(segments=0, segment_s=round(length, 3), waves=0, decode_s=round(length * decode_per_s, 3),
                          inference_s=round(length * infer_per_s, 3), overhead_s=seg.seconds_per_segment)
        waves_s = max(waves_s, one.decode_s + one.inference_s + one.overhead_s + seg.queue_s)
        file_bytes += 0 if uploaded_already else _file_bytes(video, seg)
        single_bytes += _single_upload_bytes(video, settings, seg)
        client_decode += _client_decode_s(video, settings, seg)
    segments = int(segments)
    waves = math.ceil(segments / workers)
    one = one.model_copy(update={"segments": segments, "waves": waves})

    pool = prices.pool_of("segment")
    hash_s = 0.0 if uploaded_already else file_bytes / seg.hash_bytes_per_s
    upload_s = file_bytes / uplink
    client_s = hash_s + seg.probe_s * len(videos) + seg.presign_s * segments
    worker_s = decode_total + infer_total + segments * seg.seconds_per_segment
    cold = min(workers, segments)
    billed = worker_s + cold * (seg.cold_start_s + seg.idle_s)
    segment_path = PathCost(
        wall_s=round(client_s + upload_s + seg.cold_start_s + waves * waves_s, 3),
        client_cpu_s=round(client_s, 3), uploaded_bytes=int(file_bytes), upload_s=round(upload_s, 3),
        worker_s=round(worker_s, 3), cold_starts=cold, billed_s=round(billed, 3),
        usd_flex=round(billed * pool.flex_usd_per_s, 6))

    single_cost = cost_of(_models_only(videos, settings), prices, profile)
    gpu_single = sum(single_cost.endpoints[e].gpu_s for e in ("yolo", "whisper"))
    single_upload_s = single_bytes / uplink
    cold_single = max((profile.of(e).cold_start_s for e in ("yolo", "whisper") if single_cost.endpoints[e].jobs),
                      default=0.0)
    single_path = PathCost(
        wall_s=round(cold_single + max(client_decode, single_upload_s, gpu_single / workers), 3),
        client_cpu_s=round(client_decode, 3), uploaded_bytes=int(single_bytes), upload_s=round(single_upload_s, 3),
        worker_s=round(gpu_single, 3), cold_starts=single_cost.total.cold_starts,
        billed_s=round(single_cost.total.billed_s, 3), usd_flex=round(single_cost.total.usd_flex, 6))

    return FleetEstimate(
        workers=workers, uplink_mbps=uplink_mbps, uploaded_already=uploaded_already,
        segment=segment_path, single=single_path, work=one,
        faster=_better(segment_path.wall_s, single_path.wall_s),
        cheaper=_better(segment_path.usd_flex, single_path.usd_flex),
        speedup=round(single_path.wall_s / segment_path.wall_s, 2) if segment_path.wall_s > 0 else None,
        pool=prices.pool_name("segment"),
        figures=_figures(seg, profile),
        notes=_notes(seg, uplink_mbps, uploaded_already, segment_seconds),
    )


def _worker_rates(video: MediaFacts, settings: Settings, profile: TimeProfile,
                  seg: SegmentProfile) -> tuple[float, float]:
    """Worker seconds per second of video: decoding it, and YOLO plus Whisper (and the
    speaker encoder, with --speakers) on it."""
    decode = 0.0
    infer = 0.0
    if video.has_video and (settings.detect or settings.caption):
        decode += _pixels_per_s(video, seg) / seg.worker_pixels_per_s
    if video.has_audio and settings.transcribe:
        decode += 1.0 / seg.worker_audio_x
        infer += profile.whisper.seconds_per_unit
        if settings.speakers:
            infer += profile.whisper.diarize_seconds_per_unit
    if video.has_video and settings.detect:
        infer += min(settings.detect_fps, video.fps or settings.detect_fps) * profile.yolo.seconds_per_unit
    return decode, infer


def _pixels_per_s(video: MediaFacts, seg: SegmentProfile) -> float:
    width = video.width or seg.assumed_width
    height = video.height or seg.assumed_height
    return width * height * (video.fps or 30.0)


def _client_decode_s(video: MediaFacts, settings: Settings, seg: SegmentProfile) -> float:
    seconds = 0.0
    if video.has_video and (settings.detect or settings.caption):
        seconds += video.duration_s * _pixels_per_s(video, seg) / seg.client_pixels_per_s
    if video.has_audio and settings.transcribe:
        seconds += video.duration_s / seg.client_audio_x
    return seconds


def _file_bytes(video: MediaFacts, seg: SegmentProfile) -> float:
    return video.size_bytes if video.size_bytes is not None else video.duration_s * seg.assumed_bitrate_bps / 8


def _single_upload_bytes(video: MediaFacts, settings: Settings, seg: SegmentProfile) -> float:
    from ..plan import make_plan

    plan = make_plan(video, settings.model_copy(update={"caption": False}))  # caption frames: on both paths
    sent = plan.detect_frames * seg.detect_jpeg_bytes
    if plan.audio_chunks:
        sent += video.duration_s * seg.audio_bytes_per_s
    return sent


def _models_only(videos: Sequence[MediaFacts], settings: Settings):
    """Today's plan without the VLM (the same on both paths)."""
    plain = settings.model_copy(update={"caption": False, "summary": False})
    total = None
    for video in videos:
        work = configured_work(video, plain, 0)
        total = work if total is None else {e: total[e] + work[e] for e in work}
    return total


def _better(segment: float, single: float) -> str:
    if math.isclose(segment, single, rel_tol=0.02):
        return "same"
    return "segment" if segment < single else "single"


def _figures(seg: SegmentProfile, profile: TimeProfile) -> dict[str, str]:
    return {
        "segment": f"{seg.provenance} {seg.date}: {seg.source}",
        "yolo": f"{profile.yolo.provenance} {profile.yolo.date} (seconds per image, on the segment worker too)",
        "whisper": f"{profile.whisper.provenance} {profile.whisper.date} (seconds per audio second, on the segment worker too)",
    }


def _notes(seg: SegmentProfile, uplink_mbps: float, uploaded_already: bool, segment_seconds: float | None) -> list[str]:
    notes = [
        f"uplink {uplink_mbps:g} Mbit/s (--uplink-mbps): the single path sends JPEGs and audio, the segment path the file once",
        "segment: decode and inference are added within a segment (no overlap): an upper bound on a worker's time",
        f"segment: every started worker bills a cold start ({seg.cold_start_s:g} s) and its idle timeout ({seg.idle_s:g} s); "
        "more workers: fewer waves, more cold starts",
        "single: the client decodes every sampled frame; its wall time is the slowest of decode, upload and the "
        "GPU work over the same number of workers",
        "captions and the summary (the VLM) cost the same on both paths and are left out of both",
    ]
    if uploaded_already:
        notes.append("--uploaded: the media is already at a URL (https:// or s3://): nothing hashed or uploaded")
    if segment_seconds is None:
        notes.append(f"segments: the duration over the workers, {MIN_SEGMENT_S:g}-{MAX_SEGMENT_S:g} s (--segment-seconds)")
    return notes
