"""Pure: the segments' results back on one timeline, in the local path's plan order.

Frames: each worker picked by the local rule from its own first frame, so together they
picked every frame the whole pass picks, plus at most one per spec at a segment's start
(when the frame before it had already taken that interval). Running the same rule over
the union, in pts order (`first_in_interval`), drops exactly those and numbers the rest
by their index in the plan.

Words: the boundary between two segments is where the earlier one says it cut (the
later one's own cut when the earlier failed); each keeps the words whose middle falls on
its side. A word both sides heard with the same text at the same time is kept once even
if the two disagreed on the boundary. The kept words are grouped into segments at pauses
as the local path groups them (tasks/transcribe.split_at_pauses).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np

from ..media.sampler import FrameSpec, SampledFrame, first_in_interval
from ..report.model import FrameDetections, Segment, Word
from ..tasks.transcribe import split_at_pauses


@dataclass
class Combined:
    detect_frames: list[SampledFrame] = field(default_factory=list)  # in plan order (jpeg empty)
    detections: list[FrameDetections] = field(default_factory=list)
    caption_frames: list[SampledFrame] = field(default_factory=list)
    segments: list[Segment] = field(default_factory=list)
    languages: list[tuple[str | None, float | None, float]] = field(default_factory=list)
    audio_chunks: int = 0
    silent_chunks: int = 0
    warnings: list[str] = field(default_factory=list)
    speakers: list[dict] = field(default_factory=list)  # diarization replies, times on the clock
    without_speakers: int = 0  # transcripts of an image that diarizes nothing (it predates speakers)


def combine(outputs: list[dict[str, Any] | None], specs: list[FrameSpec], time_base: Fraction | None,
            origin_pts: int, pause_s: float, keep_words: bool) -> Combined:
    """`outputs`: each segment's worker output in segment order, None where it failed."""
    got = Combined()
    for spec in specs:
        frames = _frames_of(outputs, spec.kind)
        if not frames or time_base is None:
            continue
        picks = first_in_interval(spec, time_base, [f["pts"] - origin_pts for f in frames])
        for frame, index in zip(frames, picks):
            if index is None:
                continue
            sampled = SampledFrame(spec.kind, index, frame["t"], _jpeg(frame), frame["width"], frame["height"],
                                   _signature(frame), frame["pts"])
            if spec.kind == "detect":
                got.detect_frames.append(sampled)
                got.detections.append(FrameDetections.model_validate(frame["detections"]))
            else:
                got.caption_frames.append(sampled)
    got.segments = _words(outputs, pause_s, keep_words)
    for output in outputs:
        if output is None:
            continue
        got.warnings += [w for w in output.get("warnings") or [] if w not in got.warnings]
        heard = output.get("transcript") or {}
        got.audio_chunks += int(heard.get("chunks", 0))
        got.silent_chunks += int(heard.get("silent_chunks", 0))
        got.languages += [(lang, prob, float(seconds)) for lang, prob, seconds in heard.get("languages", [])]
        if "speakers" in heard:
            got.speakers += heard["speakers"]
        elif heard.get("segments"):
            got.without_speakers += 1
    return got


def _frames_of(outputs, kind: str) -> list[dict]:
    seen: dict[int, dict] = {}
    for output in outputs:
        for frame in (output or {}).get("frames", []):
            if frame["kind"] == kind:
                seen.setdefault(int(frame["pts"]), frame)  # the earlier segment's, if two had it
    return [seen[p] for p in sorted(seen)]


def _jpeg(frame: dict) -> bytes:
    import base64

    data = frame.get("jpeg")
    return base64.b64decode(data) if data else b""


def _signature(frame: dict) -> np.ndarray | None:
    grid = frame.get("signature")
    return np.asarray(grid, dtype=np.float32) if grid is not None else None


# -- words --------------------------------------------------------------------------------


def boundaries(outputs: list[dict[str, Any] | None]) -> list[tuple[float, float]]:
    """Per segment, the [from, to) of the words it keeps."""
    heard = [(o or {}).get("transcript") for o in outputs]
    spans = []
    for i, mine in enumerate(heard):
        if mine is None:
            spans.append((0.0, 0.0))
            continue
        before = heard[i - 1] if i > 0 else None
        start = float("-inf") if i == 0 else float(before["cut_end"] if before else mine["cut_start"])
        end = float("inf") if i == len(heard) - 1 else float(mine["cut_end"])
        spans.append((start, end))
    return spans


def _words(outputs, pause_s: float, keep_words: bool) -> list[Segment]:
    kept: list[tuple[Word, int, dict]] = []  # word, segment, the Whisper segment it came in
    for i, ((lo, hi), output) in enumerate(zip(boundaries(outputs), outputs)):
        heard = (output or {}).get("transcript") or {}
        for raw in heard.get("segments", []):
            words = raw.get("words") or []
            if not words:  # no word times: the segment by its middle
                middle = (raw["start"] + raw["end"]) / 2
                if lo <= middle < hi:
                    kept.append((Word(word=" " + raw["text"], start=raw["start"], end=raw["end"]), i, raw))
                continue
            for word in words:
                middle = (word["start"] + word["end"]) / 2
                if lo <= middle < hi:
                    kept.append((Word.model_validate(word), i, raw))
    kept.sort(key=lambda item: (item[0].start, item[0].end))
    unique: list[tuple[Word, int, dict]] = []
    for item in kept:
        if unique and _same_word(unique[-1], item):
            continue
        unique.append(item)
    source = {id(word): raw for word, _, raw in unique}
    segments = []
    for group in split_at_pauses([word for word, _, _ in unique], pause_s):
        first = source[id(group[0])]
        segments.append(Segment(start=group[0].start, end=max(group[-1].end, group[0].start),
                                text="".join(w.word for w in group).strip(),
                                words=group if keep_words else None,
                                avg_logprob=first.get("avg_logprob"), no_speech_prob=first.get("no_speech_prob")))
    return segments


def _same_word(a: tuple[Word, int, dict], b: tuple[Word, int, dict]) -> bool:
    (wa, sa, _), (wb, sb, _) = a, b
    if sa == sb or _norm(wa.word) != _norm(wb.word):
        return False
    overlap = min(wa.end, wb.end) - max(wa.start, wb.start)
    return overlap > 0.5 * min(wa.end - wa.start, wb.end - wb.start)


def _norm(text: str) -> str:
    return re.sub(r"[^\w']+", "", text.lower())
