"""One decode pass per video: detection frames, caption frames and audio chunks together.

`extract()` is a generator: it yields items as the decoder produces them and holds at most
one audio chunk and one frame in memory, so memory stays flat however long the video is.
A frame is picked for a stream when it is the first frame whose pts falls in a new
1/fps interval; its timestamp is its own pts, never `index / fps`.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Iterator, Literal

import numpy as np

from ..errors import MediaError
from .audio import SAMPLE_RATE, AudioChunk, AudioChunker
from .probe import MediaInfo, open_container

FrameKind = Literal["detect", "caption"]
_TRANSPOSE = {90: "ROTATE_90", 180: "ROTATE_180", 270: "ROTATE_270"}


@dataclass(frozen=True)
class FrameSpec:
    kind: FrameKind
    fps: float
    long_side: int


@dataclass(frozen=True)
class SampledFrame:
    kind: FrameKind
    index: int  # ordinal among frames of this kind
    t: float  # seconds from the video's first frame, from the frame's pts
    jpeg: bytes
    width: int  # of the JPEG, upright
    height: int


@dataclass
class ExtractStats:
    """What the pass saw; filled in as it runs, read by the pipeline for warnings."""

    decoded_frames: int = 0
    last_video_t: float = 0.0
    damaged_packets: int = 0
    warnings: list[str] = field(default_factory=list)


def scaled_size(width: int, height: int, long_side: int) -> tuple[int, int]:
    """Scale so the long side is at most `long_side` (never up), keeping the aspect ratio."""
    scale = min(1.0, long_side / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def extract(
    path: Path,
    info: MediaInfo,
    frames: list[FrameSpec],
    audio_chunk_s: float | None,
    jpeg_quality: int = 90,
    stats: ExtractStats | None = None,
) -> Iterator[SampledFrame | AudioChunk]:
    import av

    stats = stats if stats is not None else ExtractStats()
    container = open_container(path)
    with container:
        video = container.streams.video[0]
        video.thread_type = "AUTO"
        streams = [video]
        audio = _pick_audio(container) if audio_chunk_s else None
        if audio is not None:
            streams.append(audio)
        pickers = [_Picker(spec, video.time_base) for spec in frames]
        audio_feed = _AudioFeed(audio_chunk_s) if audio is not None else None
        origin: int | None = None  # pts of the first video frame: time zero

        try:
            for packet in container.demux(streams):
                try:
                    decoded = packet.decode()
                except av.error.FFmpegError:
                    stats.damaged_packets += 1
                    continue
                for frame in decoded:
                    if packet.stream.type == "video":
                        if frame.pts is None:
                            continue
                        if origin is None:
                            origin = frame.pts
                            if audio_feed is not None:
                                audio_feed.set_origin(float(origin * video.time_base))
                        stats.decoded_frames += 1
                        t = float((frame.pts - origin) * video.time_base)
                        stats.last_video_t = max(stats.last_video_t, t)
                        for picker in pickers:
                            if picker.wants(frame.pts - origin):
                                yield picker.sample(frame, t, info.rotation, jpeg_quality)
                    elif audio_feed is not None:
                        yield from audio_feed.push(frame)
        except av.error.FFmpegError as exc:
            stats.warnings.append(
                f"decoding stopped at {stats.last_video_t:.2f}s: {exc.strerror or exc}"
            )
        if origin is None:
            raise MediaError(f"{path}: video stream has no decodable frames (file truncated?)")
        if audio_feed is not None:
            yield from audio_feed.flush()

    if stats.damaged_packets:
        stats.warnings.append(f"{stats.damaged_packets} damaged packet(s) skipped while decoding")
    frame_gap = 1.0 / info.fps if info.fps else 0.1
    if info.duration_s - stats.last_video_t > max(1.0, 3 * frame_gap):
        stats.warnings.append(
            f"video frames end at {stats.last_video_t:.2f}s but the file claims "
            f"{info.duration_s:.2f}s (truncated or damaged file?)"
        )


class _Picker:
    """Chooses, scales, rotates and JPEG-encodes the frames of one FrameSpec."""

    def __init__(self, spec: FrameSpec, time_base: Fraction):
        self.spec = spec
        self._ticks_per_bucket = Fraction(1) / (time_base * Fraction(str(spec.fps)))
        self._last_bucket = -1
        self._count = 0

    def wants(self, pts_from_origin: int) -> bool:
        bucket = math.floor(pts_from_origin / self._ticks_per_bucket)
        if bucket <= self._last_bucket:
            return False
        self._last_bucket = bucket
        return True

    def sample(self, frame, t: float, rotation: int, quality: int) -> SampledFrame:
        from PIL import Image

        width, height = scaled_size(frame.width, frame.height, self.spec.long_side)
        image = frame.to_image(width=width, height=height)
        if rotation in _TRANSPOSE:
            image = image.transpose(getattr(Image.Transpose, _TRANSPOSE[rotation]))
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=quality)
        self._count += 1
        return SampledFrame(
            kind=self.spec.kind,
            index=self._count - 1,
            t=t,
            jpeg=buffer.getvalue(),
            width=image.width,
            height=image.height,
        )


class _AudioFeed:
    """Resamples decoded audio to 16 kHz mono (a proper downmix) and chunks it."""

    def __init__(self, chunk_s: float):
        import av

        self._resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
        self._chunk_s = chunk_s
        self._chunker: AudioChunker | None = None
        self._video_origin: float | None = None
        self._skip = 0  # samples before the first video frame, dropped
        self._pending: list = []  # audio decoded before the first video frame

    def set_origin(self, video_start: float) -> None:
        self._video_origin = video_start

    def push(self, frame) -> list[AudioChunk]:
        if self._video_origin is None:
            self._pending.append(frame)
            return []
        frames, self._pending = self._pending + [frame], []
        chunks: list[AudioChunk] = []
        for item in frames:
            chunks += self._feed(item)
        return chunks

    def flush(self) -> list[AudioChunk]:
        if self._video_origin is None:
            return []
        chunks = []
        for item in self._pending:
            chunks += self._feed(item)
        for out in self._resampler.resample(None):
            chunks += self._feed_samples(out.to_ndarray().reshape(-1))
        return chunks + (self._chunker.flush() if self._chunker else [])

    def _feed(self, frame) -> list[AudioChunk]:
        if self._chunker is None:
            start = (float(frame.time) if frame.time is not None else 0.0) - self._video_origin
            self._skip = max(0, round(-start * SAMPLE_RATE))
            self._chunker = AudioChunker(self._chunk_s, start=max(0.0, start))
        chunks = []
        for out in self._resampler.resample(frame):
            chunks += self._feed_samples(out.to_ndarray().reshape(-1))
        return chunks

    def _feed_samples(self, samples: np.ndarray) -> list[AudioChunk]:
        if self._skip:
            dropped = min(self._skip, len(samples))
            samples, self._skip = samples[dropped:], self._skip - dropped
        return self._chunker.feed(samples) if len(samples) else []


def _pick_audio(container):
    streams = list(container.streams.audio)
    if not streams:
        return None
    default = [s for s in streams if s.disposition & 1]  # AV_DISPOSITION_DEFAULT
    return (default or streams)[0]
