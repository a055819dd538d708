"""Pure: cut one video into segments at keyframes, and size them for the fleet.

A segment owns the video frames whose pts lie in [start_pts, end_pts) and the audio
between its two boundaries. Workers decode from the keyframe that starts their segment,
so the cuts are keyframes: nothing before a segment needs decoding to read it. The
sampling plan is the local path's (`plan.make_plan`): a frame is picked when it is the
first whose pts falls in a new 1/fps interval, counted from the video's first frame;
segments only divide the work (combine.py puts the picks back in one plan order).
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

# Below this a segment's fixed costs (its job's round trip, the seek to its keyframe, one
# GOP of lead-in at worst) are more than a tenth of its decoding at the measured speed
# (docs/benchmarks.md, segment benchmark).
MIN_SEGMENT_S = 10.0
MAX_SEGMENT_S = 600.0  # one job stays well inside RunPod's execution timeout
DEFAULT_WORKERS = 4  # when the endpoint's worker count cannot be learned


@dataclass(frozen=True)
class SegmentRange:
    index: int
    start_pts: int | None  # video: first pts owned (None: audio only)
    end_pts: int | None  # first pts not owned (None: to the end)
    start: float  # seconds from time zero
    end: float

    @property
    def label(self) -> str:
        return f"segment {self.index + 1} ({self.start:.1f}-{self.end:.1f}s)"


def segment_seconds(duration_s: float, workers: int, chosen: float | None = None) -> float:
    """`chosen` (the setting) when given; else one segment per worker, so the fleet finishes
    together, but none shorter than MIN_SEGMENT_S nor longer than MAX_SEGMENT_S."""
    if chosen:
        return chosen
    return min(MAX_SEGMENT_S, max(MIN_SEGMENT_S, duration_s / max(1, workers)))


def wanted_cuts(duration_s: float, length_s: float) -> list[float]:
    """Even cuts into the whole number of segments nearest `length_s` each (no sliver at the end)."""
    count = max(1, round(duration_s / length_s))
    return [duration_s * k / count for k in range(1, count)]


def plan_segments(duration_s: float, length_s: float, origin_pts: int = 0, time_base=None,
                  keyframes: tuple[int, ...] = ()) -> list[SegmentRange]:
    """Segments of about `length_s`: each wanted cut moves to the nearest keyframe (for
    video); two cuts on one keyframe become one. Audio-only media is cut where wanted."""
    cuts = wanted_cuts(duration_s, length_s)
    if time_base is None:  # audio only: every packet is a keyframe
        bounds = [0.0, *cuts, duration_s]
        return [SegmentRange(i, None, None, round(a, 6), round(b, 6))
                for i, (a, b) in enumerate(zip(bounds, bounds[1:]))]
    later = [k for k in keyframes if k > origin_pts]
    chosen: list[int] = []
    for cut in cuts:
        target = origin_pts + cut / float(time_base)
        i = bisect.bisect_left(later, target)
        near = min(later[max(0, i - 1): i + 1], key=lambda k: abs(k - target), default=None)
        if near is not None and (not chosen or near > chosen[-1]):
            chosen.append(near)
    starts = [origin_pts, *chosen]
    ends: list[int | None] = [*chosen, None]
    times = [0.0, *[float((k - origin_pts) * time_base) for k in chosen], duration_s]
    return [SegmentRange(i, s, e, round(times[i], 6), round(times[i + 1], 6))
            for i, (s, e) in enumerate(zip(starts, ends))]
