"""One decode pass per video: detection frames, caption frames and audio chunks together.

`extract()` is a generator: it yields items as the decoder produces them and holds at most
one audio chunk and one frame in memory, so memory stays flat however long the video is.
A frame is picked for a stream when it is the first frame whose pts falls in a new
1/fps interval; its timestamp is its own pts, never `index / fps`.

Speed (docs/benchmarks.md): picked frames are scaled in YUV and JPEG-encoded straight from
the YUV planes (no RGB round trip) on an encoder thread while the decoder goes on, so the
whole pass costs about what decoding alone costs.
"""

from __future__ import annotations

import os
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Iterator, Literal

import numpy as np

from ..errors import MediaError
from .audio import SAMPLE_RATE, AudioChunk, AudioChunker
from .probe import MediaInfo, open_container
from .signature import signature

FrameKind = Literal["detect", "caption"]
_ENCODE_AHEAD = 8  # frames handed to the encoder thread before the decoder waits for it
_AUDIO_PACKETS_PER_TASK = 64  # handing over packets one by one costs more than decoding them


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
    signature: np.ndarray | None = None  # 8x8 luminance grid (captions/policy.py), caption frames


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
    """Items in decode order: frames (as JPEG) and audio chunks, from one pass over the file.

    This thread demuxes and decodes video; picked frames are encoded on the `jpeg` pool and
    audio packets are decoded and chunked on the `audio` thread, all in parallel.
    """
    import av

    stats = stats if stats is not None else ExtractStats()
    decode_threads, encode_threads = _thread_split(os.cpu_count() or 1)
    container = open_container(path)
    encoder = ThreadPoolExecutor(encode_threads, thread_name_prefix="jpeg")
    audio_worker = ThreadPoolExecutor(1, thread_name_prefix="audio")  # one: audio is sequential
    pending: deque[Future] = deque()  # results in decode order, some still being computed
    try:
        video = container.streams.video[0]
        video.codec_context.thread_count = decode_threads
        if decode_threads > 1:
            video.thread_type = "AUTO"
        streams = [video]
        audio = _pick_audio(container) if audio_chunk_s else None
        if audio is not None:
            streams.append(audio)
        pickers = [_Picker(spec, video.time_base) for spec in frames]
        audio_feed = _AudioFeed(audio_chunk_s, stats) if audio is not None else None
        origin: int | None = None  # pts of the first video frame: time zero

        try:
            audio_packets: list = []
            for packet in container.demux(streams):
                if packet.stream.type == "audio":
                    audio_packets.append(packet)
                    if len(audio_packets) >= _AUDIO_PACKETS_PER_TASK:
                        pending.append(audio_worker.submit(audio_feed.push, audio_packets))
                        audio_packets = []
                    continue
                if not pickers and origin is not None:
                    # Audio only: the first frame fixed time zero; the rest need no decoding.
                    if packet.pts is not None:
                        stats.last_video_t = max(stats.last_video_t, float((packet.pts - origin) * video.time_base))
                    continue
                try:
                    decoded = packet.decode()
                except av.error.InvalidDataError:
                    stats.damaged_packets += 1
                    continue
                for frame in decoded:
                    if frame.pts is None:
                        continue
                    if origin is None:
                        origin = frame.pts
                        if audio_feed is not None:
                            start = float(origin * video.time_base)
                            pending.append(audio_worker.submit(audio_feed.set_origin, start))
                    stats.decoded_frames += 1
                    t = float((frame.pts - origin) * video.time_base)
                    stats.last_video_t = max(stats.last_video_t, t)
                    for picker in pickers:
                        index = picker.pick(frame.pts - origin)
                        if index is not None:
                            job = (frame, index, t, info.rotation, jpeg_quality)
                            pending.append(encoder.submit(picker.sample, *job))
                yield from _ready(pending, wait_beyond=_ENCODE_AHEAD)
        except av.error.FFmpegError as exc:
            stats.warnings.append(
                f"decoding stopped at {stats.last_video_t:.2f}s: {exc.strerror or exc}"
            )
        if origin is None:
            raise MediaError(f"{path}: video stream has no decodable frames (file truncated?)")
        if audio_feed is not None:
            pending.append(audio_worker.submit(audio_feed.push, audio_packets))
            pending.append(audio_worker.submit(audio_feed.flush))
        yield from _ready(pending, wait_beyond=0)
    finally:
        for item in pending:
            item.cancel()
        encoder.shutdown(wait=True)
        audio_worker.shutdown(wait=True)
        container.close()

    if stats.damaged_packets:
        stats.warnings.append(f"{stats.damaged_packets} damaged packet(s) skipped while decoding")
    frame_gap = 1.0 / info.fps if info.fps else 0.1
    if info.duration_s - stats.last_video_t > max(1.0, 3 * frame_gap):
        stats.warnings.append(
            f"video frames end at {stats.last_video_t:.2f}s but the file claims "
            f"{info.duration_s:.2f}s (truncated or damaged file?)"
        )


