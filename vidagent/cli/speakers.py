"""`vidagent speakers`: list a report's speakers and give them names, no models run.

`rename REPORT 1="Dr. Lee"` changes the names in report.json, writes again the subtitles
and HTML page that sit beside it, and replaces the report in the search index, so
`search --speaker "Dr. Lee"` and `ask` use the new name at once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

speakers_app = typer.Typer(help="A report's speakers: list them, give them names.", no_args_is_help=True)
# Files written from report.json that show speaker names (report/writers.py's names).
_RENDERED = ("srt", "vtt", "html")


@speakers_app.command("list")
def list_command(
    report_json: Annotated[Path, typer.Argument(metavar="REPORT", help="report.json or its folder.", show_default=False)],
) -> None:
    """Each speaker: id, name, seconds of speech, turns."""
    from ..report.reader import read_report

    report = read_report(_report_file(report_json))
    if not report.speakers:
        print(f"{report_json}: no speakers (analyse with --speakers)")
        return
    for sp in report.speakers:
        print(f"{sp.id}\t{sp.name}\t{sp.speech_s:.1f}s\t{sp.turns} turns")


@speakers_app.command("rename")
def rename_command(
    report_json: Annotated[Path, typer.Argument(metavar="REPORT", help="report.json or its folder.", show_default=False)],
    names: Annotated[list[str], typer.Argument(metavar='ID=NAME...', help='e.g. 1="Dr. Lee" 2=Sam', show_default=False)],
    index: Annotated[
        Optional[str],
        typer.Option("--index", help="Index to update (default: the index setting, else index.sqlite beside the report's folder)."),
    ] = None,
) -> None:
    """Name speakers: report.json, its subtitles and HTML page, and the index are updated."""
    from ..errors import ConfigError
    from ..files import atomic_write
    from ..report.reader import read_report
    from ..report.writers import WRITERS, render_file

    path = _report_file(report_json)
    report = read_report(path)
    if not report.speakers:
        raise ConfigError(f"{path}: the report has no speakers to rename (analyse with --speakers)")
    known = {sp.id: sp for sp in report.speakers}
    for item in names:
        key, sep, name = item.partition("=")
        key, name = key.strip(), " ".join(name.split())
        if not sep or not name:
            raise ConfigError(f"{item!r}: expected ID=NAME, e.g. 1=\"Dr. Lee\"")
        if key not in known:
            by_name = [sp for sp in report.speakers if sp.name.lower() == key.lower()]
            if not by_name:
                raise ConfigError(f"{item!r}: no speaker {key!r} in {path} (speakers: "
                                  f"{', '.join(f'{s.id}={s.name}' for s in report.speakers)})")
            key = by_name[0].id
        known[key].name = name
    atomic_write(path, render_file("json", report, path.parent))
    print(path)
    for fmt in _RENDERED:
        target = path.parent / WRITERS[fmt][0]
        if target.exists():
            # The page links its video from its folder, as analyze wrote it (render_file).
            print(atomic_write(target, render_file(fmt, report, path.parent)))
    where = _index_location(path, index)
    if where is None:
        print("no index found beside the report: none updated (give --index)")
        return
    from ..index import add_report

    add_report(where, path, report)
    print(f"{where}: updated")


def _report_file(path: Path) -> Path:
    return path / "report.json" if path.is_dir() else path


def _index_location(report_path: Path, given: str | None) -> str | None:
    from ..config import load_settings
    from ..index import DEFAULT_NAME

    chosen = given or load_settings().index
    if chosen:
        return chosen
    beside = report_path.resolve().parent.parent / DEFAULT_NAME
    return str(beside) if beside.exists() else None
