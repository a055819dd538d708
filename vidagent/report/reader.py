"""Reading a report.json back: validated, with what older schemas lacked filled in."""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

from ..errors import ConfigError
from .events import build_events
from .model import Report
from .tracks import build_tracks, count_objects


def find_reports(paths: list[Path]) -> list[Path]:
    """Report files given directly and every report.json under the given folders (hidden
    folders skipped)."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found += sorted(
                p for p in path.rglob("report.json")
                if not any(part.startswith(".") for part in p.relative_to(path).parts[:-1])
            )
        elif path.is_file():
            found.append(path)
        else:
            raise ConfigError(f"{path}: no such file or folder")
    return list(dict.fromkeys(p.resolve() for p in found))


def read_report(path: Path) -> Report:
    """Read a report; one written before schema 1.2 gets its tracks and events computed."""
    try:
        report = Report.model_validate_json(path.read_bytes())
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except ValidationError as exc:
        raise ConfigError(f"{path}: not a vidagent report ({exc.error_count()} problems, first: "
                          f"{exc.errors()[0]['msg']})") from None
    if report.detections and not report.tracks:
        report.tracks = build_tracks(report.detections)
        report.object_counts = count_objects(report.tracks)
    if not report.events:
        report.events = build_events(report.tracks, report.transcript, report.captions)
    return report
