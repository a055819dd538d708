"""Speaker clustering, once per video: embeddings in, one label per embedding out.

Average-linkage agglomerative clustering on cosine distance, cut at `threshold` unless a
speaker count is given (num, or the cut's count clamped to [min, max]). Clusters with
less than MIN_CLUSTER_S of speech, or MIN_CLUSTER_SHARE of all of it, are folded into
the nearest large one (a cough or windows where two voices mix are not a new person),
unless that would go below min_speakers.

Cost: linkage needs the n x n distances, so at most MAX_LINKED embeddings (evenly spread
over the video) are linked; the rest join their nearest centroid, O(n x k). A 3-hour
video (about 15,000 windows of speech at a 0.5 s step) thus links 3,000 windows (36 MB of
distances) and assigns the rest.
"""

from __future__ import annotations

import numpy as np

DEFAULT_THRESHOLD = 0.15  # cosine distance; tuned on generated conversations (docs/benchmarks.md)
MAX_LINKED = 3000
MIN_CLUSTER_S = 6.0
MIN_CLUSTER_SHARE = 0.01  # ... or under this share of all speech (mixed windows add up over hours)


def cluster(vectors: np.ndarray, weights: np.ndarray, threshold: float = DEFAULT_THRESHOLD,
            num: int | None = None, min_speakers: int | None = None, max_speakers: int | None = None) -> np.ndarray:
    """Labels 0..k-1, numbered by first appearance (row order). `weights`: seconds of
    speech each row speaks for."""
    n = len(vectors)
    if n == 0:
        return np.zeros(0, int)
    if n == 1:
        return np.zeros(1, int)
    unit = unit_rows(vectors)
    picked = np.unique(np.linspace(0, n - 1, min(n, MAX_LINKED)).round().astype(int))
    labels_picked = _linked(unit[picked], threshold, num, min_speakers, max_speakers)
    centroids = _centroids(unit[picked], labels_picked)
    labels = _nearest(unit, centroids)
    labels = fold_small(unit, labels, weights, num or min_speakers or 1)
    return _renumber(labels)


def _linked(unit: np.ndarray, threshold: float, num, lo, hi) -> np.ndarray:
    from scipy.cluster.hierarchy import fcluster, linkage
    from scipy.spatial.distance import pdist

    if len(unit) < 2:
        return np.zeros(len(unit), int)
    tree = linkage(pdist(unit, "cosine").clip(min=0), "average")
    if num:
        return fcluster(tree, min(num, len(unit)), "maxclust") - 1
    labels = fcluster(tree, threshold, "distance") - 1
    k = len(set(labels))
    want = min(max(k, lo or 1), hi or k, len(unit))
    return labels if want == k else fcluster(tree, want, "maxclust") - 1


def _centroids(unit: np.ndarray, labels: np.ndarray) -> np.ndarray:
    return np.stack([unit_mean(unit[labels == k]) for k in sorted(set(labels))])


def _nearest(unit: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    return np.argmax(unit @ centroids.T, axis=1)


def fold_small(unit: np.ndarray, labels: np.ndarray, weights: np.ndarray, keep_at_least: int) -> np.ndarray:
    """Clusters with under MIN_CLUSTER_S of speech join their nearest neighbour."""
    labels = labels.copy()
    while True:
        ids = sorted(set(labels))
        if len(ids) <= keep_at_least:
            return labels
        speech = {k: float(weights[labels == k].sum()) for k in ids}
        smallest = min(ids, key=speech.get)
        if speech[smallest] >= max(MIN_CLUSTER_S, MIN_CLUSTER_SHARE * float(weights.sum())):
            return labels
        rest = [k for k in ids if k != smallest]
        centroids = np.stack([unit_mean(unit[labels == k]) for k in rest])
        moved = np.flatnonzero(labels == smallest)
        labels[moved] = np.array(rest)[_nearest(unit[moved], centroids)]


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    """Each row scaled to length 1 (cosine similarity is then a dot product)."""
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-8)


def unit_mean(rows: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """The mean of `rows` (weighted, if weights are given), scaled to length 1."""
    mean = rows.mean(axis=0) if weights is None else (rows * weights[:, None]).sum(axis=0)
    return mean / max(float(np.linalg.norm(mean)), 1e-8)


def _renumber(labels: np.ndarray) -> np.ndarray:
    order: dict[int, int] = {}
    for label in labels:
        order.setdefault(int(label), len(order))
    return np.array([order[int(label)] for label in labels], int)


def centroids_of(vectors: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Unit centroid per label 0..k-1."""
    unit = unit_rows(vectors)
    return np.stack([unit_mean(unit[labels == k]) for k in range(int(labels.max()) + 1)]) if len(labels) else unit[:0]
