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
    "html": ("report.html", lambda report: _html(report)),
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
    ends = [c.t for c in captions[1:]] + [report.media.duration_s]
    cues = [(c.t, min(end, c.t + CAPTION_SHOWN_S), c.text) for c, end in zip(captions, ends)]
    return subtitles(cues, fmt)


def event_subtitles(report: Report, fmt: str) -> str:
    cues = [(e.start, max(e.end, e.start + EVENT_SHOWN_S), e.text) for e in report.events if e.text.strip()]
    return subtitles(cues, fmt)


def _html(report: Report) -> str:
    from .html import render_html  # Jinja2 and PyAV load only when HTML is asked for

    return render_html(report)


def write_report(report: Report, folder: Path, formats: list[str]) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for fmt in formats:
        name, render = WRITERS[fmt]
        written.append(atomic_write(folder / name, render(report)))
    return written
