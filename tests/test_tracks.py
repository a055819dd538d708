"""Tracks from per-frame boxes, and events from a known timeline (all pure, hand-built)."""

from __future__ import annotations

import pytest

from vidagent.report import tracks as tracking
from vidagent.report.events import build_events, crowds
from vidagent.timefmt import short_clock
from vidagent.report.model import Caption, DetectedObject, FrameDetections, Segment, Track, Transcript
from vidagent.report.tracks import assign, build_tracks, count_objects, iou, thin

FPS = 5.0


def box(cx: float, cy: float = 100.0, w: float = 40.0, h: float = 80.0) -> list[float]:
    return [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]


def obj(b: list[float], label: str = "person", class_id: int = 0, conf: float = 0.8) -> DetectedObject:
    return DetectedObject(label=label, class_id=class_id, confidence=conf, box=b)


def frames(n: int, make, start: float = 0.0) -> list[FrameDetections]:
    """n frames at FPS; make(i) gives frame i's objects."""
    return [FrameDetections(t=round(start + i / FPS, 3), objects=make(i)) for i in range(n)]


@pytest.fixture(params=["greedy", "hungarian"])
def matcher(request, monkeypatch):
    """Run each tracker test with the greedy matcher and, where scipy exists, Hungarian."""
    if request.param == "greedy":
        monkeypatch.setattr(tracking, "assign", tracking._greedy)
    else:
        pytest.importorskip("scipy", reason="scipy not installed: the greedy matcher is what runs here")
    return request.param


def ids_along(tracks: list[Track], label: str | None = None) -> list[int]:
    return [k.id for k in tracks if label is None or k.label == label]


def test_two_objects_crossing_keep_their_ids(matcher):
    # A walks right, B walks left; they overlap completely halfway (frame 10).
    def make(i):
        return [obj(box(100 + 10 * i), conf=0.9), obj(box(300 - 10 * i), conf=0.7)]

    tracks = build_tracks(frames(21, make))
    assert len(tracks) == 2
    a, b = tracks
    # Each track must end where its own object ends, not where the other one does.
    assert a.path[0][1] < b.path[0][1] and a.path[-1][1] > b.path[-1][1]
    assert a.frames == b.frames == 21
    assert count_objects(tracks) == {"person": 2}


def test_leaving_and_returning_within_the_buffer_keeps_the_id(matcher):
    present = [i for i in range(20) if not 5 <= i < 10]  # gone for 1 s (< 2 s buffer)
    detections = frames(20, lambda i: [obj(box(100))] if i in present else [])
    tracks = build_tracks(detections, buffer_s=2.0)
    assert len(tracks) == 1
    assert tracks[0].first_seen == 0.0 and tracks[0].last_seen == pytest.approx(19 / FPS)
    assert tracks[0].frames == len(present)


def test_a_gap_longer_than_the_buffer_gives_a_new_id(matcher):
    present = [i for i in range(30) if not 5 <= i < 20]  # gone for 3 s (> 2 s buffer)
    detections = frames(30, lambda i: [obj(box(100))] if i in present else [])
    tracks = build_tracks(detections, buffer_s=2.0)
    assert ids_along(tracks) == [1, 2]
    assert tracks[0].last_seen == pytest.approx(4 / FPS)
    assert tracks[1].first_seen == pytest.approx(20 / FPS)
    assert count_objects(tracks) == {"person": 2}  # the tracker cannot know it came back


def test_counts_are_distinct_objects_not_boxes(matcher):
    # Two cars for 4 s (40 boxes) and one person: 2 cars, 1 person.
    def make(i):
        return [obj(box(100, w=80, h=40), "car", 2), obj(box(400, w=80, h=40), "car", 2), obj(box(250), "person", 0)]

    tracks = build_tracks(frames(20, make))
    assert count_objects(tracks) == {"car": 2, "person": 1}


def test_classes_never_share_a_track(matcher):
    # The same box labelled car then truck is two objects to a report reader.
    detections = frames(4, lambda i: [obj(box(100), "car" if i < 2 else "truck", 2 if i < 2 else 7)])
    assert [k.label for k in build_tracks(detections)] == ["car", "truck"]


