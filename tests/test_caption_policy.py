import numpy as np
import pytest

from vidagent.captions.policy import CaptionPolicy, PolicySettings
from vidagent.media.signature import scene_distance, signature

GREY = np.full((8, 8), 0.5, np.float32)


def shade(value: float) -> np.ndarray:
    return np.full((8, 8), value, np.float32)


def run(policy: CaptionPolicy, frames) -> list[tuple[float, str]]:
    """frames: (t, signature, labels) at 1 fps; returns (t, reason) of the captions made."""
    made = []
    for t, sig, labels in frames:
        reason = policy.decide(t, sig, set(labels))
        if reason:
            made.append((t, reason))
    return made


def test_static_scene_gets_one_caption_however_long():
    frames = [(float(t), GREY, ()) for t in range(600)]
    assert run(CaptionPolicy(PolicySettings()), frames) == [(0.0, "first")]


def test_slow_drift_gets_coverage_captions_at_the_max_gap():
    frames = [(float(t), shade(0.3 + t * 0.002), ()) for t in range(40)]
    made = run(CaptionPolicy(PolicySettings(max_gap_s=10)), frames)
    assert made == [(0.0, "first"), (10.0, "coverage"), (20.0, "coverage"), (30.0, "coverage")]


def test_scene_change_captions_at_once_but_not_sooner_than_min_gap():
    frames = [(0.0, shade(0.2), ()), (1.0, shade(0.8), ()), (2.0, shade(0.8), ()), (3.0, shade(0.2), ())]
    made = run(CaptionPolicy(PolicySettings(min_gap_s=2)), frames)
    assert made == [(0.0, "first"), (2.0, "scene")]  # the cut at 1.0 waits for the min gap


def test_trigger_class_appearance():
    frames = [(0.0, GREY, ()), (3.0, shade(0.52), ("person",)), (6.0, shade(0.54), ("person",)),
              (9.0, shade(0.9), ("car",)), (12.0, shade(0.92), ("person", "car"))]
    made = run(CaptionPolicy(PolicySettings(trigger_classes=("person",), max_gap_s=100)), frames)
    # 6.0: the person was already in the last caption; 12.0: it came back after a scene without it
    assert made == [(0.0, "first"), (3.0, "trigger:person"), (9.0, "scene"), (12.0, "trigger:person")]


def test_cap_per_minute():
    frames = [(float(t), shade((t // 2 % 2) * 0.9), ()) for t in range(0, 120, 2)]  # a cut every 2 s
    made = run(CaptionPolicy(PolicySettings(max_per_minute=5)), frames)
    per_minute = [sum(1 for t, _ in made if m * 60 <= t < (m + 1) * 60) for m in range(2)]
    assert per_minute == [5, 5]


def test_signature_and_distance():
    image = np.zeros((48, 64), np.uint8)
    image[:, 32:] = 255
    sig = signature(image)
    assert sig.shape == (8, 8) and sig[:, :4].max() == 0 and sig[:, 4:].min() == 1
    assert scene_distance(sig, sig) == 0
    assert scene_distance(sig, 1 - sig) == pytest.approx(1.0)
