"""What a report becomes in the index: moments and presence spans (pure).

A moment is a video, a time span and what is there: a speech segment (with its words when
the report has them), a caption with its structured fields, an event, an object track,
a summary sentence. Presence spans answer questions without words ("at least three
people in frame"): for each label and each count k, the spans where at least k objects
of that label are in the frame at once, from the per-frame detections.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..report.events import span
from ..timefmt import short_clock
from ..report.model import Report

KINDS = ("speech", "caption", "event", "object", "summary")
MAX_COUNT = 50  # presence is kept for k = 1..MAX_COUNT objects of a label at once
PRESENCE_GAP_S = 1.0
# Events that repeat what other moments hold: speech (the segments), scene (the captions),
# appears (the object tracks, which also carry the best frame).
_REPEATED_EVENTS = ("speech", "scene", "appears")  # a detector missing an object for up to a second is not an absence


@dataclass
class Moment:
    kind: str
    start: float
    end: float
    text: str
    label: str = ""
    at: float | None = None  # the instant to show: a track's best frame, a matching word
    detail: dict[str, Any] = field(default_factory=dict)
    id: int | None = None  # set by the store

    def __post_init__(self) -> None:
        if self.at is None:
            self.at = self.start


@dataclass(frozen=True)
class Presence:
    label: str
    k: int  # at least k objects of `label` in frame
    start: float
    end: float


def report_moments(report: Report) -> list[Moment]:
    moments = [_speech(s, report) for s in report.transcript.segments if s.text.strip()]
    moments += [_caption(c) for c in report.captions if c.text.strip()]
    moments += [
        Moment("event", e.start, e.end, e.text, label=e.label, detail={"event": e.kind})
        for e in report.events if e.kind not in _REPEATED_EVENTS
    ]
    moments += [
        Moment("object", k.first_seen, k.last_seen,
               f"{k.label} #{k.id} seen {span(k.first_seen, k.last_seen)}, best frame {short_clock(k.best_t)}",
               label=k.label, at=k.best_t,
               detail={"track": k.id, "frames": k.frames, "best_confidence": k.best_confidence, "best_box": k.best_box})
        for k in report.tracks
    ]
    moments += _summary(report)
    return sorted(moments, key=lambda m: (m.start, KINDS.index(m.kind)))


def _speech(segment, report: Report) -> Moment:
    """A speech moment's label is its speaker's name (searched with --speaker and as a word)."""
    detail = {}
    if segment.words:
        detail["words"] = [[w.word, w.start, w.end] for w in segment.words]
    if segment.speaker:
        detail["speaker"] = segment.speaker
        if segment.overlap:
            detail["overlap"] = [report.speaker_name(o) for o in segment.overlap]
    return Moment("speech", segment.start, segment.end, segment.text.strip(),
                  label=report.speaker_name(segment.speaker) or "", detail=detail)


def _caption(c) -> Moment:
    extras = []
    if c.actions:
        extras.append("actions: " + ", ".join(c.actions))
    if c.visible_text:
        extras.append("visible text: " + ", ".join(c.visible_text))
    if c.people_count is not None:
        extras.append(f"people: {c.people_count}")
    text = c.text.strip() + (f" ({'; '.join(extras)})" if extras else "")
    return Moment("caption", c.t, c.t, text,
                  detail={"reason": c.reason, "people_count": c.people_count, "actions": c.actions,
                          "visible_text": c.visible_text})


def _summary(report: Report) -> list[Moment]:
    whole = report.media.duration_s
    if report.summary_sentences:
        return [
            Moment("summary", min(s.times, default=0.0), max(s.times, default=whole), s.text,
                   detail={"times": s.times})
            for s in report.summary_sentences
        ]
    if report.summary:  # a report from before summaries carried their times
        return [Moment("summary", 0.0, whole, report.summary, detail={"times": []})]
    return []


def source_path(media_path: str) -> str:
    """The video's path as the index keeps it: a relative path (as analyze was given it)
    made absolute while it still points at the file, so it works from any folder later."""
    path = Path(media_path)
    return str(path.resolve()) if not path.is_absolute() and path.is_file() else media_path


def report_presence(report: Report) -> list[Presence]:
    """For each label and k, the spans with at least k objects in frame. A gap closes when
    it is under PRESENCE_GAP_S or one and a half detection steps, whichever is longer."""
    frames = sorted(report.detections, key=lambda d: d.t)
    steps = sorted(b.t - a.t for a, b in zip(frames, frames[1:]))
    # Sampled every `step` seconds, an object in two frames in a row was there in between.
    gap = max(PRESENCE_GAP_S, 1.5 * steps[len(steps) // 2]) if steps else PRESENCE_GAP_S
    per_label: dict[str, list[tuple[float, int]]] = {}
    for d in frames:
        for label, n in Counter(o.label for o in d.objects).items():
            per_label.setdefault(label, []).append((d.t, n))
    spans: list[Presence] = []
    for label in sorted(per_label):
        seen = per_label[label]  # frames with at least k of them, k = 1, 2, …
        for k in range(1, MAX_COUNT + 1):
            seen = [(t, n) for t, n in seen if n >= k]
            if not seen:
                break
            start = end = seen[0][0]
            for t, _ in seen[1:]:
                if t - end > gap:
                    spans.append(Presence(label, k, start, end))
                    start = t
                end = t
            spans.append(Presence(label, k, start, end))
    return spans
