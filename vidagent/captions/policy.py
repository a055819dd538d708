"""When to caption: a pure function of what the pipeline has seen, so a cost estimate can
replay it and every caption in the report can say why it was made.

Candidates are the caption frames (default 1 per second). A candidate is captioned when
  - it is the first frame ("first");
  - the picture changed by at least `scene_threshold` since the last caption ("scene");
  - a trigger class is visible that was not in the last captioned frame ("trigger:<label>");
  - `max_gap_s` passed since the last caption and the picture is not a near-duplicate of it
    ("coverage");
and never sooner than `min_gap_s` after the last caption nor more than `max_per_minute`
times in any minute. A frame that only repeats the last captioned one is never captioned.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from ..media.signature import scene_distance


@dataclass(frozen=True)
class PolicySettings:
    min_gap_s: float = 2.0
    max_gap_s: float = 10.0
    scene_threshold: float = 0.12
    duplicate_threshold: float = 0.01
    trigger_classes: tuple[str, ...] = ()
    max_per_minute: int = 12


class CaptionPolicy:
    def __init__(self, settings: PolicySettings):
        self.settings = settings
        self._last_t: float | None = None
        self._last_signature: np.ndarray | None = None
        self._last_labels: frozenset[str] = frozenset()
        self._recent: deque[float] = deque()

    def decide(self, t: float, frame_signature: np.ndarray, labels: set[str]) -> str | None:
        """The reason to caption this frame, or None. Call in time order."""
        s = self.settings
        reason = self._reason(t, frame_signature, labels)
        if reason is None:
            return None
        while self._recent and self._recent[0] <= t - 60.0:
            self._recent.popleft()
        if len(self._recent) >= s.max_per_minute:
            return None
        self._recent.append(t)
        self._last_t, self._last_signature = t, frame_signature
        self._last_labels = frozenset(labels)
        return reason

    def _reason(self, t: float, frame_signature: np.ndarray, labels: set[str]) -> str | None:
        s = self.settings
        if self._last_t is None:
            return "first"
        gap = t - self._last_t
        if gap < s.min_gap_s:
            return None
        change = scene_distance(frame_signature, self._last_signature)
        if change < s.duplicate_threshold:
            return None
        if change >= s.scene_threshold:
            return "scene"
        appeared = sorted(set(s.trigger_classes) & (set(labels) - self._last_labels))
        if appeared:
            return f"trigger:{appeared[0]}"
        if gap >= s.max_gap_s:
            return "coverage"
        return None
