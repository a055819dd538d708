"""Bring an index up to date with report files: `vidagent index DIR_OR_REPORTS...`.

A report is (re)indexed when it is new or its file changed (modification time or size);
an indexed report under one of the given folders whose file is gone is removed. Reports
indexed from elsewhere (another shard's folder) are left alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ConfigError, VidagentError
from ..report.reader import find_reports, read_report
from . import IndexStore

@dataclass
class Refreshed:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    moments: int = 0  # moments written in this run
    failed: list[str] = field(default_factory=list)  # one line per report that could not be read
    reports: list[str] = field(default_factory=list)  # every report found, as indexed


def refresh(store: IndexStore, paths: list[Path], force: bool = False) -> Refreshed:
    result = Refreshed()
    reports = find_reports(paths)
    known = store.indexed()
    for path in reports:
        key = str(path)
        result.reports.append(key)
        stat = path.stat()
        if not force and known.get(key) == (stat.st_mtime_ns, stat.st_size):
            result.unchanged += 1
            continue
        try:
            result.moments += store.add(path, read_report(path))
        except ConfigError as exc:  # a bad report costs itself, not the others
            result.failed.append(str(exc))
            continue
        except VidagentError:
            raise  # the index itself failed: nothing else will work either
        if key in known:
            result.updated += 1
        else:
            result.added += 1
    folders = [p.resolve() for p in paths if p.is_dir()]
    gone = [k for k in known if not Path(k).exists() and any(Path(k).is_relative_to(f) for f in folders)]
    result.removed = store.remove(gone) if gone else 0
    return result
