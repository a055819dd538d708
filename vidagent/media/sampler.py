"""One decode pass per video: detection frames, caption frames and audio chunks.

Every packet is decoded once. `extract_frames()` decodes the video stream and yields the
sampled frames of every FrameSpec together; `soundtrack.extract_audio()` reads the audio
through a demuxer of its own and yields chunks, so it runs ahead of the (much slower)
video decoder; `extract()` gives both from one iterator. They are generators that hold a
few items at a time, so memory stays flat however long the video is.
A frame is picked for a stream when it is the first frame whose pts falls in a new
1/fps interval; its timestamp is its own pts, never `index / fps`.

Speed (docs/benchmarks.md): picked frames are scaled in YUV and JPEG-encoded straight from
the YUV planes (no RGB round trip) on an encoder thread while the decoder goes on, so the
whole pass costs about what decoding alone costs.
"""

from __future__ import annotations

import bisect
import os
import queue
import threading
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterator, Literal

import numpy as np

from ..errors import MediaError
from .audio import AudioChunk
from .jpeg import encode_jpeg, scaled_size
from .probe import MediaInfo, open_container
from .signature import signature
from .stats import ExtractStats

FrameKind = Literal["detect", "caption"]
_ENCODE_AHEAD = 8  # frames handed to the encoder thread before the decoder waits for it


@dataclass(frozen=True)
class FrameSpec:
    kind: FrameKind
    fps: float
    long_side: int


@dataclass(frozen=True)
class Window:
    """A stretch of the video stream for one segment (vidagent/segments): frames with pts in
    [start_pts, end_pts) in the stream's time_base; time zero stays the whole video's."""

    origin_pts: int
    start_pts: int
    end_pts: int | None = None


@dataclass(frozen=True)
class SampledFrame:
    kind: FrameKind
    index: int  # ordinal among frames of this kind
    t: float  # seconds from the video's first frame, from the frame's pts
    jpeg: bytes
    width: int  # of the JPEG, upright
    height: int
    signature: np.ndarray | None = None  # 8x8 luminance grid (captions/policy.py), caption frames
    pts: int | None = None  # in the video stream's time_base (segments match frames by it)


def extract(
    path: Path,
    info: MediaInfo,
    frames: list[FrameSpec],
    audio_chunk_s: float | None,
    jpeg_quality: int = 90,
    stats: ExtractStats | None = None,
    skip_unpicked: bool = True,
) -> Iterator[SampledFrame | AudioChunk]:
    """Frames and audio chunks from one iterator, for callers that want both at once.

    The audio is read on a thread of its own (`extract_audio`) and its chunks are yielded
    between frames as they become ready; the pipeline instead consumes the two generators
    separately, so that a busy endpoint on one never holds up the other.
    """
    video = extract_frames(path, info, frames, jpeg_quality, stats, skip_unpicked)
    if not audio_chunk_s or not info.has_audio:
        yield from video
        return
    from .soundtrack import extract_audio

    chunks = _Prefetch(extract_audio(path, info, audio_chunk_s, stats), name="audio", ahead=1)
    try:
        for frame in video:
            yield from chunks.ready()
            yield frame
        yield from chunks.rest()
    finally:
        chunks.close()


