"""The embedded index: one SQLite file, full-text search by FTS5 (both in the standard library).

Concurrent writers (`analyze --jobs`, several CI shards on one machine, `vidagent index`
while `analyze` runs) are safe: the file is in WAL mode, so readers never block, and each
report is written in one `BEGIN IMMEDIATE` transaction that takes the write lock at its
start and waits up to BUSY_TIMEOUT_S for it (SQLite's busy timeout) instead of failing.
A report is replaced as a whole or not at all. WAL needs the writers on one machine
(shared memory): shards on different machines index their own reports and
`vidagent index` joins the folders afterwards (the index is derived from the reports).

The full-text table is an external-content FTS5 table over `moments`, kept in step by
triggers, with the porter stemmer ("lights" finds "light"). Ranking is bm25 with the label
column weighted above the text.
"""

from __future__ import annotations

import json
import sqlite3
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable, Iterator

from ..errors import IndexStoreError
from ..report.model import Report
from . import Hit, Hits, Video
from .hits import MARK_OFF, MARK_ON, at_first_word, presence_moment, unmark
from .moments import Moment, report_moments, report_presence, source_path
from .query import Query, fts5_match, terms

SCHEMA = "1"
BUSY_TIMEOUT_S = 60.0
RANK_AT_MOST = 20_000  # matches ranked by bm25 at most; past that, the newest

