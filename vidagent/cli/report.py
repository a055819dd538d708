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
    from ..report.reader import read_report
    from ..report.writers import WRITERS

    chosen = _split(formats) or ["html"]
    unknown = [f for f in chosen if f not in WRITERS]
    if unknown:
        raise ConfigError(f"unknown format {', '.join(unknown)} (choose from {', '.join(WRITERS)})")
    report = read_report(report_json)
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


def _split(values: list[str] | None) -> list[str]:
    return [part.strip() for value in values or [] for part in value.split(",") if part.strip()]
