#!/usr/bin/env python3
"""Search latency on an index the size of 10,000 hours of video, against the bare FTS5 query.

    python scripts/bench_search.py [--hours 10000] [--index /tmp/bench-search.sqlite] [--queries 300]

Builds (once; reused while --hours and --seed match) an index from synthetic reports
through the real `IndexStore.add`: 30-minute videos with a speech segment every ~5 s
(words drawn from a Zipf-distributed vocabulary of 20,000), a caption every 10 s, object
tracks and crowd events, and detection frames every 2 s (person and car counts that wander,
for --label/--min-count). Then times `store.search` per kind of query, in-process (what
`vidagent search` does after start-up), and the floor: the same FTS5 MATCH ranked by
bm25 with LIMIT, on a bare sqlite3 connection, no joins, no highlighting.
Prints p50/p95 per kind and overall, and the ratio to the floor. The index file is read
once first, so that it is in the page cache (--cold: not).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sqlite3
import statistics
import sys
import time
from pathlib import Path

from vidagent.index import Query, open_index
from vidagent.index.query import fts5_match, terms
from vidagent.report.model import (Caption, DetectedObject, Event, FrameDetections, Report, Segment, Track,
                                   Transcript)

VIDEO_S = 1800.0
VOCABULARY = 20_000
LIMIT = 20
_STEPS = (-1,) + (0,) * 58 + (1,)
_PERSON = DetectedObject.model_construct(label="person", class_id=0, confidence=0.8, box=[0, 0, 1, 1])
_CAR = DetectedObject.model_construct(label="car", class_id=2, confidence=0.8, box=[0, 0, 1, 1])
_SYLLABLES = [c + v for c in "bcdfghjklmnprstvwz" for v in "aeiou"] + ["th", "st", "ch", "sh"]


def vocabulary(rng: random.Random) -> list[str]:
    words: list[str] = []
    seen = set()
    while len(words) < VOCABULARY:
        word = "".join(rng.choice(_SYLLABLES) for _ in range(rng.choice((1, 2, 2, 3, 3, 4))))
        if word not in seen and len(word) > 2:
            seen.add(word)
            words.append(word)
    return words


class Text:
    """Sentences of Zipf-distributed words: a few very common, most rare, as in speech."""

    def __init__(self, rng: random.Random, words: list[str]):
        self.rng, self.words = rng, words
        weights = [1 / (rank + 1) ** 1.07 for rank in range(len(words))]
        total = sum(weights)
        self.cumulative, running = [], 0.0
        for w in weights:
            running += w / total
            self.cumulative.append(running)

    def sentence(self, n: int) -> str:
        picks = self.rng.choices(self.words, cum_weights=self.cumulative, k=n)
        return " ".join(picks).capitalize() + "."


def synthetic_report(number: int, text: Text, rng: random.Random) -> Report:
    """A 30-minute video's report, built without validation (it is the index under test)."""
    segments, t = [], rng.uniform(0, 3)
    while t < VIDEO_S - 8:
        length = rng.uniform(2, 6)
        segments.append(Segment.model_construct(start=round(t, 2), end=round(t + length, 2),
                                                text=text.sentence(rng.randint(6, 16)), words=None))
        t += length + rng.uniform(0.2, 1.5)
    captions = [Caption.model_construct(t=float(c), reason="coverage", text=text.sentence(rng.randint(8, 14)),
                                        people_count=None, actions=[], visible_text=[], structured=False)
                for c in range(0, int(VIDEO_S), 10)]
    detections, people, cars = [], 1, 0
    for f in range(0, int(VIDEO_S), 2):
        # Counts change about once a minute each way: scenes, not detector flicker.
        people = max(0, min(8, people + rng.choice(_STEPS)))
        cars = max(0, min(5, cars + rng.choice(_STEPS)))
        detections.append(FrameDetections.model_construct(t=float(f), objects=[_PERSON] * people + [_CAR] * cars))
    labels = ["person", "car", "truck", "dog", "bicycle", "forklift", "boat", "chair"]
    tracks = []
    for i in range(60):
        start = rng.uniform(0, VIDEO_S - 30)
        label = rng.choice(labels)
        tracks.append(Track.model_construct(id=i, label=label, class_id=0, first_seen=round(start, 2),
                                            last_seen=round(start + rng.uniform(2, 30), 2), frames=10,
                                            best_t=round(start + 1, 2), best_confidence=0.9, best_box=[0, 0, 1, 1],
                                            path=[]))
    events = [Event.model_construct(kind="crowd", start=k.first_seen, end=k.last_seen, label=k.label,
                                    text=f"3 {k.label}s visible") for k in tracks[:20]]
    media = {"path": f"/archive/cam{number % 50:02d}/video{number:05d}.mp4", "file_name": f"video{number:05d}.mp4",
             "size_bytes": 1, "duration_s": VIDEO_S, "start_time_s": 0.0, "width": 1280, "height": 720,
             "coded_width": 1280, "coded_height": 720, "rotation": 0, "fps": 30.0, "has_audio": True}
    from vidagent.media.probe import MediaInfo

    return Report.model_construct(
        vidagent_version="bench", created_at="", media=MediaInfo.model_construct(**media), settings={},
        models={}, detections=detections, transcript=Transcript.model_construct(language="en", segments=segments),
        captions=captions, summary=None, summary_sentences=[], tracks=tracks, events=events, object_counts={},
        warnings=[], timings={}, usage={},
    )


