"""`vidagent report`: write report files again from an existing report.json, no models.

Useful after an upgrade (a new writer, the HTML page) or when the video has moved: the
HTML page decodes its thumbnails from the source video, found at --video or where the
report says it was analysed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer


def report_command(
    report_json: Annotated[
        Path, typer.Argument(metavar="REPORT.json", help="A report.json written by `vidagent analyze`.", show_default=False)
    ],
    formats: Annotated[
        Optional[list[str]],
        typer.Option("--format", "-f", help="Files to write: html, srt, vtt, captions_srt, captions_vtt, events_srt, events_vtt, json; repeat or comma-separate. Default: html."),
    ] = None,
    video: Annotated[
        Optional[Path],
        typer.Option("--video", help="The source video, for thumbnails in html. Default: the path in the report."),
    ] = None,
    out: Annotated[
        Optional[Path],
        typer.Option("--out", "-o", help="Folder to write into. Default: the report's folder."),
    ] = None,
) -> None:
    """Re-render report files (HTML, subtitles) from a report.json without running models."""
    from ..errors import ConfigError
    from ..files import atomic_write
    from ..report.writers import WRITERS

    chosen = _split(formats) or ["html"]
    unknown = [f for f in chosen if f not in WRITERS]
    if unknown:
        raise ConfigError(f"unknown format {', '.join(unknown)} (choose from {', '.join(WRITERS)})")
    report = load_report(report_json)
    folder = out or report_json.parent
    folder.mkdir(parents=True, exist_ok=True)
    for fmt in chosen:
        name, render = WRITERS[fmt]
        if fmt == "html":
            from ..report.html import render_html

            text = render_html(report, video)
        else:
            text = render(report)
        print(atomic_write(folder / name, text))


def load_report(path: Path):
    """Read a report; one written before schema 1.2 gets its tracks and events computed."""
    from pydantic import ValidationError

    from ..errors import ConfigError
    from ..report.events import build_events
    from ..report.model import Report
    from ..report.tracks import build_tracks, count_objects

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


def _split(values: list[str] | None) -> list[str]:
    return [part.strip() for value in values or [] for part in value.split(",") if part.strip()]
