"""How many captions the caption policy makes for a video it has not seen. Pure.

The estimate replays the real policy (`captions.policy.CaptionPolicy`, what the pipeline's
caption gate runs) over pictured signatures: a static picture (min), a cut every
TYPICAL_SCENE_S with small motion in between (typical) and a picture that changes at every
candidate (max); or over a video's decoded candidates (exact).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import numpy as np
from pydantic import BaseModel

from ..captions.policy import CaptionPolicy, PolicySettings
from ..config import Settings
from ..plan import expected_frames

if TYPE_CHECKING:
    from .estimate import MediaFacts

# The "typical" caption count replays the policy on a picture with a hard cut every
# TYPICAL_SCENE_S and steady small motion in between (a change of TYPICAL_DRIFT_PER_S per
# second: above the duplicate threshold within a few seconds, far below a scene change).
TYPICAL_SCENE_S = 20.0
TYPICAL_DRIFT_PER_S = 0.004


class CaptionCounts(BaseModel):
    """Captions the policy makes for one video: bounds, and the exact count when the
    caption candidates were decoded."""

    candidates: int
    min: int
    typical: int
    max: int
    exact: int | None = None

    @property
    def chosen(self) -> int:
        return self.exact if self.exact is not None else self.typical


def policy_settings(settings: Settings) -> PolicySettings:
    # The same mapping the pipeline's caption gate uses.
    return PolicySettings(
        min_gap_s=settings.caption_min_gap_s,
        max_gap_s=settings.caption_max_gap_s,
        scene_threshold=settings.caption_scene_threshold,
        trigger_classes=tuple(settings.caption_trigger_classes),
        max_per_minute=settings.caption_max_per_minute,
    )


def count_captions(frames: Iterable[tuple[float, np.ndarray]], settings: Settings) -> int:
    """Captions the policy makes over (t, signature) candidates in time order. Trigger
    classes need detections, which an estimate does not have: none is ever visible."""
    policy = CaptionPolicy(policy_settings(settings))
    return sum(1 for t, signature in frames if policy.decide(t, signature, set()) is not None)


def caption_bounds(media: MediaFacts, settings: Settings) -> CaptionCounts:
    """min: a static picture; typical: a cut every 20 s with small motion in between;
    max: a picture that changes completely at every candidate. All three from the policy."""
    rate = min(settings.caption_fps, media.fps) if media.fps else settings.caption_fps
    n = expected_frames(media.duration_s, settings.caption_fps, media.fps)
    times = [i / rate for i in range(n)]
    static = np.full((8, 8), 0.5, np.float32)
    rng = np.random.default_rng(0)  # independent uniform grids differ by ~1/3: always a scene change
    return CaptionCounts(
        candidates=n,
        min=count_captions(((t, static) for t in times), settings),
        typical=count_captions(((t, _typical_signature(t)) for t in times), settings),
        max=count_captions(((t, rng.random((8, 8), np.float32)) for t in times), settings),
    )


def _typical_signature(t: float) -> np.ndarray:
    scene, into = divmod(t, TYPICAL_SCENE_S)
    base = 0.25 if scene % 2 == 0 else 0.75  # consecutive scenes differ by 0.5
    return np.full((8, 8), base + TYPICAL_DRIFT_PER_S * into, np.float32)
