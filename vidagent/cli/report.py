"""`vidagent report`: write report files again from an existing report.json, no models.

Useful after an upgrade (a new writer, the HTML page) or when the video has moved: the
HTML page decodes its thumbnails from the source video, found at --video or where the
report says it was analysed.
"""

from __future__ import annotations

import sys
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
    html_video: Annotated[
        Optional[str],
        typer.Option("--html-video", help="What report.html plays: source (the video, linked relative to the page), proxy (a small copy that every browser plays, written beside the page), none. Env: VIDAGENT_HTML_VIDEO. Default: what analyze used."),
    ] = None,
) -> None:
    """Re-render report files (HTML, subtitles) from a report.json without running models."""
    from ..errors import ConfigError
    from ..files import atomic_write
    from ..report.reader import read_report
    from ..report.writers import WRITERS, render_file

    chosen = _split(formats) or ["html"]
    unknown = [f for f in chosen if f not in WRITERS]
    if unknown:
        raise ConfigError(f"unknown format {', '.join(unknown)} (choose from {', '.join(WRITERS)})")
    html_video = _html_video(html_video)
    report = read_report(report_json)
    folder = out or report_json.parent
    folder.mkdir(parents=True, exist_ok=True)
    for fmt in chosen:
        print(atomic_write(folder / WRITERS[fmt][0], render_file(fmt, report, folder, video, html_video)))
    if "html" in chosen:
        from ..report.html import html_warning

        advice = html_warning(report, video, html_video)
        if advice:
            print(f"vidagent: warning: {advice}", file=sys.stderr)


def _html_video(flag: str | None) -> str | None:
    """--html-video, else VIDAGENT_HTML_VIDEO, else None (the report's own setting)."""
    import os

    from ..config import env_name
    from ..errors import ConfigError
    from ..report.player import HTML_VIDEO_MODES

    value, where = (flag, "option --html-video") if flag is not None else (os.environ.get(env_name("html_video")), env_name("html_video"))
    if value is not None and value not in HTML_VIDEO_MODES:
        raise ConfigError(f"{where}: expected one of {', '.join(HTML_VIDEO_MODES)} (got {value!r})")
    return value


def _split(values: list[str] | None) -> list[str]:
    return [part.strip() for value in values or [] for part in value.split(",") if part.strip()]