def test_best_frame_and_box_are_the_most_confident():
    confidences = [0.3, 0.5, 0.95, 0.4]
    detections = frames(4, lambda i: [obj(box(100 + 5 * i), conf=confidences[i])])
    (track,) = build_tracks(detections)
    assert track.best_t == pytest.approx(2 / FPS)
    assert track.best_box == box(110)
    assert track.best_confidence == 0.95


def test_long_paths_are_thinned_keeping_the_ends():
    detections = frames(500, lambda i: [obj(box(100 + 0.5 * i))])
    (track,) = build_tracks(detections, max_path=50)
    assert len(track.path) == 50 and track.frames == 500
    assert track.path[0][0] == 0.0 and track.path[-1][0] == pytest.approx(499 / FPS)
    assert thin([[1.0], [2.0]], 5) == [[1.0], [2.0]]


def test_iou_and_greedy_assignment():
    assert iou([0, 0, 10, 10], [0, 0, 10, 10]) == 1.0
    assert iou([0, 0, 10, 10], [20, 20, 30, 30]) == 0.0
    assert iou([0, 0, 10, 10], [5, 0, 15, 10]) == pytest.approx(1 / 3)
    # Greedy takes the best pair first; the leftover pair under the minimum is dropped.
    assert sorted(tracking._greedy([[0.9, 0.8], [0.85, 0.1]], 0.2)) == [(0, 0)]
    assert sorted(assign([[0.9, 0.0], [0.0, 0.7]], 0.2)) == [(0, 0), (1, 1)]
    assert assign([], 0.2) == []


def _track(id: int, label: str, start: float, end: float) -> Track:
    return Track(id=id, label=label, class_id=0, first_seen=start, last_seen=end, frames=2,
                 best_t=start, best_confidence=0.9, best_box=[0, 0, 1, 1])


def test_events_from_a_known_timeline():
    tracks = [
        _track(1, "person", 12.0, 30.0),
        _track(2, "person", 30.5, 45.0),  # 0.5 s after #1 ended: the same person, lost briefly
        _track(3, "person", 100.0, 101.0),
        _track(4, "car", 70.0, 90.0),
        _track(5, "car", 72.0, 95.0),
        _track(6, "car", 75.0, 85.0),
    ]
    transcript = Transcript(segments=[Segment(start=2.0, end=5.5, text=" Hello there. "), Segment(start=6, end=7, text=" ")])
    captions = [
        Caption(t=0.0, reason="first", text="A street.", structured=True),
        Caption(t=60.0, reason="scene", text="A car park.", structured=True),
    ]
    events = build_events(tracks, transcript, captions)
    by_kind = {}
    for e in events:
        by_kind.setdefault(e.kind, []).append(e)

    assert [(e.start, e.end, e.text) for e in by_kind["appears"] if e.label == "person"] == [
        (12.0, 45.0, "person appears 00:12–00:45"),
        (100.0, 101.0, "person appears 01:40–01:41"),
    ]
    assert [(e.start, e.end, e.text) for e in by_kind["crowd"]] == [(72.0, 90.0, "3 cars visible 01:12–01:30")]
    assert [(e.start, e.end, e.text) for e in by_kind["speech"]] == [(2.0, 5.5, "Hello there.")]
    assert [(e.start, e.text) for e in by_kind["scene"]] == [(60.0, "A car park.")]
    assert [e.start for e in events] == sorted(e.start for e in events)


def test_crowds_split_when_the_count_drops_below_two():
    tracks = [_track(1, "dog", 0, 10), _track(2, "dog", 2, 4), _track(3, "dog", 6, 8)]
    assert [(e.start, e.end) for e in crowds(tracks)] == [(2, 4), (6, 8)]
    assert crowds([_track(1, "dog", 0, 10)]) == []


def test_short_clock():
    assert short_clock(0) == "00:00"
    assert short_clock(75.9) == "01:15"
    assert short_clock(3725) == "1:02:05"
