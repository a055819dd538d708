"""The index: every report's moments, searchable across videos.

Reports are the source of truth; an index is derived from them and can always be rebuilt
(`vidagent index DIR`). A store is one backend behind the `IndexStore` interface below,
looked up by name in `BACKENDS`: `sqlite` (one file with FTS5, from the standard library,
safe for concurrent writers in WAL mode) is the default; a location with a URL scheme
picks the backend of that scheme (see docs/decisions.md for a shared server).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Protocol
from urllib.parse import urlsplit

from ..errors import IndexStoreError
from ..report.model import Report
from .moments import KINDS, MAX_COUNT, Moment, Presence, report_moments, report_presence
from .query import Query, Term, fts5_match, terms

__all__ = [
    "BACKENDS", "DEFAULT_NAME", "Hit", "Hits", "IndexStore", "KINDS", "MAX_COUNT", "Moment", "Presence", "Query",
    "Term", "Video", "add_report", "default_location", "fts5_match", "open_index", "report_moments",
    "report_presence", "terms",
]

DEFAULT_NAME = "index.sqlite"


@dataclass(frozen=True)
class Video:
    id: int
    report_path: str
    media_path: str
    name: str  # the media file's name
    duration: float
    media: dict  # the report's MediaInfo, for frames and clips
    summary: str | None = None


@dataclass
class Hit:
    video: Video
    moment: Moment
    score: float | None = None  # lower is better (bm25); None when listed without words
    highlights: list[tuple[int, int]] = field(default_factory=list)  # character spans of moment.text

    def as_json(self) -> dict:
        m = self.moment
        return {
            "video": self.video.name, "video_path": self.video.media_path, "report": self.video.report_path,
            "kind": m.kind, "start": m.start, "end": m.end, "at": m.at, "label": m.label, "text": m.text,
            "highlights": [list(h) for h in self.highlights], "score": self.score, "detail": m.detail,
        }


class Hits(list):
    """What a search returns: Hits, best first. `ranked_among` is set when a query matched
    so many moments that only the newest that many were ranked (the SQLite store's
    RANK_AT_MOST); None when every match was ranked."""

    ranked_among: int | None = None


class IndexStore(Protocol):
    """What search and ask need from an index. Times are float seconds of each video."""

    location: str

    def add(self, report_path: Path, report: Report) -> int:
        """Index one report, replacing the rows it had; returns the number of moments."""
        ...

    def remove(self, report_paths: Iterable[str]) -> int:
        """Forget these reports (their paths as indexed); returns how many were there."""
        ...

    def indexed(self) -> dict[str, tuple[int, int]]:
        """report path -> (mtime_ns, size) of the report file when it was indexed."""
        ...

    def videos(self, ids: Iterable[int] | None = None) -> list[Video]: ...

    def search(self, query: Query) -> list[Hit]:
        """Ranked moments (best first), or presence spans when only a label is asked;
        a `Hits` list."""
        ...

    def moments(self, video_id: int, start: float, end: float, kinds: tuple[str, ...] = ()) -> list[Moment]:
        """The moments of one video that overlap [start, end], in time order."""
        ...

    def close(self) -> None: ...


def _sqlite(location: str) -> IndexStore:
    from .sqlite import SqliteIndex

    return SqliteIndex(location)


def _postgres(location: str) -> IndexStore:
    from .postgres import PostgresIndex

    return PostgresIndex(location)


BACKENDS: dict[str, Callable[[str], IndexStore]] = {"sqlite": _sqlite, "postgres": _postgres}
_SCHEMES = {"sqlite": "sqlite", "postgres": "postgres", "postgresql": "postgres"}


def backend_name(location: str) -> str:
    scheme, sep, _ = str(location).partition("://")
    if not sep:
        return "sqlite"
    if scheme not in _SCHEMES:
        known = ", ".join(f"{s}://" for s in _SCHEMES)
        raise IndexStoreError(f"index {location!r}: unknown scheme {scheme!r} (a file path, or {known})")
    return _SCHEMES[scheme]


def open_index(location: str | Path, create: bool = True) -> IndexStore:
    """The store at `location`: a file path (SQLite), `:memory:`, or a backend URL.
    Without `create`, a missing SQLite file is an error that says how to make one."""
    location = str(location)
    name = backend_name(location)
    if urlsplit(location).password if "://" in location else None:
        raise IndexStoreError("the index URL holds a password: put it in PGPASSWORD or ~/.pgpass instead, "
                              "so that it never lands in settings, reports or logs")
    if name == "sqlite":
        location = location.removeprefix("sqlite://")
        if location != ":memory:":
            path = Path(location)
            if not create and not path.exists():
                raise IndexStoreError(f"{path}: no index here; build one with `vidagent index REPORTS_DIR` "
                                      "(or `vidagent analyze` writes it)")
            path.parent.mkdir(parents=True, exist_ok=True)
    return BACKENDS[name](location)


def default_location(index: str | None, out: Path) -> str:
    """The `index` setting, else `<out>/index.sqlite` beside the reports. A setting that
    names a folder (one that exists, or any path ending in a slash) means the index in it,
    `<folder>/index.sqlite`: `--index reports/` works as well as `--index reports/index.sqlite`."""
    if not index:
        return str(out / DEFAULT_NAME)
    if "://" not in index and index != ":memory:" and (index.endswith(("/", os.sep)) or Path(index).is_dir()):
        return str(Path(index) / DEFAULT_NAME)
    return index


def add_report(index: str | Path, report_path: Path, report: Report) -> int:
    """Add (or replace) one report in the index at `index`; what `analyze` calls after it
    writes each report. Returns the number of moments indexed."""
    store = open_index(index)
    try:
        return store.add(report_path, report)
    finally:
        store.close()
