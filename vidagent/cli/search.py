"""`vidagent index`, `vidagent search` and `vidagent ask`: from reports to moments and answers."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

_FILTERS = "Filters"
_OUTPUT = "Output"
_MODELS = "Models"

IndexOption = Annotated[
    Optional[str],
    typer.Option("--index", help="Index file, a reports folder (its index.sqlite) or a postgresql:// URL. Env: VIDAGENT_INDEX. Default: <out>/index.sqlite (out from --config, else vidagent-out)."),
]
ConfigOption = Annotated[Optional[Path], typer.Option("--config", "-c", help="YAML settings file.")]


def index_command(
    paths: Annotated[list[Path], typer.Argument(metavar="DIR_OR_REPORTS...", help="Folders searched for report.json, or report files.", show_default=False)],
    index: IndexOption = None,
    config: ConfigOption = None,
    rebuild: Annotated[bool, typer.Option("--rebuild", help="Index every report again, changed or not.")] = False,
) -> None:
    """Build or refresh the search index from existing reports.

    New and changed reports are (re)indexed, reports gone from the given folders are
    removed. With one folder and no --index, the index is DIR/index.sqlite.
    Exit codes: 0 done; 1 some reports could not be read (the others are indexed).
    """
    from ..config import load_settings
    from ..index import DEFAULT_NAME, default_location, open_index
    from ..index.refresh import refresh

    settings = load_settings(config, {"index": index})
    if settings.index is None and len(paths) == 1 and paths[0].is_dir():
        location = str(paths[0] / DEFAULT_NAME)
    else:
        location = default_location(settings.index, settings.out)
    store = open_index(location)
    try:
        done = refresh(store, paths, force=rebuild)
    finally:
        store.close()
    for line in done.failed:
        print(f"vidagent: error: {line}", file=sys.stderr)
    print(f"{location}: {len(done.reports)} reports ({done.added} added, {done.updated} updated, "
          f"{done.unchanged} unchanged, {done.removed} removed), {done.moments} moments written")
    raise typer.Exit(1 if done.failed else 0)


def search_command(
    query: Annotated[Optional[str], typer.Argument(help='Words, "a phrase", prefix*; every word must match. Optional with --label or --kind.', show_default=False)] = None,
    index: IndexOption = None,
    config: ConfigOption = None,
    label: Annotated[Optional[str], typer.Option(help="Only where this object class is in frame (e.g. person).", rich_help_panel=_FILTERS)] = None,
    min_count: Annotated[int, typer.Option(min=1, help="With --label: at least this many in frame at once.", rich_help_panel=_FILTERS)] = 1,
    speaker: Annotated[Optional[str], typer.Option(help='Only what this speaker says ("Speaker 2", or a name given with `vidagent speakers rename`); with --label: while they speak.', rich_help_panel=_FILTERS)] = None,
    video: Annotated[Optional[str], typer.Option(help="Only videos whose file name or path matches this glob (e.g. 'cam*').", rich_help_panel=_FILTERS)] = None,
    start: Annotated[Optional[str], typer.Option("--from", help="Only moments after this time in each video (SS, MM:SS, H:MM:SS).", rich_help_panel=_FILTERS)] = None,
    end: Annotated[Optional[str], typer.Option("--to", help="Only moments before this time.", rich_help_panel=_FILTERS)] = None,
    kind: Annotated[Optional[str], typer.Option(help="Only these kinds: speech, caption, event, object, summary (comma-separated).", rich_help_panel=_FILTERS)] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, max=1000, help="Most moments listed.", rich_help_panel=_OUTPUT)] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON document on stdout.", rich_help_panel=_OUTPUT)] = False,
    html: Annotated[Optional[Path], typer.Option(help="Also write a page with thumbnails and links that play each moment.", rich_help_panel=_OUTPUT)] = None,
    clips: Annotated[Optional[Path], typer.Option(help="Also cut each moment out of its video into this folder (stream copy when a keyframe allows).", rich_help_panel=_OUTPUT)] = None,
) -> None:
    """Ranked moments across every indexed video: what was said, captioned, detected.

    Exit codes: 0 moments found; 1 none matched; 2 usage or configuration error.
    """
    from ..config import load_settings
    from ..errors import ConfigError
    from ..index import KINDS, MAX_COUNT, Query, default_location, open_index

    kinds = tuple(k.strip() for k in (kind or "").split(",") if k.strip())
    if bad := [k for k in kinds if k not in KINDS]:
        raise ConfigError(f"option --kind: unknown kind {bad[0]!r} (choose from {', '.join(KINDS)})")
    if not (query and query.strip()) and not label and not kinds and not speaker:
        raise typer.BadParameter("give words to look for, or a filter such as --label person", param_hint="QUERY")
    if min_count > 1 and not label:
        raise ConfigError("option --min-count needs --label (at least N of which class?)")
    if min_count > MAX_COUNT:
        raise ConfigError(f"option --min-count: the index counts up to {MAX_COUNT} objects of a class")
    settings = load_settings(config, {"index": index})
    location = default_location(settings.index, settings.out)
    if speaker and speaker.strip().isdigit():
        speaker = f"Speaker {speaker.strip()}"  # the id, as reports name speakers until renamed
    q = Query(text=query, label=label, min_count=min_count, video_glob=video, start=_time(start, "--from"),
              end=_time(end, "--to"), kinds=kinds, limit=limit, speaker=speaker)
    store = open_index(location, create=False)
    try:
        hits = store.search(q)
    finally:
        store.close()
    cut = []
    if clips is not None:
        from ..index.clips import cut_clips

        cut = cut_clips(hits, clips)
    if html is not None:
        _write_page(hits, query, _describe(q), location, html)
    if hits.ranked_among:
        print(f"vidagent: note: more than {hits.ranked_among:,} moments match; these are the best of the "
              f"{hits.ranked_among:,} indexed last (add words to narrow the search)", file=sys.stderr)
    if as_json:
        print(json.dumps({"query": query, "index": location, "filters": _describe(q), "ranked_among": hits.ranked_among,
                          "hits": [h.as_json() for h in hits],
                          "clips": [{"path": str(c.path) if c.path else None, "start": c.start, "end": c.end,
                                     "method": c.method, "note": c.note} for c in cut]}, indent=2))
    else:
        _print_hits(hits, cut)
    if not hits:
        print(f"no moment matches in {location}", file=sys.stderr)
    raise typer.Exit(0 if hits else 1)


def ask_command(
    target: Annotated[Path, typer.Argument(help="A video, a report.json, a folder of reports (or of videos) or an index file.", show_default=False)],
    question: Annotated[str, typer.Argument(help="The question, in quotes.", show_default=False)],
    index: IndexOption = None,
    config: ConfigOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="The answer, its citations with their moments and the evidence sent, as JSON.", rich_help_panel=_OUTPUT)] = False,
    backend: Annotated[Optional[str], typer.Option(help="Where the VLM runs: local, runpod, auto. Default: auto.", rich_help_panel=_MODELS)] = None,
    runpod_base_url: Annotated[Optional[str], typer.Option(help="RunPod API base URL, e.g. a `vidagent serve`'s. Env: RUNPOD_BASE_URL.", rich_help_panel=_MODELS)] = None,
    vlm_model: Annotated[Optional[str], typer.Option(help="VLM model name as the server knows it.", rich_help_panel=_MODELS)] = None,
    vlm_base_url: Annotated[Optional[str], typer.Option(help="Any OpenAI-compatible server instead of RunPod's vLLM route.", rich_help_panel=_MODELS)] = None,
    ask_max_moments: Annotated[Optional[int], typer.Option(help="Most moments sent as evidence. Default: 12.", rich_help_panel=_MODELS)] = None,
    ask_max_frames: Annotated[Optional[int], typer.Option(help="Most frames sent as images. Default: 4.", rich_help_panel=_MODELS)] = None,
) -> None:
    """Answer a question from the moments that bear on it, citing each one [00:12].

    Citations that point to no moment sent are removed and counted; when nothing in the
    index bears on the question, no model is asked and the answer says so.
    """
    import asyncio

    from ..answer import ask, open_target
    from ..config import load_settings
    from ..index import default_location

    settings = load_settings(config, {
        "index": index, "backend": backend, "runpod_base_url": runpod_base_url, "vlm_model": vlm_model,
        "vlm_base_url": vlm_base_url, "ask_max_moments": ask_max_moments, "ask_max_frames": ask_max_frames,
    })
    found = open_target(target, default_location(settings.index, settings.out))
    try:
        answer = asyncio.run(ask(found, question, settings))
    finally:
        found.store.close()
    for note in answer.evidence.notes if answer.evidence else []:
        print(f"vidagent: note: {note}", file=sys.stderr)
    if as_json:
        print(json.dumps(answer.as_json(), indent=2))
        return
    _print_answer(answer)


def _time(text: str | None, option: str) -> float | None:
    if text is None:
        return None
    from ..citations import parse_clock

    try:
        return parse_clock(text)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint=option) from None


def _describe(q) -> str:
    from ..timefmt import short_clock

    parts = []
    if q.label:
        parts.append(f"{q.min_count}+ {q.label} in frame" if q.min_count > 1 else f"{q.label} in frame")
    if q.video_glob:
        parts.append(f"videos {q.video_glob}")
    if q.start is not None or q.end is not None:
        parts.append(f"from {short_clock(q.start or 0)}" + (f" to {short_clock(q.end)}" if q.end is not None else ""))
    if q.kinds:
        parts.append("kinds " + ",".join(q.kinds))
    return ", ".join(parts)


def _write_page(hits, query, filters, location, page: Path) -> None:
    from ..files import atomic_write
    from ..index.frames import moment_pictures
    from ..index.page import render_page

    pictures = moment_pictures([(h.video, h.moment.at) for h in hits])
    for note in pictures.notes:
        print(f"vidagent: note: {note}", file=sys.stderr)
    title = f"“{query}”" if query else (filters or "moments")
    page.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(page, render_page(hits, title, filters, location, page, pictures))
    print(f"search page: {page}", file=sys.stderr)


def _print_hits(hits, clips) -> None:
    from rich.console import Console
    from rich.text import Text

    from ..report.events import span
    from ..timefmt import short_clock

    console = Console(highlight=False, soft_wrap=True)
    width = max((len(h.video.name) for h in hits), default=0)
    for number, hit in enumerate(hits, start=1):
        m = hit.moment
        when = span(m.start, m.end) if m.end > m.start else short_clock(m.start)
        if short_clock(m.at) != short_clock(m.start):  # the matching word, or a track's best frame
            when += f" @{short_clock(m.at)}"
        line = Text(f"{number:>2}  ")
        line.append(hit.video.name.ljust(width), style="bold")
        line.append(f"  {when:<11}  ")
        line.append(f"{m.kind:<7}", style="cyan")
        line.append("  ")
        if m.kind == "speech" and m.label:
            line.append(f"{m.label}: ", style="magenta")
        last = 0
        for a, b in sorted(hit.highlights):
            line.append(m.text[last:a])
            # Marked with «» when the output is not a terminal, so the match survives a pipe.
            line.append(m.text[a:b] if console.is_terminal else f"«{m.text[a:b]}»", style="bold yellow")
            last = max(last, b)
        line.append(m.text[last:])
        console.print(line)
    for clip in clips:
        console.print(f"    clip {clip.path or '-'}: {clip.note}")


def _print_answer(answer) -> None:
    from ..report.events import span

    print(answer.text)
    if not answer.found:
        return
    checked, evidence = answer.checked, answer.evidence
    if checked.citations:
        print("\nCitations:")
        for c in checked.citations:
            video, moment = c.spans[0].ref
            what = f"{moment.kind}: {moment.text}" if moment is not None else "frame"
            where = span(moment.start, moment.end) if moment is not None and moment.end > moment.start else ""
            print(f"  [{c.text}]  {video.name} {where}  {what}".rstrip())
    if checked.unresolved:
        print(f"\nRemoved {len(checked.unresolved)} citation(s) that point to no moment shown to the model:")
        for u in checked.unresolved:
            print(f"  [{u.text}]  {u.reason}")
    videos = sorted({v.name for v, _ in evidence.moments})
    print(f"\nEvidence: {len(evidence.moments)} moments, {len(evidence.frames)} frames from {', '.join(videos)}"
          f" · {answer.model}")
