"""Who spoke when, for one video: every chunk's speaker evidence clustered once.

Each chunk's whisper reply carries a `diarization` field (vidagent/workers/diarize.py) on
the chunk's clock. Here the chunks are moved onto the video clock, their embeddings
clustered together (cluster.py), so one voice has one label in every chunk, and turned
into speaker turns: offline, each window speaks for its span of a speech region (a lone
window that disagrees with both neighbours takes theirs); pyannote, its own turns under
their global label. Where the voice changes inside one stretch of speech (no pause), the
two are marked as overlapping for OVERLAP_REACH_S either side. Silence has no turn.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from ..workers.diarize import pack, unpack
from .cluster import DEFAULT_THRESHOLD, centroids_of, cluster, fold_small, unit_mean, unit_rows

OVERLAP_REACH_S = 0.5  # where the voice changes with no pause, both are heard this long either side
JOIN_GAP_S = 0.3  # a speaker's turns closer than this are one turn
PIECE_S = 3.0  # speech clustered in pieces this long: long enough to average out, short enough for one voice


@dataclass(frozen=True)
class Turn:
    start: float
    end: float
    speaker: int  # 0-based, numbered by first appearance


@dataclass
class ChunkSpeakers:
    """One chunk's `diarization` reply, with the chunk's start on the video clock and, for a
    chunk whose long silences were shortened, `time_at` (AudioChunk.time_at): seconds into
    its samples onto the clock."""

    offset: float
    reply: dict
    time_at: Callable[[float], float] | None = None

    def clock(self, t: Any) -> float:
        return self.time_at(float(t)) if self.time_at else self.offset + float(t)


def reply_on_clock(chunk: ChunkSpeakers, keep: tuple[float, float]) -> dict:
    """The chunk's reply with its times on the video clock, holding only the evidence whose
    middle falls in `keep` (a segment worker's stretch: its neighbour reports the rest).
    A segment worker sends its chunks' evidence so; the client reads each back as
    ChunkSpeakers(0.0, reply)."""
    reply = chunk.reply
    if "error" in reply:
        return dict(reply)
    lo, hi = keep

    def inside(a, b) -> bool:
        return lo <= (chunk.clock(a) + chunk.clock(b)) / 2 < hi

    def clipped(a, b) -> list[float] | None:
        a, b = max(lo, chunk.clock(a)), min(hi, chunk.clock(b))
        return [round(a, 3), round(b, 3)] if b > a else None

    out = {k: v for k, v in reply.items() if k not in ("windows", "embeddings", "speech", "turns")}
    out["speech"] = [span for a, b in reply.get("speech") or [] if (span := clipped(a, b))]
    if "windows" in reply:
        vectors = unpack(reply["embeddings"])
        held = [i for i, (a, b) in enumerate(reply["windows"]) if inside(a, b)]
        out["windows"] = [[round(chunk.clock(a), 3), round(chunk.clock(b), 3)]
                          for a, b in (reply["windows"][i] for i in held)]
        out["embeddings"] = pack(vectors[held]) if held else pack(vectors[:0])
    else:
        out["embeddings"] = reply["embeddings"]
        out["turns"] = [{**t, "start": span[0], "end": span[1]} for t in reply.get("turns") or []
                        if (span := clipped(t["start"], t["end"]))]
    return out


@dataclass
class Diarization:
    turns: list[Turn] = field(default_factory=list)
    count: int = 0
    backend: str | None = None
    model: str | None = None
    voices: dict[int, np.ndarray] = field(default_factory=dict)  # speaker -> unit mean embedding


def diarize_video(chunks: list[ChunkSpeakers], threshold: float = DEFAULT_THRESHOLD, num: int | None = None,
                  min_speakers: int | None = None, max_speakers: int | None = None) -> Diarization:
    """Raises ValueError/KeyError/TypeError for a reply of the wrong shape."""
    rows, spans, regions, local_turns = [], [], [], []
    backend = model = None
    for chunk in sorted(chunks, key=lambda c: c.offset):
        reply = chunk.reply
        backend, model = reply.get("backend", backend), reply.get("model", model)
        vectors = unpack(reply["embeddings"])
        if "windows" in reply:
            windows = reply["windows"]
            if len(windows) != len(vectors):
                raise ValueError("diarization: windows and embeddings differ in number")
            for (a, b), v in zip(windows, vectors):
                rows.append(v)
                spans.append((chunk.clock(a), chunk.clock(b), None))
        else:
            labels = reply.get("labels") or []
            if len(labels) != len(vectors):
                raise ValueError("diarization: labels and embeddings differ in number")
            base = len(rows)
            rows += list(vectors)
            spans += [(0.0, 0.0, label) for label in labels]
            index = {label: base + i for i, label in enumerate(labels)}
            local_turns += [(chunk.clock(t["start"]), chunk.clock(t["end"]), index[t["speaker"]])
                            for t in reply.get("turns") or [] if t["speaker"] in index]
        regions += [(chunk.clock(a), chunk.clock(b)) for a, b in reply.get("speech") or []]
    if not rows:
        return Diarization(backend=backend, model=model)
    vectors = np.stack(rows)
    if local_turns:
        weights = np.zeros(len(rows))
        for a, b, row in local_turns:
            weights[row] += b - a
    else:
        weights = np.array([b - a for a, b, _ in spans])
    if local_turns:
        labels = cluster(vectors, weights, threshold, num, min_speakers, max_speakers)
        turns = [Turn(a, b, int(labels[row])) for a, b, row in local_turns]
    else:
        labels = _window_labels(vectors, weights, spans, regions, threshold, num, min_speakers, max_speakers)
        turns = _window_turns(vectors, labels, spans, regions)
    turns = join(turns)
    order = first_appearance(turns)
    voices = {order[k]: _voice(vectors[labels == k], weights[labels == k]) for k in order}
    return Diarization([Turn(t.start, t.end, order[t.speaker]) for t in turns], len(order), backend, model, voices)


def _voice(rows: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """One speaker's voice: the mean of their unit embeddings, each weighted by the speech it
    stands for, as a unit vector (what --match-speakers compares across videos)."""
    return unit_mean(unit_rows(rows), np.maximum(weights, 1e-3))


def _window_labels(vectors, weights, spans, regions, threshold, num, lo, hi) -> np.ndarray:
    """Cluster the speech regions (each the mean of its windows: averaging many 1.6 s
    windows separates voices far better than one window does), then give every window
    the nearest of the resulting voices, so a region where the speaker changes is split."""
    piece_of = _pieces(spans, regions)
    unit = unit_rows(vectors)
    count = int(piece_of.max()) + 1
    means = np.stack([unit[piece_of == p].mean(axis=0) for p in range(count)])
    piece_labels = cluster(means, np.array([weights[piece_of == p].sum() for p in range(count)]),
                           threshold, num, lo, hi)
    per_window = piece_labels[piece_of]
    centroids = centroids_of(unit, per_window)
    # Windows where two voices mix can gather round a centroid of their own: too little
    # speech for a person, they join the nearest voice.
    return fold_small(unit, np.argmax(unit @ centroids.T, axis=1), weights, num or lo or 1)


def _pieces(spans, regions) -> np.ndarray:
    """Piece number per window: runs of consecutive windows of one speech region, at most
    PIECE_S long, so a piece rarely holds two voices (turns can follow without a pause)."""
    region_of = _region_index(spans, regions)
    out, piece, began = np.zeros(len(spans), int), -1, None
    for i, (a, _, _) in enumerate(spans):
        if i == 0 or region_of[i] != region_of[i - 1] or a - began >= PIECE_S:
            piece, began = piece + 1, a
        out[i] = piece
    return out


def _window_turns(vectors, labels, spans, regions) -> list[Turn]:
    labels = _smooth(labels, spans, regions)
    region_of = _region_index(spans, regions)
    turns = [Turn(round(a, 3), round(b, 3), int(labels[i])) for i, (a, b, _) in enumerate(spans)]
    for i in range(1, len(spans)):
        if region_of[i] == region_of[i - 1] and labels[i] != labels[i - 1]:
            # The voice changed with no pause: the next speaker began over the last one.
            change = spans[i][0]
            turns.append(Turn(round(change, 3), round(min(spans[i][1], change + OVERLAP_REACH_S), 3),
                              int(labels[i - 1])))
            turns.append(Turn(round(max(spans[i - 1][0], change - OVERLAP_REACH_S), 3), round(change, 3),
                              int(labels[i])))
    return turns


def _smooth(labels: np.ndarray, spans, regions) -> np.ndarray:
    """A window whose neighbours (same speech region) agree with each other but not with it
    takes their label: speaker turns last seconds, a window is 1.6 s of evidence."""
    out = labels.copy()
    region_of = _region_index(spans, regions)
    for i in range(1, len(labels) - 1):
        if region_of[i - 1] == region_of[i] == region_of[i + 1] and labels[i - 1] == labels[i + 1] != labels[i]:
            out[i] = labels[i - 1]
    return out


def _region_index(spans, regions) -> list[int]:
    starts = np.array([a for a, _ in sorted(regions)]) if regions else np.zeros(0)
    return [int(np.searchsorted(starts, (a + b) / 2, "right")) for a, b, _ in spans]


def join(turns: list[Turn]) -> list[Turn]:
    """One speaker's turns that touch or nearly touch become one; sorted by start."""
    by_speaker: dict[int, list[Turn]] = {}
    for turn in sorted(turns, key=lambda t: (t.speaker, t.start)):
        mine = by_speaker.setdefault(turn.speaker, [])
        if mine and turn.start - mine[-1].end < JOIN_GAP_S:
            mine[-1] = Turn(mine[-1].start, max(mine[-1].end, turn.end), turn.speaker)
        else:
            mine.append(turn)
    return sorted((t for mine in by_speaker.values() for t in mine), key=lambda t: (t.start, t.speaker))


def first_appearance(turns: list[Turn]) -> dict[int, int]:
    """Speaker label -> 0, 1, ... in the order they first speak."""
    order: dict[int, int] = {}
    for turn in turns:
        order.setdefault(turn.speaker, len(order))
    return order
