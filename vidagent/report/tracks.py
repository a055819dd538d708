"""Link per-frame detections into object tracks (pure; no model, no video).

Detections come back from an endpoint as plain boxes, so tracking happens here on boxes
alone: IoU between each live track's box and the new boxes, assigned one-to-one per class
(Hungarian when scipy is installed, greedy by best IoU otherwise). A track's box is
predicted forward with its last velocity, so two objects that cross keep their ids.
A track unseen for longer than `buffer_s` seconds is closed; the same object coming back
later gets a new id.

ultralytics' BYTETracker was considered: it needs `lap` (and pip-installs it at import
when missing), counts its buffer in frames and matches across classes, and ultralytics is
not a client dependency, so a report could not be re-rendered without the `local` extra.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from .model import FrameDetections, Track

BUFFER_S = 2.0  # how long an unseen object may be gone and keep its id
MIN_IOU = 0.2  # below this a box is not the same object (10 fps and 2 fps both pass)
MAX_PATH_POINTS = 120  # keeps report.json small for long tracks


@dataclass
class _Live:
    id: int
    label: str
    class_id: int
    path: list[list[float]] = field(default_factory=list)  # [t, x1, y1, x2, y2]
    best: tuple[float, float, list[float]] = (-1.0, 0.0, [])  # confidence, t, box

    @property
    def last_t(self) -> float:
        return self.path[-1][0]

    def predicted(self, t: float) -> list[float]:
        """The last box moved on at the last velocity (no velocity until seen twice)."""
        last = self.path[-1]
        if len(self.path) < 2:
            return last[1:]
        prev = self.path[-2]
        dt = last[0] - prev[0]
        if dt <= 0:
            return last[1:]
        scale = (t - last[0]) / dt
        return [b + (b - a) * scale for a, b in zip(prev[1:], last[1:])]

    def add(self, t: float, box: list[float], confidence: float) -> None:
        self.path.append([t, *box])
        if confidence > self.best[0]:
            self.best = (confidence, t, list(box))


def iou(a: list[float], b: list[float]) -> float:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def assign(scores: list[list[float]], minimum: float) -> list[tuple[int, int]]:
    """One-to-one (row, column) pairs maximising the total score; pairs under `minimum` dropped."""
    if not scores or not scores[0]:
        return []
    try:
        import numpy as np
        from scipy.optimize import linear_sum_assignment
    except ImportError:
        return _greedy(scores, minimum)
    rows, cols = linear_sum_assignment(np.asarray(scores), maximize=True)
    return [(r, c) for r, c in zip(rows.tolist(), cols.tolist()) if scores[r][c] >= minimum]


def _greedy(scores: list[list[float]], minimum: float) -> list[tuple[int, int]]:
    pairs = sorted(
        ((s, r, c) for r, row in enumerate(scores) for c, s in enumerate(row) if s >= minimum),
        reverse=True,
    )
    used_rows, used_cols, chosen = set(), set(), []
    for _, r, c in pairs:
        if r not in used_rows and c not in used_cols:
            used_rows.add(r)
            used_cols.add(c)
            chosen.append((r, c))
    return chosen


def build_tracks(
    detections: list[FrameDetections],
    buffer_s: float = BUFFER_S,
    min_iou: float = MIN_IOU,
    max_path: int = MAX_PATH_POINTS,
) -> list[Track]:
    live: list[_Live] = []
    finished: list[_Live] = []
    next_id = 1
    for frame in sorted(detections, key=lambda d: d.t):
        t = frame.t
        # Close tracks gone too long before matching, so they cannot take a returning object.
        still = []
        for track in live:
            (still if t - track.last_t <= buffer_s else finished).append(track)
        live = still
        for class_id in sorted({o.class_id for o in frame.objects}):
            objects = [o for o in frame.objects if o.class_id == class_id]
            candidates = [track for track in live if track.class_id == class_id]
            # Score against the predicted box and the last box: a prediction can overshoot
            # when an object stops, and the last box alone loses fast movers.
            scores = [
                [max(iou(track.predicted(t), o.box), iou(track.path[-1][1:], o.box)) for o in objects]
                for track in candidates
            ]
            matched = set()
            for r, c in assign(scores, min_iou):
                candidates[r].add(t, objects[c].box, objects[c].confidence)
                matched.add(c)
            for c, obj in enumerate(objects):
                if c not in matched:
                    track = _Live(next_id, obj.label, obj.class_id)
                    track.add(t, obj.box, obj.confidence)
                    live.append(track)
                    next_id += 1
    finished += live
    return [_to_track(track, max_path) for track in sorted(finished, key=lambda k: k.id)]


def count_objects(tracks: list[Track]) -> dict[str, int]:
    """Distinct objects per label: tracks, not boxes summed over frames."""
    return dict(sorted(Counter(track.label for track in tracks).items()))


def thin(points: list[list[float]], limit: int) -> list[list[float]]:
    """At most `limit` points, evenly spaced, keeping the first and the last."""
    if len(points) <= limit or limit < 2:
        return points
    step = (len(points) - 1) / (limit - 1)
    return [points[round(i * step)] for i in range(limit)]


def _to_track(live: _Live, max_path: int) -> Track:
    confidence, best_t, best_box = live.best
    return Track(
        id=live.id,
        label=live.label,
        class_id=live.class_id,
        first_seen=live.path[0][0],
        last_seen=live.last_t,
        frames=len(live.path),
        best_t=best_t,
        best_confidence=round(confidence, 4),
        best_box=[round(v, 1) for v in best_box],
        path=[[round(v, 3 if i == 0 else 1) for i, v in enumerate(p)] for p in thin(live.path, max_path)],
    )
