"""The SQLite index: what a report becomes, ranking and filters on fixture reports with
known answers (tests/index_fixtures.py), refreshing, and concurrent writer processes."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from index_fixtures import harbour, write_reports
from vidagent.errors import IndexStoreError
from vidagent.index import Query, open_index, report_moments, report_presence
from vidagent.index.refresh import refresh
from vidagent.report.reader import read_report

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def indexed(tmp_path):
    paths = write_reports(tmp_path)
    store = open_index(tmp_path / "index.sqlite")
    refresh(store, [tmp_path])
    yield store, paths
    store.close()


def found(store, **query) -> list[tuple]:
    return [(h.video.name, h.moment.kind, h.moment.start) for h in store.search(Query(**query))]


# -- what goes in -------------------------------------------------------------------------


def test_a_report_becomes_moments_of_every_kind(tmp_path):
    moments = report_moments(harbour(tmp_path))
    kinds = {(m.kind, m.start) for m in moments}
    assert {("speech", 10.0), ("speech", 20.0), ("speech", 40.0), ("speech", 50.0), ("caption", 30.0),
            ("caption", 46.0)} <= kinds
    caption = next(m for m in moments if m.kind == "caption" and m.start == 30.0)
    assert "driving" in caption.text and "EXIT 3" in caption.text and caption.detail["people_count"] == 1
    forklift = [m for m in moments if m.kind == "object" and m.label == "forklift"]
    assert [(m.start, m.end) for m in forklift] == [(28.0, 35.0)] and forklift[0].detail["best_box"]
    events = {m.detail["event"] for m in moments if m.kind == "event"}
    assert events == {"crowd"}  # speech, scene and appears events repeat other moments
    speech = next(m for m in moments if m.kind == "speech" and m.start == 10.0)
    assert speech.detail["words"][1] == [" lighthouse", 10.8, 11.5]


def test_presence_spans_count_objects_in_frame(tmp_path):
    spans = {(p.label, p.k): (p.start, p.end) for p in report_presence(harbour(tmp_path))}
    assert spans[("person", 1)] == (0.0, 40.0)
    assert spans[("person", 3)] == (30.0, 40.0)
    assert ("person", 4) not in spans
    assert spans[("forklift", 1)] == (28.0, 35.0)


def test_presence_gaps_are_measured_in_detection_steps(tmp_path):
    """Sampled every 2 s, a person in consecutive frames was there all along; a missing
    frame (4 s) still is a gap."""
    from vidagent.report.model import DetectedObject, FrameDetections

    r = harbour(tmp_path)
    person = DetectedObject(label="person", class_id=0, confidence=0.9, box=[0, 0, 10, 10])
    seen = [0, 2, 4, 6, 12, 14]
    r.detections = [FrameDetections(t=float(t), objects=[person] if t in seen else []) for t in range(0, 16, 2)]
    assert [(p.start, p.end) for p in report_presence(r)] == [(0.0, 6.0), (12.0, 14.0)]


# -- ranking and filters ------------------------------------------------------------------


def test_a_spoken_word_is_found_at_the_word(indexed):
    store, _ = indexed
    [hit] = store.search(Query("lighthouse"))
    assert (hit.video.name, hit.moment.kind, hit.moment.start, hit.moment.end) == ("harbour.mp4", "speech", 10.0, 14.0)
    assert hit.moment.at == 10.8  # the word's own time
    assert [hit.moment.text[a:b] for a, b in hit.highlights] == ["lighthouse"]


def test_more_matches_rank_higher_and_all_words_must_match(indexed):
    store, _ = indexed
    hits = store.search(Query("contract"))
    assert [(h.video.name, h.moment.start) for h in hits][0] == ("office.mp4", 12.0)  # said twice there
    assert {(h.video.name, h.moment.start) for h in hits} == {("office.mp4", 12.0), ("office.mp4", 5.0),
                                                               ("harbour.mp4", 20.0)}
    assert [h.score for h in hits] == sorted(h.score for h in hits)
    assert found(store, text="contract penalty") == [("office.mp4", "speech", 12.0)]
    assert found(store, text="contract lighthouse") == []


def test_stems_phrases_prefixes(indexed):
    store, _ = indexed
    assert found(store, text="light") == [("harbour.mp4", "speech", 40.0)]  # "lights", not "lighthouse"
    assert set(found(store, text="light*")) == {("harbour.mp4", "speech", 10.0), ("harbour.mp4", "speech", 40.0)}
    assert found(store, text='"went out"') == [("harbour.mp4", "speech", 40.0)]
    assert found(store, text='"out went"') == []


def test_query_text_is_never_full_text_syntax(indexed):
    store, _ = indexed
    for text in ('NOT "contract', "contract OR", "contract -penalty", "(contract", "contract:*", "NEAR(a b)", "'"):
        store.search(Query(text))  # no syntax error reaches the user
    assert {h.moment.start for h in store.search(Query("contract -penalty"))} == {12.0}  # a word, not NOT


def test_label_and_count_filters(indexed):
    store, _ = indexed
    assert set(found(store, text="forklift")) == {("harbour.mp4", "caption", 30.0), ("harbour.mp4", "object", 28.0),
                                                  ("street.mp4", "speech", 8.0)}
    # A forklift near a person: only where people are in frame (not the street).
    assert set(found(store, text="forklift", label="person")) == {("harbour.mp4", "caption", 30.0),
                                                                  ("harbour.mp4", "object", 28.0)}
    assert found(store, text="contract", label="person", min_count=3) == []  # 20-24 has one person
    # No words: the spans themselves, longest first.
    hits = store.search(Query(label="person"))
    assert [(h.video.name, h.moment.start, h.moment.end) for h in hits] == [("harbour.mp4", 0.0, 40.0),
                                                                          ("office.mp4", 0.0, 20.0)]
    [crowd] = store.search(Query(label="person", min_count=3))
    assert (crowd.video.name, crowd.moment.start, crowd.moment.end) == ("harbour.mp4", 30.0, 40.0)


def test_video_time_and_kind_filters(indexed):
    store, _ = indexed
    assert found(store, text="forklift", video_glob="str*") == [("street.mp4", "speech", 8.0)]
    assert found(store, text="forklift", video_glob="*/street.mp4") == [("street.mp4", "speech", 8.0)]
    assert found(store, text="contract", start=17.0) == [("harbour.mp4", "speech", 20.0)]
    assert set(found(store, text="contract", end=10.0)) == {("office.mp4", "speech", 5.0)}
    assert found(store, text="forklift", kinds=("caption",)) == [("harbour.mp4", "caption", 30.0)]
    listed = found(store, kinds=("caption",))
    assert listed == [("harbour.mp4", "caption", 30.0), ("harbour.mp4", "caption", 46.0),
                      ("office.mp4", "caption", 3.0)]


def test_ask_mode_takes_any_content_word(indexed):
    store, _ = indexed
    assert found(store, text="what is there in the", mode="any") == []  # no content word
    got = {(v, s) for v, _, s in found(store, text="when was the contract signed and the lighthouse", mode="any")}
    assert {("harbour.mp4", 10.0), ("harbour.mp4", 20.0), ("office.mp4", 12.0)} <= got


def test_moments_of_a_video_overlapping_a_span(indexed):
    store, _ = indexed
    video = next(v for v in store.videos() if v.name == "harbour.mp4")
    assert [(m.kind, m.start) for m in store.moments(video.id, 41.0, 47.0, ("speech", "caption"))] == [
        ("speech", 40.0), ("caption", 46.0)]


def test_a_very_common_word_is_ranked_among_the_newest_matches(tmp_path, monkeypatch):
    """Past RANK_AT_MOST matches only the newest are ranked (bm25 costs time per match);
    a filter that leaves too few of them gets the full ranking."""
    from index_fixtures import report
    from vidagent.index import sqlite

    monkeypatch.setattr(sqlite, "RANK_AT_MOST", 5)
    store = open_index(tmp_path / "index.sqlite")
    # Ten videos indexed in order; the shortest (best bm25) mention is in the first, oldest one.
    for n in range(10):
        text = "Contract." if n == 0 else f"The long and winding contract number {n} was read aloud."
        made = report(tmp_path / f"v{n}.mp4", 10.0, segments=[(1.0, 2.0, text)])
        store.add(tmp_path / f"v{n}" / "report.json", made)
    capped = store.search(Query("contract", limit=3))
    assert capped.ranked_among == 5
    assert {h.video.name for h in capped} <= {f"v{n}.mp4" for n in range(5, 10)}
    full = store.search(Query("contract", limit=3, video_glob="v[0-4].mp4"))
    assert full.ranked_among is None and full[0].video.name == "v0.mp4"
    assert store.search(Query("contract", limit=20)).ranked_among is None  # fewer than asked: all ranked
    store.close()


# -- refreshing ---------------------------------------------------------------------------


def test_refresh_adds_updates_skips_and_removes(tmp_path):
    paths = write_reports(tmp_path)
    store = open_index(tmp_path / "index.sqlite")
    first = refresh(store, [tmp_path])
    assert (first.added, first.updated, first.unchanged, first.removed) == (3, 0, 0, 0)
    again = refresh(store, [tmp_path])
    assert (again.added, again.unchanged, again.moments) == (0, 3, 0)

    report = json.loads(paths["office"].read_text())
    report["transcript"]["segments"][0]["text"] = "Please review the agreement before Friday."
    paths["office"].write_text(json.dumps(report))
    shutil.rmtree(paths["street"].parent)
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "report.json").write_text("{not json")
    third = refresh(store, [tmp_path])
    assert (third.added, third.updated, third.unchanged, third.removed) == (0, 1, 1, 1)
    assert len(third.failed) == 1 and str(tmp_path / "broken" / "report.json") in third.failed[0]
    assert {h.moment.start for h in store.search(Query("contract"))} == {12.0, 20.0}  # the old row is gone
    assert [h.video.name for h in store.search(Query("agreement"))] == ["office.mp4"]
    assert {v.name for v in store.videos()} == {"harbour.mp4", "office.mp4"}
    store.close()


def test_adding_a_report_again_replaces_its_rows(tmp_path):
    paths = write_reports(tmp_path)
    store = open_index(tmp_path / "index.sqlite")
    report = read_report(paths["harbour"])
    first = store.add(paths["harbour"], report)
    assert store.add(paths["harbour"], report) == first
    db = sqlite3.connect(tmp_path / "index.sqlite")
    assert db.execute("SELECT count(*) FROM moments").fetchone()[0] == first
    assert db.execute("SELECT count(*) FROM moments_fts WHERE moments_fts MATCH 'lighthouse'").fetchone()[0] == 1
    db.close()
    store.close()


# -- bad input ----------------------------------------------------------------------------


def test_index_errors_name_the_file(tmp_path):
    with pytest.raises(IndexStoreError, match=r"no index here.*vidagent index"):
        open_index(tmp_path / "missing.sqlite", create=False)
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"this is not a database, it is text" * 200)
    with pytest.raises(IndexStoreError, match=rf"^{junk}: not a vidagent index"):
        open_index(junk)
    with pytest.raises(IndexStoreError, match="unknown scheme 'mysql'"):
        open_index("mysql://host/db")
    other = tmp_path / "other.sqlite"
    db = sqlite3.connect(other)
    db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    db.execute("INSERT INTO meta VALUES ('schema', '99')")
    db.commit()
    db.close()
    with pytest.raises(IndexStoreError, match="schema 99 is not 1"):
        open_index(other)


# -- concurrent writers -------------------------------------------------------------------

WRITER = """
import sys
from pathlib import Path
from vidagent.index import add_report
from vidagent.report.reader import read_report

