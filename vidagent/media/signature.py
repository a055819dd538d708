"""A picture's signature for scene-change tests: mean luminance of an 8x8 grid, 0..1."""

from __future__ import annotations

import numpy as np

SIGNATURE_GRID = 8


def signature(luma: np.ndarray) -> np.ndarray:
    """8x8 grid of mean luminance (0..1) of a greyscale picture: cheap, robust to noise."""
    n = SIGNATURE_GRID
    if min(luma.shape) < n:
        luma = np.repeat(np.repeat(luma, n, axis=0), n, axis=1)
    h, w = luma.shape[0] - luma.shape[0] % n, luma.shape[1] - luma.shape[1] % n
    grid = luma[:h, :w].reshape(n, h // n, n, w // n).mean(axis=(1, 3), dtype=np.float32)
    return grid / 255.0


def scene_distance(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).mean())
