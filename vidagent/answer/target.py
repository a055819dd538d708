"""What `vidagent ask TARGET` looks in: an index, a folder, a report or a video.

- an index file: every video in it;
- a folder: the reports under it (kept fresh in the folder's index.sqlite when it has
  one, else indexed in memory for this question), or, for a folder of videos, their
  reports in the index;
- a report.json: that report, indexed in memory;
- a video: its report, looked up in the index by the video's path.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError
from ..index import DEFAULT_NAME, IndexStore, open_index
from ..index.refresh import refresh
from ..report.reader import find_reports

_SQLITE_HEADER = b"SQLite format 3\x00"


@dataclass
class Target:
    store: IndexStore
    video_ids: tuple[int, ...] | None  # None: every video in the store
    description: str


def open_target(target: Path, index: str) -> Target:
    """`index` is where videos are looked up (the --index setting or its default)."""
    if not target.exists():
        raise ConfigError(f"{target}: no such file or folder")
    if target.is_file() and _is_sqlite(target):
        return Target(open_index(target, create=False), None, f"the index {target}")
    if target.is_dir():
        reports = find_reports([target])
        if reports:
            own = target / DEFAULT_NAME
            store = open_index(own if own.exists() else ":memory:")
            found = refresh(store, [target])
            _refuse_failed(found.failed)
            return Target(store, _ids(store, found.reports), f"{len(reports)} report(s) under {target}")
        from ..batch import VIDEO_EXTENSIONS

        videos = sorted(p for p in target.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS)
        if not videos:
            raise ConfigError(f"{target}: holds no report.json and no video: analyse videos first "
                              f"(`vidagent analyze VIDEOS --out {target}`)")
        return _videos_in_index(videos, index, str(target))
    if target.suffix.lower() == ".json":
        store = open_index(":memory:")
        found = refresh(store, [target])
        _refuse_failed(found.failed)
        return Target(store, None, f"the report {target}")
    return _videos_in_index([target], index, str(target))


def _videos_in_index(videos: list[Path], index: str, what: str) -> Target:
    store = open_index(index, create=False)
    wanted = {str(v.resolve()) for v in videos}
    ids = tuple(v.id for v in store.videos() if str(Path(v.media_path).resolve()) in wanted)
    if not ids:
        store.close()
        raise ConfigError(f"{what}: not in the index {index}: analyse it first (`vidagent analyze {what}`), "
                          "or give its report.json or --index")
    return Target(store, ids, f"{len(ids)} video(s) of {what}")


def _ids(store: IndexStore, reports: list[str]) -> tuple[int, ...]:
    wanted = set(reports)
    return tuple(v.id for v in store.videos() if v.report_path in wanted)


def _refuse_failed(failed: list[str]) -> None:
    if failed:
        raise ConfigError(failed[0])


def _is_sqlite(path: Path) -> bool:
    with path.open("rb") as handle:
        return handle.read(len(_SQLITE_HEADER)) == _SQLITE_HEADER