def _thread_split(cores: int) -> tuple[int, int]:
    """(decoder threads, JPEG encoder threads). On 2 cores one of each measured fastest:
    frame-threaded decoding burns extra CPU that the encoder needs (docs/benchmarks.md)."""
    encoders = 1 if cores <= 4 else 2
    return max(1, cores - encoders), encoders


def _ready(pending: deque[Future], wait_beyond: int) -> Iterator[SampledFrame | AudioChunk]:
    """Yield finished results in order; wait for those beyond the first `wait_beyond`.

    A frame future holds one SampledFrame; an audio future a list of chunks (often empty).
    """
    while pending:
        head = pending[0]
        if not head.done() and len(pending) <= wait_beyond:
            return
        pending.popleft()
        result = head.result()
        if isinstance(result, list):
            yield from result
        elif result is not None:
            yield result


class _Picker:
    """Picks the frames of one FrameSpec (decoder thread) and encodes them (encoder thread)."""

    def __init__(self, spec: FrameSpec, time_base: Fraction):
        self.spec = spec
        # bucket = floor(pts * time_base * fps), in exact integers: pts * num // den
        rate = time_base * Fraction(str(spec.fps))
        self._num, self._den = rate.numerator, rate.denominator
        self._last_bucket = -1
        self._count = 0

    def pick(self, pts_from_origin: int) -> int | None:
        """The frame's index among this spec's frames if it is picked, else None."""
        bucket = pts_from_origin * self._num // self._den
        if bucket <= self._last_bucket:
            return None
        self._last_bucket = bucket
        self._count += 1
        return self._count - 1

    def sample(self, frame, index: int, t: float, rotation: int, quality: int) -> SampledFrame:
        """Runs on the encoder thread."""
        jpeg, planes = encode_jpeg(frame, self.spec.long_side, rotation, quality)
        height, width = planes[0].shape
        # The scene signature comes free from the luma plane already in hand.
        sig = signature(planes[0]) if self.spec.kind == "caption" else None
        return SampledFrame(self.spec.kind, index, t, jpeg, width, height, sig)


def encode_jpeg(frame, long_side: int, rotation: int, quality: int) -> tuple[bytes, list[np.ndarray]]:
    """Scale in YUV, convert to JPEG's full-range BT.601, rotate upright, encode the planes."""
    import simplejpeg

    width, height = scaled_size(frame.width, frame.height, long_side)
    small = frame.reformat(
        width=width,
        height=height,
        format="yuv420p",
        dst_colorspace="ITU601",
        src_color_range=frame.color_range or "MPEG",
        dst_color_range="JPEG",
        interpolation="BILINEAR",
        threads=1,
    )
    planes = _yuv_planes(small)
    if rotation:
        planes = [np.ascontiguousarray(np.rot90(p, rotation // 90)) for p in planes]
    return simplejpeg.encode_jpeg_yuv_planes(*planes, quality=quality), planes


def _yuv_planes(frame) -> list[np.ndarray]:
    planes = []
    for i, plane in enumerate(frame.planes):
        rows = frame.height if i == 0 else (frame.height + 1) // 2
        cols = frame.width if i == 0 else (frame.width + 1) // 2
        # Rows are padded to line_size; keep only the picture.
        planes.append(np.frombuffer(plane, np.uint8).reshape(rows, plane.line_size)[:, :cols])
    return planes


class _AudioFeed:
    """Decodes audio packets, resamples to 16 kHz mono (a proper downmix) and chunks.

    Runs on one thread of its own; calls arrive in demux order. Audio decoded before the
    first video frame's time is known waits, then samples before time zero are dropped.
    """

    def __init__(self, chunk_s: float, stats: ExtractStats):
        import av

        self._resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
        self._chunk_s = chunk_s
        self._stats = stats
        self._chunker: AudioChunker | None = None
        self._video_origin: float | None = None
        self._skip = 0  # samples before the first video frame, still to drop
        self._waiting: list = []  # frames decoded before the origin was known

    def set_origin(self, video_start: float) -> list[AudioChunk]:
        self._video_origin = video_start
        waiting, self._waiting = self._waiting, []
        return [chunk for frame in waiting for chunk in self._feed(frame)]

    def push(self, packets: list) -> list[AudioChunk]:
        """Chunks completed by these packets (often none)."""
        import av

        frames = []
        for packet in packets:
            try:
                frames += packet.decode()
            except av.error.InvalidDataError:
                self._stats.damaged_packets += 1
        if self._video_origin is None:
            self._waiting += frames
            return []
        return [chunk for frame in frames for chunk in self._feed(frame)]

    def flush(self) -> list[AudioChunk]:
        if self._video_origin is None or self._chunker is None:
            return []
        chunks = []
        for out in self._resampler.resample(None):
            chunks += self._feed_samples(out.to_ndarray().reshape(-1))
        return chunks + self._chunker.flush()

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
