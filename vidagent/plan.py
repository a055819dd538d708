"""The sampling plan: what one video will send to each model. Pure, no I/O.

The pipeline follows it, progress bars use its counts as totals, and cost estimates
multiply them by per-item prices.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .config import Settings
from .media.probe import MediaInfo
from .media.sampler import FrameSpec


@dataclass(frozen=True)
class SamplingPlan:
    frame_specs: tuple[FrameSpec, ...]
    audio_chunk_s: float | None
    detect_frames: int
    detect_jobs: int
    audio_chunks: int
    caption_candidates: int


def expected_frames(duration_s: float, fps: float, source_fps: float | None) -> int:
    """Frames a rate picks from a video: one per 1/fps interval, capped by the source rate."""
    rate = min(fps, source_fps) if source_fps else fps
    return max(1, math.ceil(duration_s * rate - 1e-9))


def make_plan(media: MediaInfo, settings: Settings, audio_streams: int = 1) -> SamplingPlan:
    """`audio_streams`: how many audio streams will be transcribed (`audio_stream: all`)."""
    specs = []
    detect_frames = 0
    if settings.detect and media.has_video:
        specs.append(FrameSpec("detect", settings.detect_fps, settings.detect_size))
        detect_frames = expected_frames(media.duration_s, settings.detect_fps, media.fps)
    caption_candidates = 0
    if settings.caption and media.has_video:
        specs.append(FrameSpec("caption", settings.caption_fps, settings.caption_size))
        caption_candidates = expected_frames(media.duration_s, settings.caption_fps, media.fps)
    transcribe = settings.transcribe and media.has_audio and audio_streams > 0
    return SamplingPlan(
        frame_specs=tuple(specs),
        audio_chunk_s=settings.audio_chunk_s if transcribe else None,
        detect_frames=detect_frames,
        detect_jobs=math.ceil(detect_frames / settings.yolo_batch),
        audio_chunks=audio_streams * max(1, math.ceil(media.duration_s / settings.audio_chunk_s)) if transcribe else 0,
        caption_candidates=caption_candidates,
    )
