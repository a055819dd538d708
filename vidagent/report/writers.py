"""Report files. Every file is written atomically: a half-written report never exists."""

from __future__ import annotations

from pathlib import Path

from ..files import atomic_write
from ..timefmt import subtitles
from .model import Report

WRITERS = {
    "json": ("report.json", lambda report: report.model_dump_json(indent=2) + "\n"),
    "srt": ("transcript.srt", lambda report: transcript_subtitles(report, "srt")),
    "vtt": ("transcript.vtt", lambda report: transcript_subtitles(report, "vtt")),
    "captions_srt": ("captions.srt", lambda report: caption_subtitles(report, "srt")),
    "captions_vtt": ("captions.vtt", lambda report: caption_subtitles(report, "vtt")),
    "events_srt": ("events.srt", lambda report: event_subtitles(report, "srt")),
    "events_vtt": ("events.vtt", lambda report: event_subtitles(report, "vtt")),
    "html": ("report.html", None),  # needs its folder: render_file
}
CAPTION_SHOWN_S = 5.0  # a caption stays on screen until the next one, at most this long
EVENT_SHOWN_S = 2.0  # a moment (a scene change) needs some time on screen to be read


def transcript_subtitles(report: Report, fmt: str) -> str:
    """With speakers: SRT cues start `SPEAKER 1: ` (the name in capitals, as subtitlers
    write it), WebVTT cues carry a voice span `<v Speaker 1>`."""
    cues = [(s.start, s.end, s.text) for s in report.transcript.segments if s.text.strip()]
    names = [report.speaker_name(s.speaker) for s in report.transcript.segments if s.text.strip()]
    return subtitles(cues, fmt, names if any(names) else None)


def caption_subtitles(report: Report, fmt: str) -> str:
    captions = [c for c in report.captions if c.text.strip()]
    cues = [(c.t, end, c.text) for c, end in zip(captions, caption_ends(captions, report.media.duration_s))]
    return subtitles(cues, fmt)


def caption_ends(captions: list, duration: float) -> list[float]:
    """When each caption stops being current: at the next one, at most CAPTION_SHOWN_S on."""
    nexts = [c.t for c in captions[1:]] + [duration]
    return [min(end, c.t + CAPTION_SHOWN_S) for c, end in zip(captions, nexts)]


def event_subtitles(report: Report, fmt: str) -> str:
    cues = [(e.start, max(e.end, e.start + EVENT_SHOWN_S), e.text) for e in report.events if e.text.strip()]
    return subtitles(cues, fmt)


def _html(report: Report, folder: Path, video: Path | None = None, html_video: str | None = None) -> str:
    from .html import render_html  # Jinja2 and PyAV load only when HTML is asked for

    return render_html(report, folder, video, html_video)


def render_file(fmt: str, report: Report, folder: Path, video: Path | None = None, html_video: str | None = None) -> str:
    """The text of one report file written into `folder` (the HTML page links its video
    relative to it, and may write a proxy there)."""
    if fmt == "html":
        return _html(report, folder, video, html_video)
    return WRITERS[fmt][1](report)


def write_report(report: Report, folder: Path, formats: list[str]) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    return [atomic_write(folder / WRITERS[fmt][0], render_file(fmt, report, folder)) for fmt in formats]
