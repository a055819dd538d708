"""The caption gate: caption candidates wait until what grounds them is known.

A candidate frame is decided when the detections at its time (for trigger classes and
grounding) and the speech around it (for grounding) have come back, so the policy sees
the labels and the prompt can quote what was said. Decisions are made in time order.
Memory: at most one audio chunk's length of candidates waits.

Detection frames are known by their index in the sampling plan, never by their time: a
time read back from a job's result (rounded for the report) need not equal the time the
frame was sent with, and a frame whose answer is never matched would hold every later
candidate forever.
"""

from __future__ import annotations

import bisect
from collections import deque

from ..config import Settings
from ..media.audio import AudioChunk
from ..media.probe import MediaInfo
from ..media.sampler import SampledFrame
from ..report.model import FrameDetections, Segment
from ..tasks import caption
from .policy import CaptionPolicy, PolicySettings


class CaptionGate:
    """Holds caption candidates until what grounds them is known (the detections at their
    time, the speech around it), then runs the policy over them in time order."""

    DETECT_WINDOW_S = 0.5
    SPEECH_WINDOW_S = 5.0

    def __init__(self, settings: Settings, media: MediaInfo, audio_streams: int = 1):
        self.enabled = settings.caption and media.has_video
        self.policy = CaptionPolicy(
            PolicySettings(
                min_gap_s=settings.caption_min_gap_s,
                max_gap_s=settings.caption_max_gap_s,
                scene_threshold=settings.caption_scene_threshold,
                trigger_classes=tuple(settings.caption_trigger_classes),
                max_per_minute=settings.caption_max_per_minute,
            )
        )
        needs_labels = bool(settings.caption_trigger_classes) or settings.caption_grounding
        self.wait_for_detections = settings.detect and needs_labels
        self.wait_for_speech = (settings.transcribe and media.has_audio and settings.caption_grounding
                                and audio_streams > 0)
        self.grounding = settings.caption_grounding
        self._pending: deque[SampledFrame] = deque()
        self._detect_seen_until = -1.0
        # index -> time of each detection frame sent and not yet answered, in time order
        self._detect_outstanding: dict[int, float] = {}
        self._detections: dict[float, FrameDetections] = {}
        self._detection_times: list[float] = []
        # per audio stream: chunk index -> end time once done (None while in flight)
        self._chunks: list[dict[int, float | None]] = [{} for _ in range(max(1, audio_streams))]
        self._segments: list[Segment] = []
        self._extracted = False

    def offer(self, frame: SampledFrame) -> None:
        if self.enabled:
            self._pending.append(frame)

    def detect_frame_seen(self, frame: SampledFrame) -> None:
        self._detect_seen_until = frame.t
        self._detect_outstanding[frame.index] = frame.t

    def detections_done(self, frames: list[SampledFrame], found: list[FrameDetections] | None) -> None:
        """The answer for these frames came back (`found`, in their order), or never will (None)."""
        for i, frame in enumerate(frames):
            self._detect_outstanding.pop(frame.index, None)
            if found is not None:
                self._detections[frame.t] = found[i]
                bisect.insort(self._detection_times, frame.t)

    def chunk_seen(self, chunk: AudioChunk, stream: int = 0) -> None:
        self._chunks[stream][chunk.index] = None

    def chunk_done(self, chunk: AudioChunk, segments: list[Segment], stream: int = 0) -> None:
        self._chunks[stream][chunk.index] = chunk.end
        self._segments += segments

    def results_known(self, detections: list[FrameDetections], segments: list[Segment]) -> None:
        """Every detection and the whole transcript at once (the segment path, where the
        fleet decoded and the results come back together): all candidates become decidable."""
        for found in detections:
            self._detections[found.t] = found
            bisect.insort(self._detection_times, found.t)
        self._segments += segments
        self._extracted = True

    def extraction_done(self) -> None:
        self._extracted = True

    def waiting(self) -> int:
        return len(self._pending)

    def blocked_on(self) -> str:
        """What the first waiting candidate waits for, in words (for error messages)."""
        if not self._pending:
            return "nothing"
        t = self._pending[0].t
        reasons = []
        if self.wait_for_detections and not self._detections_known_at(t):
            reasons.append(f"{len(self._detect_outstanding)} detection frame(s)")
        if self.wait_for_speech and not self._speech_known_until(t + self.SPEECH_WINDOW_S):
            reasons.append("speech")
        return " and ".join(reasons) or "nothing"

    def release(self) -> list[tuple[SampledFrame, str | None, str]]:
        """(frame, reason or None, grounding text) for each candidate now decidable."""
        released = []
        while self._pending and self._known_at(self._pending[0].t):
            frame = self._pending.popleft()
            labels = self._labels_near(frame.t)
            reason = self.policy.decide(frame.t, frame.signature, labels)
            context = ""
            if reason is not None and self.grounding:
                near = self._nearest_detections(frame.t)
                context = caption.grounding(frame.t, near, self._segments, self.SPEECH_WINDOW_S)
            released.append((frame, reason, context))
        return released

    def _known_at(self, t: float) -> bool:
        if self.wait_for_detections and not self._detections_known_at(t):
            return False
        if self.wait_for_speech and not self._speech_known_until(t + self.SPEECH_WINDOW_S):
            return False
        return True

    def _detections_known_at(self, t: float) -> bool:
        horizon = t + self.DETECT_WINDOW_S
        if not self._extracted and self._detect_seen_until < horizon:
            return False
        # Frames are sent in time order, so the oldest outstanding one comes first.
        oldest = next(iter(self._detect_outstanding.values()), None)
        return oldest is None or oldest > horizon

    def _speech_known_until(self, t: float) -> bool:
        return all(self._stream_known_until(chunks, t) for chunks in self._chunks)

    def _stream_known_until(self, chunks: dict[int, float | None], t: float) -> bool:
        covered = 0.0
        for index in sorted(chunks):
            end = chunks[index]
            if end is None:
                return covered >= t
            covered = end
        return covered >= t or self._extracted

    def _nearest_detections(self, t: float) -> list[FrameDetections]:
        i = bisect.bisect_left(self._detection_times, t)
        near = self._detection_times[max(0, i - 1): i + 1]
        return [self._detections[x] for x in near]

    def _labels_near(self, t: float) -> set[str]:
        near = [d for d in self._nearest_detections(t) if abs(d.t - t) <= self.DETECT_WINDOW_S]
        return {obj.label for d in near for obj in d.objects}
