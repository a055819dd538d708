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


def short_clock(seconds: float) -> str:
    """`MM:SS`, or `H:MM:SS` past an hour: for people, not for subtitles."""
    whole = max(0, int(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


def subtitles(cues: list[tuple[float, float, str]], fmt: str, voices: list[str | None] | None = None) -> str:
    """Cues (start, end, text) as an SRT or WebVTT document.

    Cue text cannot hold what would end or break a cue: blank lines end it, and a line
    with `-->` reads as a timing line, so blank lines are dropped and `-->` becomes `->`.
    WebVTT also parses `<` and `&` as markup (`<c>`, `&amp;`): they are escaped there.
    SRT is composed by the `srt` library. `voices`: who speaks each cue (or None): an
    `NAME: ` prefix in SRT, a `<v NAME>` voice span in WebVTT."""
    if fmt not in ("srt", "vtt"):
        raise ValueError(f"unknown subtitle format {fmt!r}")
    # A cue must last a moment: `srt` drops empty ones, and a player never shows them.
    voices = voices or [None] * len(cues)
    cleaned = [(start, max(end, start + 0.001), _cue_text(text), voice)
               for (start, end, text), voice in zip(cues, voices)]
    cleaned = [cue for cue in cleaned if cue[2]]
    if fmt == "srt":
        import datetime as dt

        import srt

        return srt.compose([srt.Subtitle(i, dt.timedelta(seconds=max(0.0, a)), dt.timedelta(seconds=max(0.0, b)),
                                         f"{_cue_text(v).upper()}: {t}" if v else t)
                            for i, (a, b, t, v) in enumerate(cleaned, start=1)])
    blocks = ["WEBVTT\n"]
    for start, end, text, voice in cleaned:
        escaped = text.replace("&", "&amp;").replace("<", "&lt;")
        if voice:  # a voice name ends at '>' and cannot hold markup or a line break
            name = " ".join(voice.split()).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            escaped = f"<v {name}>{escaped}"
        blocks.append(f"{clock(start)} --> {clock(end)}\n{escaped}\n")
    return "\n".join(blocks)


def _cue_text(text: str) -> str:
    lines = [line.strip().replace("-->", "->") for line in text.replace("\r", "\n").split("\n")]
    return "\n".join(line for line in lines if line)
