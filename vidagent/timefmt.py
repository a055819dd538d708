"""Timestamps for people: one place that turns float seconds into text."""

from __future__ import annotations


def clock(seconds: float, decimal_marker: str = ".", always_hours: bool = True) -> str:
    """`HH:MM:SS.mmm` (SRT wants `,` as the marker, WebVTT `.`)."""
    millis = max(0, round(seconds * 1000))
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    head = f"{hours:02d}:" if always_hours or hours else ""
    return f"{head}{minutes:02d}:{secs:02d}{decimal_marker}{millis:03d}"


def subtitles(cues: list[tuple[float, float, str]], fmt: str) -> str:
    """Cues (start, end, text) as an SRT or WebVTT document."""
    if fmt not in ("srt", "vtt"):
        raise ValueError(f"unknown subtitle format {fmt!r}")
    marker = "," if fmt == "srt" else "."
    blocks = ["WEBVTT\n"] if fmt == "vtt" else []
    for number, (start, end, text) in enumerate(cues, start=1):
        text = text.strip().replace("-->", "->")
        timing = f"{clock(start, marker)} --> {clock(max(end, start), marker)}"
        blocks.append(f"{number}\n{timing}\n{text}\n" if fmt == "srt" else f"{timing}\n{text}\n")
    return "\n".join(blocks)
