"""Events people read on a timeline, from tracks, transcript and captions (pure).

- appears: one per object; tracks of one label that follow each other within `gap_s`
  (never overlapping) are merged, since that is one object the detector lost briefly.
- crowd: a class with two or more objects visible at once, "3 cars visible 01:10–01:30".
- speech: each transcript segment.
- scene: each caption made because the picture changed.
"""

from __future__ import annotations

from ..timefmt import short_clock
from .model import Caption, Event, Track, Transcript

MERGE_GAP_S = 1.0
MIN_CROWD = 2


def span(start: float, end: float) -> str:
    return f"{short_clock(start)}–{short_clock(end)}"


def appearances(tracks: list[Track], gap_s: float = MERGE_GAP_S) -> list[Event]:
    events = []
    for label in sorted({t.label for t in tracks}):
        runs: list[list[float]] = []  # [start, end]
        for track in sorted((t for t in tracks if t.label == label), key=lambda t: t.first_seen):
            last = runs[-1] if runs else None
            if last and 0 <= track.first_seen - last[1] <= gap_s:
                last[1] = max(last[1], track.last_seen)
            else:
                runs.append([track.first_seen, track.last_seen])
        events += [
            Event(kind="appears", start=s, end=e, label=label, text=f"{label} appears {span(s, e)}")
            for s, e in runs
        ]
    return events


def crowds(tracks: list[Track], minimum: int = MIN_CROWD) -> list[Event]:
    """Spans where at least `minimum` objects of one label are visible together."""
    events = []
    for label in sorted({t.label for t in tracks}):
        mine = [t for t in tracks if t.label == label and t.last_seen > t.first_seen]
        edges = sorted({t.first_seen for t in mine} | {t.last_seen for t in mine})
        run: list[float] | None = None  # [start, end, most seen at once]
        for a, b in zip(edges, edges[1:]):
            count = sum(1 for t in mine if t.first_seen <= a and t.last_seen >= b)
            if count >= minimum:
                if run and run[1] == a:
                    run[1], run[2] = b, max(run[2], count)
                else:
                    if run:
                        events.append(_crowd(label, run))
                    run = [a, b, count]
        if run:
            events.append(_crowd(label, run))
    return events


def _crowd(label: str, run: list[float]) -> Event:
    start, end, count = run
    noun = label if label.endswith("s") else f"{label}s"
    return Event(kind="crowd", start=start, end=end, label=label,
                 text=f"{int(count)} {noun} visible {span(start, end)}")


def speech(transcript: Transcript) -> list[Event]:
    return [
        Event(kind="speech", start=s.start, end=s.end, label="speech", text=s.text.strip())
        for s in transcript.segments
        if s.text.strip()
    ]


def scene_changes(captions: list[Caption]) -> list[Event]:
    return [
        Event(kind="scene", start=c.t, end=c.t, label="scene", text=c.text.strip() or "scene change")
        for c in captions
        if c.reason == "scene"
    ]


def build_events(tracks: list[Track], transcript: Transcript, captions: list[Caption]) -> list[Event]:
    events = appearances(tracks) + crowds(tracks) + speech(transcript) + scene_changes(captions)
    return sorted(events, key=lambda e: (e.start, e.end, e.kind, e.label))