index, rounds, *reports = sys.argv[1:]
loaded = [(Path(p), read_report(Path(p))) for p in reports]
print("ready", flush=True)
sys.stdin.readline()  # every writer starts at once
for _ in range(int(rounds)):
    for path, report in loaded:
        add_report(index, path, report)
"""


@pytest.mark.slow
def test_concurrent_writer_processes_leave_a_whole_index(tmp_path):
    """Four processes (like `--jobs` or CI shards on one machine) write into one new index
    at once: the three shared reports over and over, and three of their own each."""
    shared = write_reports(tmp_path / "shared")
    own = {i: write_reports(tmp_path / f"writer{i}") for i in range(4)}
    index = tmp_path / "index.sqlite"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    writers = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(index), "15", *map(str, shared.values()),
                          *map(str, own[i].values())], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, env=env)
        for i in range(4)
    ]
    for writer in writers:
        assert writer.stdout.readline() == "ready\n"
    for writer in writers:
        writer.stdin.write("go\n")
        writer.stdin.flush()
    for writer in writers:
        _, stderr = writer.communicate(timeout=600)
        assert writer.returncode == 0, stderr

    db = sqlite3.connect(index)
    assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    db.execute("INSERT INTO moments_fts (moments_fts) VALUES ('integrity-check')")  # raises if FTS is out of step
    per_report = {name: len(report_moments(read_report(path))) for name, path in shared.items()}
    assert db.execute("SELECT count(*) FROM videos").fetchone()[0] == 15
    assert db.execute("SELECT count(*) FROM moments").fetchone()[0] == 5 * sum(per_report.values())
    assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    db.close()
    store = open_index(index)
    assert len(store.search(Query("lighthouse"))) == 5  # one harbour per folder, no duplicates
    store.close()
