"""The index on a shared PostgreSQL server, for a team's archive: `--index postgresql://…`.

The same tables as the SQLite store, with PostgreSQL's own full-text search: a stored
tsvector per moment (label weighted above text, the `english` configuration: Snowball
stemming, stop words), a GIN index, ts_rank_cd for ranking and ts_headline for the
highlights. Each report is replaced in one transaction; writers on many machines are
serialised per report by the row lock of its upsert. The URL must not hold a password
(it would travel into settings): libpq reads PGPASSWORD or ~/.pgpass.
Needs `pip install 'vidagent[postgres]'` (psycopg 3).
"""

from __future__ import annotations

import fnmatch
import json
import re
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
from .query import Query, Term, terms

SCHEMA = "1"
_LOCK = 0x76696461  # advisory lock id for creating the tables ("vida")
_TABLES = [
    "CREATE TABLE IF NOT EXISTS vidagent_meta (key text PRIMARY KEY, value text NOT NULL)",
    """CREATE TABLE IF NOT EXISTS vidagent_videos (
        id bigserial PRIMARY KEY, report_path text NOT NULL UNIQUE, media_path text NOT NULL, name text NOT NULL,
        duration double precision NOT NULL, media jsonb NOT NULL, summary text, report_mtime_ns bigint NOT NULL,
        report_size bigint NOT NULL, indexed_at timestamptz NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS vidagent_moments (
        id bigserial PRIMARY KEY, video_id bigint NOT NULL REFERENCES vidagent_videos ON DELETE CASCADE,
        kind text NOT NULL, t_start double precision NOT NULL, t_end double precision NOT NULL,
        t_at double precision NOT NULL, label text NOT NULL, text text NOT NULL, detail jsonb,
        tsv tsvector GENERATED ALWAYS AS (setweight(to_tsvector('english', label), 'A')
                                          || setweight(to_tsvector('english', text), 'B')) STORED)""",
    "CREATE INDEX IF NOT EXISTS vidagent_moments_tsv ON vidagent_moments USING gin (tsv)",
    "CREATE INDEX IF NOT EXISTS vidagent_moments_by_time ON vidagent_moments (video_id, t_start)",
    """CREATE TABLE IF NOT EXISTS vidagent_presence (
        video_id bigint NOT NULL REFERENCES vidagent_videos ON DELETE CASCADE, label text NOT NULL, k integer NOT NULL,
        t_start double precision NOT NULL, t_end double precision NOT NULL, length double precision NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS vidagent_presence_longest ON vidagent_presence (label, k, length DESC)",
    "CREATE INDEX IF NOT EXISTS vidagent_presence_by_time ON vidagent_presence (label, k, video_id, t_start)",
]
_COLUMNS = "m.id, m.kind, m.t_start, m.t_end, m.t_at, m.label, m.text, m.detail, m.video_id"


class PostgresIndex:
    def __init__(self, location: str):
        from ..extras import require

        require("postgres")
        import psycopg
        self.location = location
        self._psycopg = psycopg
        with self._errors("connect to"):
            self._db = psycopg.connect(location, autocommit=False)
            self._create()

    def _create(self) -> None:
        with self._write() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK,))  # one creator at a time
            for statement in _TABLES:
                cur.execute(statement)
            cur.execute("INSERT INTO vidagent_meta VALUES ('schema', %s) ON CONFLICT (key) DO NOTHING", (SCHEMA,))
            cur.execute("SELECT value FROM vidagent_meta WHERE key = 'schema'")
            found = cur.fetchone()[0]
        if found != SCHEMA:
            raise IndexStoreError(f"{self.location}: index schema {found} is not {SCHEMA}")

    def add(self, report_path: Path, report: Report) -> int:
        moments, presence = report_moments(report), report_presence(report)
        try:
            stat = report_path.stat()
            mtime_ns, size = stat.st_mtime_ns, stat.st_size
        except OSError:
            mtime_ns, size = 0, 0
        media = report.media
        with self._write() as cur:
            cur.execute(
                """INSERT INTO vidagent_videos (report_path, media_path, name, duration, media, summary,
                                                report_mtime_ns, report_size, indexed_at)
                   VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)
                   ON CONFLICT (report_path) DO UPDATE SET media_path = excluded.media_path, name = excluded.name,
                       duration = excluded.duration, media = excluded.media, summary = excluded.summary,
                       report_mtime_ns = excluded.report_mtime_ns, report_size = excluded.report_size,
                       indexed_at = excluded.indexed_at
                   RETURNING id""",
                (str(report_path.resolve()), source_path(media.path), media.file_name or Path(media.path).name,
                 media.duration_s, media.model_dump_json(), report.summary, mtime_ns, size,
                 datetime.now(timezone.utc)),
            )
            (video_id,) = cur.fetchone()
            cur.execute("DELETE FROM vidagent_moments WHERE video_id = %s", (video_id,))
            cur.execute("DELETE FROM vidagent_presence WHERE video_id = %s", (video_id,))
            with cur.copy("COPY vidagent_moments (video_id, kind, t_start, t_end, t_at, label, text, detail) "
                          "FROM STDIN") as copy:
                for m in moments:
                    copy.write_row((video_id, m.kind, m.start, m.end, m.at, m.label, m.text,
                                    json.dumps(m.detail) if m.detail else None))
            with cur.copy("COPY vidagent_presence (video_id, label, k, t_start, t_end, length) FROM STDIN") as copy:
                for p in presence:
                    copy.write_row((video_id, p.label, p.k, p.start, p.end, p.end - p.start))
        return len(moments)

    def remove(self, report_paths: Iterable[str]) -> int:
        with self._write() as cur:
            cur.execute("DELETE FROM vidagent_videos WHERE report_path = ANY(%s)", (list(report_paths),))
            return cur.rowcount

    @contextmanager
    def _write(self) -> Iterator:
        with self._errors("write"):
            with self._db.transaction(), self._db.cursor() as cur:
                yield cur

    @contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        try:
            yield
        except self._psycopg.OperationalError as exc:
            reason = " ".join(str(exc).split())[:300]
            raise IndexStoreError(f"index {self.location}: cannot {doing} the server ({reason})") from None
        except self._psycopg.Error as exc:
            reason = " ".join(str(exc).split())[:300]
            raise IndexStoreError(f"index {self.location}: cannot {doing} the index ({reason})") from None

    def _read(self, sql: str, params: Iterable = ()) -> list[tuple]:
        with self._errors("read"), self._db.transaction(), self._db.cursor() as cur:
            cur.execute(sql, list(params))
            return cur.fetchall()

    def indexed(self) -> dict[str, tuple[int, int]]:
        rows = self._read("SELECT report_path, report_mtime_ns, report_size FROM vidagent_videos")
        return {path: (mtime, size) for path, mtime, size in rows}

    def videos(self, ids: Iterable[int] | None = None) -> list[Video]:
        sql = "SELECT id, report_path, media_path, name, duration, media, summary FROM vidagent_videos"
        rows = self._read(sql + " ORDER BY name, report_path") if ids is None \
            else self._read(sql + " WHERE id = ANY(%s)", [list(ids)])
        return [Video(*r[:5], media=r[5], summary=r[6]) for r in rows]

    def moments(self, video_id: int, start: float, end: float, kinds: tuple[str, ...] = ()) -> list[Moment]:
        sql = f"SELECT {_COLUMNS} FROM vidagent_moments m WHERE m.video_id = %s AND m.t_start <= %s AND m.t_end >= %s"
        params: list = [video_id, end, start]
        if kinds:
            sql += " AND m.kind = ANY(%s)"
            params.append(list(kinds))
        return [_moment(r) for r in self._read(sql + " ORDER BY m.t_start, m.id", params)]

    def search(self, q: Query) -> list[Hit]:
        found = terms(q.text, q.mode)
        if q.video_glob:  # fnmatch here, as SQLite's GLOB does there
            ids = [v.id for v in self.videos() if fnmatch.fnmatchcase(v.name, q.video_glob)
                   or fnmatch.fnmatchcase(v.media_path, q.video_glob)]
            if q.video_ids is not None:
                ids = [i for i in ids if i in set(q.video_ids)]
            q = replace(q, video_glob=None, video_ids=tuple(ids))
        if found:
            return Hits(self._by_words(q, found))
        if q.text and q.text.strip():
            return Hits()
        return Hits(self._by_presence(q) if q.label else self._listed(q))

    def _by_words(self, q: Query, found: list[Term]) -> list[Hit]:
        match, match_params = _tsquery(found, q.mode)
        where, params = _filters(q)
        if q.label:
            where += (" AND EXISTS (SELECT 1 FROM vidagent_presence p WHERE p.label = %s AND p.k = %s"
                      " AND p.video_id = m.video_id AND p.t_start <= m.t_end AND p.t_end >= m.t_start)")
            params += [q.label, q.min_count]
        rows = self._read(
            f"WITH q AS (SELECT {match} AS query) "
            f"SELECT {_COLUMNS}, -ts_rank_cd(m.tsv, q.query) AS score, "
            f"ts_headline('english', m.text, q.query, 'HighlightAll=true, StartSel={MARK_ON}, StopSel={MARK_OFF}') "
            f"FROM vidagent_moments m, q WHERE m.tsv @@ q.query{where} ORDER BY score, m.id LIMIT %s",
            [*match_params, *params, q.limit],
        )
        videos = {v.id: v for v in self.videos({r[8] for r in rows})}
        hits = []
        for row in rows:
            moment = _moment(row)
            text, spans = unmark(row[10])
            at_first_word(moment, text, spans)
            hits.append(Hit(videos[row[8]], moment, score=round(row[9], 4), highlights=spans))
        return hits

    def _by_presence(self, q: Query) -> list[Hit]:
        where, params = _filters(q, table="p")
        rows = self._read(
            f"SELECT p.video_id, p.label, p.k, p.t_start, p.t_end FROM vidagent_presence p "
            f"WHERE p.label = %s AND p.k = %s{where} ORDER BY p.length DESC LIMIT %s",
            [q.label, q.min_count, *params, q.limit],
        )
        videos = {v.id: v for v in self.videos({r[0] for r in rows})}
        return [Hit(videos[r[0]], presence_moment(*r[1:])) for r in rows]

    def _listed(self, q: Query) -> list[Hit]:
        where, params = _filters(q)
        rows = self._read(
            f"SELECT {_COLUMNS} FROM vidagent_moments m JOIN vidagent_videos v ON v.id = m.video_id "
            f"WHERE TRUE{where} ORDER BY m.video_id, m.t_start LIMIT %s", [*params, q.limit])
        videos = {v.id: v for v in self.videos({r[8] for r in rows})}
        return [Hit(videos[r[8]], _moment(r)) for r in rows]

    def close(self) -> None:
        self._db.close()


def _tsquery(found: list[Term], mode: str) -> tuple[str, list]:
    """Each term its own tsquery (a phrase keeps its order, a prefix its :*), joined by
    && or ||; every word goes in as a parameter, never as query syntax."""
    parts, params = [], []
    for term in found:
        if term.prefix:
            word = re.sub(r"\W", "", term.text)
            parts.append("to_tsquery('english', %s)")
            params.append(f"{word}:*" if word else "")
        else:
            parts.append("phraseto_tsquery('english', %s)")
            params.append(term.text)
    return "(" + (" || " if mode == "any" else " && ").join(parts) + ")", params


def _filters(q: Query, table: str = "m") -> tuple[str, list]:
    where, params = "", []
    if q.kinds and table == "m":
        where += " AND m.kind = ANY(%s)"
        params.append(list(q.kinds))
    if q.start is not None:
        where += f" AND {table}.t_end >= %s"
        params.append(q.start)
    if q.end is not None:
        where += f" AND {table}.t_start <= %s"
        params.append(q.end)
    if q.video_ids is not None:
        where += f" AND {table}.video_id = ANY(%s)"
        params.append(list(q.video_ids))
    if q.speaker and table == "m":
        where += " AND m.kind = 'speech' AND lower(m.label) = lower(%s)"
        params.append(q.speaker)
    elif q.speaker:  # presence spans while the speaker speaks
        where += (f" AND EXISTS (SELECT 1 FROM vidagent_moments s WHERE s.video_id = {table}.video_id"
                  f" AND s.kind = 'speech' AND lower(s.label) = lower(%s) AND s.t_end >= {table}.t_start"
                  f" AND s.t_start <= {table}.t_end)")
        params.append(q.speaker)
    return where, params


def _moment(row) -> Moment:
    return Moment(row[1], row[2], row[3], row[6], label=row[5], at=row[4], detail=row[7] or {}, id=row[0])
