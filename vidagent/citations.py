"""Citations in a model's answer, checked against the moments the model was shown (pure).

A citation is a time in square brackets: `[00:12]`, `[1:02:03]`, `[00:12-00:15]`, several
in one bracket (`[00:12, 01:05]`), and across videos `[name 00:12]`. Each must fall on a
moment that was sent to the model (within `TOLERANCE_S`: a clock shows whole seconds);
the others are removed from the answer and listed with the reason. Brackets that hold no
time (`[1]`, `[sic]`) are text, not citations. The same check serves `vidagent ask` and
the summary of a report (vidagent/tasks/summary.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Hashable

# How a time is written in evidence and citations: MM:SS, H:MM:SS past an hour.
from .timefmt import short_clock as clock

TOLERANCE_S = 1.0
_TIME = r"\d{1,2}(?::\d{2}){1,2}(?:\.\d+)?"
_BRACKET = re.compile(r"\[([^\[\]\n]{1,300})\]")
_PIECE = re.compile(rf"^\s*(?P<name>.*?)\s*(?P<t>{_TIME})(?:\s*[-–]\s*(?P<t2>{_TIME}))?\s*$")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def parse_clock(text: str) -> float:
    """`MM:SS`, `H:MM:SS`, with optional decimals, or plain seconds, as float seconds."""
    parts = text.strip().split(":")
    if not 1 <= len(parts) <= 3 or not all(parts):
        raise ValueError(f"{text!r} is not a time (use SS, MM:SS or H:MM:SS)")
    seconds = 0.0
    for part in parts:
        seconds = seconds * 60 + float(part)
    if seconds < 0:
        raise ValueError(f"{text!r} is negative")
    return seconds


@dataclass(frozen=True)
class Span:
    """A moment the model was shown: its video's key, its time span, and what to hand back."""

    video: Hashable
    start: float
    end: float
    ref: Any = None


@dataclass
class Citation:
    text: str  # the citation as written, e.g. "sample 00:12"
    video: Hashable
    t: float
    t_end: float | None
    spans: list[Span]  # the moments it falls on


@dataclass
class Unresolved:
    text: str
    reason: str


@dataclass
class Sentence:
    text: str  # without its citations
    citations: list[Citation] = field(default_factory=list)


@dataclass
class Checked:
    text: str  # the answer with unresolved citations removed
    citations: list[Citation]
    unresolved: list[Unresolved]
    sentences: list[Sentence]


def check(answer: str, spans: list[Span], names: dict[str, Hashable] | None = None,
          tolerance: float = TOLERANCE_S) -> Checked:
    """Resolve every citation in `answer` against `spans`.

    `names` maps how a video may be named in a citation (lower case) to its key; a
    citation without a name belongs to the only video when there is one, else to the one
    video that has a moment at that time."""
    names = {k.lower(): v for k, v in (names or {}).items()}
    videos = list(dict.fromkeys(s.video for s in spans))
    tokens: list[tuple[str, Any]] = []
    citations: list[Citation] = []
    unresolved: list[Unresolved] = []
    last = 0
    for match in _BRACKET.finditer(answer):
        pieces = [_PIECE.match(p) for p in re.split(r"[,;]", match.group(1))]
        if not all(pieces):
            continue  # not a citation: stays as text
        tokens.append(("text", answer[last:match.start()]))
        kept = []
        for piece in pieces:
            found = _resolve(piece, spans, names, videos, tolerance)
            if isinstance(found, Citation):
                kept.append(found)
            else:
                unresolved.append(Unresolved(piece.group(0).strip(), found))
        citations += kept
        tokens.append(("cite", kept))
        last = match.end()
    tokens.append(("text", answer[last:]))
    return Checked(_tidy(_join(tokens)), citations, unresolved, _sentences(tokens))


def _resolve(piece: re.Match, spans: list[Span], names: dict, videos: list, tolerance: float) -> Citation | str:
    text = piece.group(0).strip()
    t = parse_clock(piece.group("t"))
    t_end = parse_clock(piece.group("t2")) if piece.group("t2") else None
    name = piece.group("name").strip().strip("\"'").lower()
    if name:
        if name not in names:
            return f"names no video that was shown ({piece.group('name').strip()!r})"
        candidates = [names[name]]
    else:
        candidates = videos
    hits = {}
    for video in candidates:
        on = [s for s in spans if s.video == video and _covers(s, t, t_end, tolerance)]
        if on:
            hits[video] = on
    if not hits:
        where = f" of {piece.group('name').strip()}" if name else ""
        return f"no moment{where} that was shown is at {clock(t)}"
    if len(hits) > 1:
        return f"{clock(t)} is in more than one video: name the file, e.g. [name {clock(t)}]"
    [(video, on)] = hits.items()
    return Citation(text, video, t, t_end, on)


def _covers(span: Span, t: float, t_end: float | None, tolerance: float) -> bool:
    # A written clock truncates to the second: 00:12 stands for 12.0-12.999.
    inside = span.start - tolerance <= t <= span.end + tolerance
    if t_end is None:
        return inside
    return span.start - tolerance <= t_end and t <= span.end + tolerance


def _join(tokens: list[tuple[str, Any]]) -> str:
    out = []
    for kind, value in tokens:
        if kind == "text":
            out.append(value)
        elif value:
            out.append("[" + ", ".join(c.text for c in value) + "]")
    return "".join(out)


def _tidy(text: str) -> str:
    text = re.sub(r"[ \t]+", " ", text)
    text = re.sub(r" +([.,;:!?])", r"\1", text)
    return "\n".join(line.strip() for line in text.strip().splitlines())


def _sentences(tokens: list[tuple[str, Any]]) -> list[Sentence]:
    """Sentences with the citations written in them or right after their full stop."""
    done: list[Sentence] = []
    current = Sentence("")
    for kind, value in tokens:
        if kind == "cite":
            # "X happened. [00:12] Y…": a citation opening a sentence belongs to the last one.
            target = done[-1] if done and not current.text.strip() else current
            target.citations += value
            continue
        parts = _SENTENCE_END.split(value)
        current.text += parts[0]
        for part in parts[1:]:
            done.append(current)
            current = Sentence(part)
    done.append(current)
    for sentence in done:
        sentence.text = _tidy(sentence.text)
    return [s for s in done if s.text]