def extract_frames(
    path: Path,
    info: MediaInfo,
    frames: list[FrameSpec],
    jpeg_quality: int = 90,
    stats: ExtractStats | None = None,
    skip_unpicked: bool = True,
    cpus: int | None = None,
    window: Window | None = None,
) -> Iterator[SampledFrame]:
    """Sampled frames in decode order, as JPEG, from one pass over the video stream.

    This thread demuxes and decodes; picked frames are scaled and encoded on the `jpeg`
    pool while decoding goes on. Frames that nothing picks and nothing refers to are not
    decoded at all (`_SkipPlan`; `skip_unpicked=False` decodes every frame). With no
    FrameSpec the stream is only demuxed, to learn where its frames end (for the
    truncation warning). `cpus`: the cores this extraction may use (default: all the
    process may use). `window`: decode only that stretch, from the keyframe at its start;
    its pickers start afresh there, so they pick every frame the whole pass would pick in
    it, and at most one more per spec (the first frame, when the frame before the window
    already took its interval: segments/combine.py drops it); `pts` of each frame is kept.
    """
    import av

    stats = stats if stats is not None else ExtractStats()
    decode_threads, encode_threads = _thread_split(cpus or usable_cpus())
    container = open_container(path)
    encoder = ThreadPoolExecutor(encode_threads, thread_name_prefix="jpeg")
    pending: deque[Future] = deque()  # frames in decode order, some still being encoded
    try:
        video = container.streams.video[0]
        video.codec_context.thread_count = decode_threads
        if decode_threads > 1:
            video.thread_type = "AUTO"
        pickers = [_Picker(spec, video.time_base) for spec in frames]
        skips = _SkipPlan(pickers) if pickers and skip_unpicked else None
        sent = 0  # packets with a pts given to the decoder
        context = video.codec_context
        origin: int | None = None  # pts of the first video frame: time zero
        if window is not None:
            origin = window.origin_pts
            _seek_to(container, video, window)
        try:
            for packet in _lookahead(container.demux(video), skips):
                skip = skips is not None and origin is not None and not skips.needed(packet.pts, origin)
                # A packet that may never leave the decoder still says where the video ends.
                undecoded = skip or (not pickers and origin is not None)
                if undecoded and packet.pts is not None:
                    stats.last_video_t = max(stats.last_video_t, float((packet.pts - origin) * video.time_base))
                if not pickers and origin is not None:
                    continue  # nothing to sample: the first frame fixed time zero, the rest need no decoding
                if skip != (context.skip_frame == "NONREF"):
                    context.skip_frame = "NONREF" if skip else "DEFAULT"
                sent += packet.pts is not None
                try:
                    decoded = packet.decode()
                except av.error.InvalidDataError:
                    stats.damaged_packets += 1
                    if skips is not None:
                        skips.enabled = False  # a lost frame could make its successor the one to pick
                    continue
                past_end = False
                for frame in decoded:
                    if frame.pts is None:
                        continue
                    if window is not None and not window.start_pts <= frame.pts:
                        stats.decoded_frames += 1  # lead-in from an earlier keyframe
                        continue
                    if window is not None and window.end_pts is not None and frame.pts >= window.end_pts:
                        past_end = True
                        break
                    if origin is None:
                        origin = frame.pts
                    if skips is not None and not skips.knows(frame.pts):
                        skips.enabled = False  # frame and packet times disagree: judge nothing by them
                    stats.decoded_frames += 1
                    t = float((frame.pts - origin) * video.time_base)
                    stats.last_video_t = max(stats.last_video_t, t)
                    for picker in pickers:
                        index = picker.pick(frame.pts - origin)
                        if index is not None:
                            job = (frame, index, t, info.rotation, jpeg_quality)
                            pending.append(encoder.submit(picker.sample, *job))
                yield from _ready(pending, wait_beyond=_ENCODE_AHEAD)
                if past_end:
                    break
        except av.error.FFmpegError as exc:
            stats.warnings.append(
                f"decoding stopped at {stats.last_video_t:.2f}s: {exc.strerror or exc}"
            )
        if origin is None:
            raise MediaError(f"{path}: video stream has no decodable frames (file truncated?)")
        if skips is not None:
            stats.skipped_frames = max(0, sent - stats.decoded_frames - stats.damaged_packets)
        yield from _ready(pending, wait_beyond=0)
    finally:
        for item in pending:
            item.cancel()
        encoder.shutdown(wait=True)
        container.close()

    if stats.damaged_packets:
        stats.warnings.append(f"{stats.damaged_packets} damaged video packet(s) skipped while decoding")
    frame_gap = 1.0 / info.fps if info.fps else 0.1
    if (window is None or window.end_pts is None) and info.duration_s - stats.last_video_t > max(1.0, 3 * frame_gap):
        stats.warnings.append(
            f"video frames end at {stats.last_video_t:.2f}s but the file claims "
            f"{info.duration_s:.2f}s (truncated or damaged file?)"
        )


def _seek_to(container, video, window: Window) -> None:
    """Position the demuxer on a keyframe at or before the window's start. Seeking by an
    index's times can land after it (an index of dts, B-frames): then from the start."""
    if window.start_pts <= window.origin_pts:
        return
    container.seek(window.start_pts, stream=video, backward=True)
    first = next((f.pts for p in container.demux(video) for f in p.decode() if f.pts is not None), None)
    video.codec_context.flush_buffers()
    container.seek(window.start_pts if first is not None and first <= window.start_pts else window.origin_pts,
                   stream=video, backward=True)