_TABLES = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS videos (
    id INTEGER PRIMARY KEY,
    report_path TEXT NOT NULL UNIQUE,
    media_path TEXT NOT NULL,
    name TEXT NOT NULL,
    duration REAL NOT NULL,
    media TEXT NOT NULL,
    summary TEXT,
    report_mtime_ns INTEGER NOT NULL,
    report_size INTEGER NOT NULL,
    indexed_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS moments (
    id INTEGER PRIMARY KEY,
    video_id INTEGER NOT NULL,
    kind TEXT NOT NULL,
    t_start REAL NOT NULL,
    t_end REAL NOT NULL,
    t_at REAL NOT NULL,
    label TEXT NOT NULL,
    text TEXT NOT NULL,
    detail TEXT
);
CREATE INDEX IF NOT EXISTS moments_by_time ON moments (video_id, t_start);
CREATE VIRTUAL TABLE IF NOT EXISTS moments_fts USING fts5 (
    text, label, content='moments', content_rowid='id', tokenize='porter unicode61 remove_diacritics 2'
);
CREATE TRIGGER IF NOT EXISTS moments_added AFTER INSERT ON moments BEGIN
    INSERT INTO moments_fts (rowid, text, label) VALUES (new.id, new.text, new.label);
END;
CREATE TRIGGER IF NOT EXISTS moments_removed AFTER DELETE ON moments BEGIN
    INSERT INTO moments_fts (moments_fts, rowid, text, label) VALUES ('delete', old.id, old.text, old.label);
END;
CREATE TABLE IF NOT EXISTS presence (
    video_id INTEGER NOT NULL,
    label TEXT NOT NULL,
    k INTEGER NOT NULL,
    t_start REAL NOT NULL,
    t_end REAL NOT NULL,
    length REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS presence_longest ON presence (label, k, length DESC);
CREATE INDEX IF NOT EXISTS presence_by_time ON presence (label, k, video_id, t_start);
CREATE INDEX IF NOT EXISTS presence_by_video ON presence (video_id);
"""

_MOMENT_COLUMNS = "m.id, m.kind, m.t_start, m.t_end, m.t_at, m.label, m.text, m.detail, m.video_id"


class SqliteIndex:
    def __init__(self, location: str):
        self.location = location
        with self._errors("open"):
            self._db = sqlite3.connect(location, timeout=BUSY_TIMEOUT_S, isolation_level=None,
                                       check_same_thread=False)
            if location != ":memory:":
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA synchronous=NORMAL")  # WAL: safe from corruption, fast commits
            self._create()

    # -- writing ----------------------------------------------------------------------

    def _create(self) -> None:
        with self._write():
            found = self._db.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'").fetchone()
            if found:
                row = self._db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
                if row and row[0] == SCHEMA:
                    return
                raise IndexStoreError(f"{self.location}: index schema {row[0] if row else '?'} is not {SCHEMA}: "
                                      "delete it and run `vidagent index` again")
            for statement in _statements(_TABLES):
                self._db.execute(statement)
            self._db.execute("INSERT INTO moments_fts (moments_fts, rank) VALUES ('rank', 'bm25(1.0, 2.0)')")
            self._db.execute("INSERT INTO meta (key, value) VALUES ('schema', ?)", (SCHEMA,))

    def add(self, report_path: Path, report: Report) -> int:
        moments = report_moments(report)
        presence = report_presence(report)
        try:
            stat = report_path.stat()
            mtime_ns, size = stat.st_mtime_ns, stat.st_size
        except OSError:
            mtime_ns, size = 0, 0
        media = report.media
        with self._write():
            (video_id,) = self._db.execute(
                """INSERT INTO videos (report_path, media_path, name, duration, media, summary,
                                       report_mtime_ns, report_size, indexed_at)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT (report_path) DO UPDATE SET media_path = excluded.media_path,
                       name = excluded.name, duration = excluded.duration, media = excluded.media,
                       summary = excluded.summary, report_mtime_ns = excluded.report_mtime_ns,
                       report_size = excluded.report_size, indexed_at = excluded.indexed_at
                   RETURNING id""",
                (_key(report_path), source_path(media.path), media.file_name or Path(media.path).name,
                 media.duration_s, media.model_dump_json(), report.summary, mtime_ns, size,
                 datetime.now(timezone.utc).isoformat(timespec="seconds")),
            ).fetchone()
            self._forget(video_id, keep_video=True)
            self._db.executemany(
                "INSERT INTO moments (video_id, kind, t_start, t_end, t_at, label, text, detail) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                ((video_id, m.kind, m.start, m.end, m.at, m.label, m.text,
                  json.dumps(m.detail) if m.detail else None) for m in moments),
            )
            self._db.executemany(
                "INSERT INTO presence (video_id, label, k, t_start, t_end, length) VALUES (?, ?, ?, ?, ?, ?)",
                ((video_id, p.label, p.k, p.start, p.end, p.end - p.start) for p in presence),
            )
        return len(moments)

    def remove(self, report_paths: Iterable[str]) -> int:
        removed = 0
        with self._write():
            for path in report_paths:
                row = self._db.execute("SELECT id FROM videos WHERE report_path = ?", (path,)).fetchone()
                if row:
                    self._forget(row[0])
                    removed += 1
        return removed

    def _forget(self, video_id: int, keep_video: bool = False) -> None:
        self._db.execute("DELETE FROM moments WHERE video_id = ?", (video_id,))
        self._db.execute("DELETE FROM presence WHERE video_id = ?", (video_id,))
        if not keep_video:
            self._db.execute("DELETE FROM videos WHERE id = ?", (video_id,))

    @contextmanager
    def _write(self) -> Iterator[None]:
        with self._errors("write"):
            self._db.execute("BEGIN IMMEDIATE")  # the write lock now, or wait for it
            try:
                yield
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    @contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        try:
            yield
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) or "busy" in str(exc):
                raise IndexStoreError(f"{self.location}: still locked by another writer after "
                                      f"{BUSY_TIMEOUT_S:.0f} s; try again") from None
            raise IndexStoreError(f"{self.location}: cannot {doing} the index ({exc})") from None
        except sqlite3.DatabaseError as exc:
            raise IndexStoreError(f"{self.location}: not a vidagent index ({exc})") from None

    # -- reading ----------------------------------------------------------------------

    def indexed(self) -> dict[str, tuple[int, int]]:
        with self._errors("read"):
            rows = self._db.execute("SELECT report_path, report_mtime_ns, report_size FROM videos").fetchall()
        return {path: (mtime, size) for path, mtime, size in rows}

    def videos(self, ids: Iterable[int] | None = None) -> list[Video]:
        sql = "SELECT id, report_path, media_path, name, duration, media, summary FROM videos"
        with self._errors("read"):
            if ids is None:
                rows = self._db.execute(sql + " ORDER BY name, report_path").fetchall()
            else:
                rows = self._db.execute(sql + " WHERE id IN (SELECT value FROM json_each(?))",
                                        (json.dumps(list(ids)),)).fetchall()
        return [Video(r[0], r[1], r[2], r[3], r[4], json.loads(r[5]), r[6]) for r in rows]

    def moments(self, video_id: int, start: float, end: float, kinds: tuple[str, ...] = ()) -> list[Moment]:
        sql = f"SELECT {_MOMENT_COLUMNS} FROM moments m WHERE m.video_id = ? AND m.t_start <= ? AND m.t_end >= ?"
        params: list = [video_id, end, start]
        if kinds:
            sql += f" AND m.kind IN ({', '.join('?' * len(kinds))})"
            params += kinds
        with self._errors("read"):
            rows = self._db.execute(sql + " ORDER BY m.t_start, m.id", params).fetchall()
        return [_moment(r) for r in rows]

    def search(self, q: Query) -> list[Hit]:
        found = terms(q.text, q.mode)
        with self._errors("search"):
            if q.video_glob:
                # The videos first: checking the glob on every match costs a videos row per match.
                ids = [r[0] for r in self._db.execute(
                    "SELECT id FROM videos WHERE name GLOB ? OR media_path GLOB ?", (q.video_glob, q.video_glob))]
                if q.video_ids is not None:
                    ids = [i for i in ids if i in set(q.video_ids)]
                q = replace(q, video_glob=None, video_ids=tuple(ids))
            if found:
                return self._by_words(q, fts5_match(found, q.mode))
            if q.text and q.text.strip():
                return Hits()  # only words that carry no content
            return Hits(self._by_presence(q) if q.label else self._listed(q))

    def _by_words(self, q: Query, match: str) -> list[Hit]:
        where, params = _filters(q)
        if q.label:
            where += (" AND EXISTS (SELECT 1 FROM presence p WHERE p.label = ? AND p.k = ? AND p.video_id = m.video_id"
                      " AND p.t_start <= m.t_end AND p.t_end >= m.t_start)")
            params += [q.label, q.min_count]
        sql = (f"SELECT {_MOMENT_COLUMNS}, moments_fts.rank FROM moments_fts JOIN moments m ON m.id = moments_fts.rowid "
               f"WHERE moments_fts MATCH ?{where}")
        # bm25 costs time in proportion to the matches: a word in every tenth moment of a big
        # archive has hundreds of thousands. Past RANK_AT_MOST matches only the newest are
        # ranked (rowids grow as reports are added); a filter that leaves too few of those
        # gets the full ranking after all.
        cutoff = self._db.execute(
            "SELECT rowid FROM moments_fts WHERE moments_fts MATCH ? ORDER BY rowid DESC LIMIT 1 OFFSET ?",
            (match, RANK_AT_MOST - 1)).fetchone()
        rows = []
        if cutoff is not None:
            rows = self._db.execute(sql + " AND moments_fts.rowid >= ? ORDER BY moments_fts.rank LIMIT ?",
                                    [match, *params, cutoff[0], q.limit]).fetchall()
        capped = cutoff is not None and len(rows) == q.limit
        if not capped:
            rows = self._db.execute(sql + " ORDER BY moments_fts.rank LIMIT ?", [match, *params, q.limit]).fetchall()
        hits = Hits()
        hits.ranked_among = RANK_AT_MOST if capped else None
        if not rows:
            return hits
        # highlight() only for the rows shown, not for every match that was ranked
        marked = dict(self._db.execute(
            f"SELECT rowid, highlight(moments_fts, 0, '{MARK_ON}', '{MARK_OFF}') FROM moments_fts "
            "WHERE moments_fts MATCH ? AND rowid IN (SELECT value FROM json_each(?))",
            (match, json.dumps([r[0] for r in rows])),
        ).fetchall())
        videos = self._video_map(r[8] for r in rows)
        for row in rows:
            moment = _moment(row)
            text, spans = unmark(marked.get(moment.id, moment.text))
            at_first_word(moment, text, spans)
            hits.append(Hit(videos[row[8]], moment, score=round(row[9], 4), highlights=spans))
        return hits

    def _by_presence(self, q: Query) -> list[Hit]:
        where, params = _filters(q, table="p")
        rows = self._db.execute(
            f"SELECT p.video_id, p.label, p.k, p.t_start, p.t_end FROM presence p "
            f"WHERE p.label = ? AND p.k = ?{where} ORDER BY p.length DESC LIMIT ?",  # the index's own order
            [q.label, q.min_count, *params, q.limit],
        ).fetchall()
        videos = self._video_map(r[0] for r in rows)
        hits = []
        for video_id, label, k, start, end in rows:
            hits.append(Hit(videos[video_id], presence_moment(label, k, start, end)))
        return hits

    def _listed(self, q: Query) -> list[Hit]:
        where, params = _filters(q)
        rows = self._db.execute(
            f"SELECT {_MOMENT_COLUMNS} FROM moments m WHERE 1 = 1{where} "
            "ORDER BY m.video_id, m.t_start LIMIT ?",  # as indexed, so a listing stops at its limit
            [*params, q.limit],
        ).fetchall()
        videos = self._video_map(r[8] for r in rows)
        return [Hit(videos[r[8]], _moment(r)) for r in rows]

    def _video_map(self, ids: Iterable[int]) -> dict[int, Video]:
        return {v.id: v for v in self.videos(set(ids))}

    def close(self) -> None:
        self._db.close()


def _statements(script: str) -> Iterator[str]:
    """One statement at a time: executescript() would commit the transaction it runs in."""
    pending = ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            yield pending.strip()
            pending = ""


def _key(report_path: Path) -> str:
    return str(report_path.resolve())


def _filters(q: Query, table: str = "m") -> tuple[str, list]:
    where, params = "", []
    if q.kinds and table == "m":
        where += f" AND m.kind IN ({', '.join('?' * len(q.kinds))})"
        params += list(q.kinds)
    if q.start is not None:
        where += f" AND {table}.t_end >= ?"
        params.append(q.start)
    if q.end is not None:
        where += f" AND {table}.t_start <= ?"
        params.append(q.end)
    if q.video_ids is not None:
        where += f" AND {table}.video_id IN (SELECT value FROM json_each(?))"
        params.append(json.dumps(list(q.video_ids)))
    if q.speaker and table == "m":
        where += " AND m.kind = 'speech' AND lower(m.label) = lower(?)"
        params.append(q.speaker)
    elif q.speaker:  # presence spans while the speaker speaks
        where += (f" AND EXISTS (SELECT 1 FROM moments s WHERE s.video_id = {table}.video_id AND s.kind = 'speech'"
                  f" AND lower(s.label) = lower(?) AND s.t_end >= {table}.t_start AND s.t_start <= {table}.t_end)")
        params.append(q.speaker)
    return where, params


def _moment(row) -> Moment:
    return Moment(row[1], row[2], row[3], row[6], label=row[5], at=row[4],
                  detail=json.loads(row[7]) if row[7] else {}, id=row[0])