def build(index: Path, hours: float, seed: int) -> None:
    stamp = index.with_suffix(".json")
    wanted = {"hours": hours, "seed": seed, "video_s": VIDEO_S}
    if index.exists() and stamp.exists() and json.loads(stamp.read_text()) == wanted:
        print(f"reusing {index} ({index.stat().st_size / 1e9:.1f} GB)")
        return
    for leftover in (index, index.with_name(index.name + "-wal"), index.with_name(index.name + "-shm"), stamp):
        leftover.unlink(missing_ok=True)
    rng = random.Random(seed)
    text = Text(rng, vocabulary(rng))
    videos = int(hours * 3600 / VIDEO_S)
    store = open_index(index)
    started, moments = time.perf_counter(), 0
    for number in range(videos):
        moments += store.add(Path(f"/archive/reports/video{number:05d}/report.json"), synthetic_report(number, text, rng))
        if (number + 1) % 500 == 0:
            rate = moments / (time.perf_counter() - started)
            print(f"  {number + 1}/{videos} videos, {moments:,} moments, {rate:,.0f} moments/s", file=sys.stderr)
    store.close()
    stamp.write_text(json.dumps(wanted))
    print(f"built {index}: {videos:,} videos ({hours:,.0f} h), {moments:,} moments, "
          f"{index.stat().st_size / 1e9:.1f} GB in {time.perf_counter() - started:.0f} s")


def query_mix(seed: int, n: int) -> dict[str, list[Query]]:
    """What people type: mostly specific words (uniform over the vocabulary's ranks), some
    pairs, prefixes, filters, frequent words; and, apart, a top-20 word alone (in English
    those are "the", "and", "you": dropped from queries with other words, a worst case)."""
    rng = random.Random(seed)
    words = vocabulary(random.Random(seed))  # the same vocabulary, by rank (rank 0 most common)
    specific = lambda: rng.choice(words[200:])  # noqa: E731
    return {
        "one word": [Query(specific(), limit=LIMIT) for _ in range(n)],
        "two words (AND)": [Query(f"{rng.choice(words[20:2000])} {rng.choice(words[20:2000])}", limit=LIMIT)
                            for _ in range(n)],
        "prefix": [Query(specific()[:4] + "*", limit=LIMIT) for _ in range(n)],
        "word + 3+ people": [Query(specific(), label="person", min_count=3, limit=LIMIT) for _ in range(n)],
        "word + video glob": [Query(specific(), video_glob="/archive/cam07/*", limit=LIMIT) for _ in range(n)],
        "5+ people (no words)": [Query(label="person", min_count=5, limit=LIMIT) for _ in range(max(10, n // 10))],
        "captions of one camera": [Query(kinds=("caption",), video_glob=f"/archive/cam{rng.randrange(50):02d}/*",
                                         limit=LIMIT) for _ in range(max(10, n // 10))],
        "frequent word (20-200)": [Query(rng.choice(words[20:200]), limit=LIMIT) for _ in range(max(10, n // 10))],
        "top-20 word alone": [Query(rng.choice(words[:20]), limit=LIMIT) for _ in range(max(10, n // 10))],
    }


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def floor_ms(db: sqlite3.Connection, q: Query) -> float | None:
    found = terms(q.text)
    if not found:
        return None
    started = time.perf_counter()
    db.execute("SELECT rowid FROM moments_fts WHERE moments_fts MATCH ? ORDER BY rank LIMIT ?",
               (fts5_match(found), LIMIT)).fetchall()
    return (time.perf_counter() - started) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=10_000)
    parser.add_argument("--index", type=Path, default=Path("/tmp/bench-search.sqlite"))
    parser.add_argument("--queries", type=int, default=300, help="per kind of query")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--cold", action="store_true", help="do not read the index into the page cache first")
    args = parser.parse_args()
    build(args.index, args.hours, args.seed)

    if not args.cold:  # the file in the page cache, as on a machine that searches it often
        with open(args.index, "rb") as handle:
            while handle.read(1 << 24):
                pass
    store = open_index(args.index, create=False)
    floor_db = sqlite3.connect(args.index)
    mix = query_mix(args.seed, args.queries)
    for q in [q for qs in mix.values() for q in qs[:5]]:  # warm the page cache and the statements
        store.search(q)
    everything, floors, ours_with_floor = [], [], []
    load = os.getloadavg()
    print(f"index {args.index.stat().st_size / 1e9:.1f} GB, {'cold' if args.cold else 'read into the page cache'}; "
          f"load average {load[0]:.1f} on {os.cpu_count()} cores")
    print(f"\n{'query':<22} {'n':>5} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} {'floor p50':>10} {'hits':>6}")
    for kind, qs in mix.items():
        times, kind_floor, hits = [], [], 0
        for q in qs:
            started = time.perf_counter()
            hits += len(store.search(q))
            ms = (time.perf_counter() - started) * 1000
            times.append(ms)
            f = floor_ms(floor_db, q) if not (q.label or q.video_glob) else None
            if f is not None:
                kind_floor.append(f)
                floors.append(f)
                ours_with_floor.append(ms)
        if kind != "top-20 word alone":
            everything += times
        floor_text = f"{statistics.median(kind_floor):.2f}" if kind_floor else "-"
        print(f"{kind:<22} {len(qs):>5} {percentile(times, 50):>8.2f} {percentile(times, 95):>8.2f} "
              f"{max(times):>8.2f} {floor_text:>10} {hits / len(qs):>6.1f}")
    print(f"\nall but the top-20 words: {len(everything)} queries, p50 {percentile(everything, 50):.2f} ms, "
          f"p95 {percentile(everything, 95):.2f} ms (target p95 < 100 ms)")
    print(f"vidagent search / bare FTS5 query (same queries): p50 "
          f"{percentile(ours_with_floor, 50) / percentile(floors, 50):.2f}x, p95 "
          f"{percentile(ours_with_floor, 95) / percentile(floors, 95):.2f}x")
    store.close()


if __name__ == "__main__":
    main()