def usable_cpus() -> int:
    """The cores this process may run on: its CPU affinity, capped by a cgroup CPU quota
    (a container limited to 2 CPUs on a 64-core host gets 2, not 64)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            cores = min(cores, max(1, int(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return max(1, cores)


def _thread_split(cores: int) -> tuple[int, int]:
    """(decoder threads, JPEG encoder threads). On 2 cores one of each measured fastest:
    frame-threaded decoding burns extra CPU that the encoder needs (docs/benchmarks.md)."""
    encoders = 1 if cores <= 4 else 2
    return max(1, cores - encoders), encoders


def _ready(pending: deque[Future], wait_beyond: int) -> Iterator[SampledFrame]:
    """Yield encoded frames in order; wait for those beyond the first `wait_beyond`."""
    while pending and (pending[0].done() or len(pending) > wait_beyond):
        yield pending.popleft().result()


def first_in_interval(spec: FrameSpec, time_base: Fraction, pts_from_origin: list[int]) -> list[int | None]:
    """The rule extract_frames picks by, over sorted frame times (pts from the first frame):
    each frame's index among this spec's frames, or None if it is not picked."""
    picker = _Picker(spec, time_base)
    return [picker.pick(pts) for pts in pts_from_origin]


class _Picker:
    """Picks the frames of one FrameSpec (decoder thread) and encodes them (encoder thread)."""

    def __init__(self, spec: FrameSpec, time_base: Fraction):
        self.spec = spec
        # bucket = floor(pts * time_base * fps), in exact integers: pts * num // den
        rate = time_base * Fraction(str(spec.fps))
        self._num, self._den = rate.numerator, rate.denominator
        self._last_bucket = -1
        self._count = 0

    def bucket(self, pts_from_origin: int) -> int:
        return pts_from_origin * self._num // self._den

    def pick(self, pts_from_origin: int) -> int | None:
        """The frame's index among this spec's frames if it is picked, else None."""
        bucket = self.bucket(pts_from_origin)
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
        return SampledFrame(self.spec.kind, index, t, jpeg, width, height, sig, frame.pts)


class _SkipPlan:
    """Which frames no FrameSpec will pick, judged from packet pts before decoding.

    A frame is picked when it is the first of a new 1/fps interval, so a frame whose
    predecessor in display order lies in the same interval for every spec is not needed.
    Its packet is decoded with skip_frame=NONREF: FFmpeg drops it unseen if no other frame
    refers to it (non-reference B-frames, about half of a typical x264 file) and decodes it
    as usual if one does. Picked frames are bit-identical either way; decoding a 10 fps
    sample of a 30 fps x264 clip takes ~30% less time (docs/benchmarks.md).
    Packets come in decode order: `_lookahead` shows the plan LOOKAHEAD packets ahead, so
    it has seen every frame that precedes a packet in display order.
    """

    LOOKAHEAD = 32  # packets; H.264 and HEVC reorder at most 16 frames
    _KEEP = 512  # pts remembered

    def __init__(self, pickers: list[_Picker]):
        self.pickers = pickers
        self.enabled = True
        self._seen: list[int] = []  # packet pts, sorted

    def saw(self, pts: int | None) -> None:
        if pts is not None:
            bisect.insort(self._seen, pts)
            if len(self._seen) > 2 * self._KEEP:
                del self._seen[: self._KEEP]

    def knows(self, pts: int) -> bool:
        i = bisect.bisect_left(self._seen, pts)
        return i < len(self._seen) and self._seen[i] == pts

    def needed(self, pts: int | None, origin: int) -> bool:
        if not self.enabled or pts is None:
            return True
        i = bisect.bisect_left(self._seen, pts)
        if i == 0:
            return True
        before = self._seen[i - 1] - origin
        return any(p.bucket(before) != p.bucket(pts - origin) for p in self.pickers)


def _lookahead(packets: Iterator, plan: _SkipPlan | None) -> Iterator:
    """The packets, each handed out once the plan has seen LOOKAHEAD packets past it."""
    if plan is None:
        yield from packets
        return
    window: deque = deque()
    for packet in packets:
        plan.saw(packet.pts)
        window.append(packet)
        if len(window) > plan.LOOKAHEAD:
            yield window.popleft()
    yield from window


@dataclass(frozen=True)
class _End:
    error: BaseException | None


class _Prefetch:
    """Runs a generator on a thread of its own, a few items ahead of its consumer."""

    def __init__(self, source: Iterator, name: str, ahead: int = 4):
        self._queue: queue.Queue = queue.Queue(ahead)
        self._stop = threading.Event()
        self._source = source
        self._finished = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        outcome = None
        try:
            for item in self._source:
                if not self._put(item):
                    return
        except BaseException as exc:  # re-raised in the consumer's thread
            outcome = exc
        finally:
            self._source.close()
        self._put(_End(outcome))

    def _put(self, item) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.2)
                return True
            except queue.Full:
                pass
        return False

    def ready(self) -> Iterator:
        """Items already produced; never waits."""
        while not self._finished:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            yield from self._unwrap(item)

    def rest(self) -> Iterator:
        """Every item still to come; waits for them."""
        while not self._finished:
            yield from self._unwrap(self._queue.get())

    def _unwrap(self, item) -> Iterator:
        if isinstance(item, _End):
            self._finished = True
            if item.error is not None:
                raise item.error
            return
        yield item

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
