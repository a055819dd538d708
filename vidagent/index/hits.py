"""Turning what a backend found into hits: highlight markers, the instant to show (shared)."""

from __future__ import annotations

import re

from .moments import Moment

MARK_ON, MARK_OFF = "\x01", "\x02"  # what backends wrap matches in; never in real text


def presence_moment(label: str, k: int, start: float, end: float) -> Moment:
    text = f"{k} or more {label} in frame" if k > 1 else f"{label} in frame"
    return Moment("object", start, end, text, label=label, at=start, detail={"min_count": k})


def unmark(marked: str) -> tuple[str, list[tuple[int, int]]]:
    """Text without highlight() markers, and the character spans they enclosed."""
    parts, spans, length, opened = [], [], 0, None
    for piece in re.split(f"([{MARK_ON}{MARK_OFF}])", marked):
        if piece == MARK_ON:
            opened = length
        elif piece == MARK_OFF:
            if opened is not None:
                spans.append((opened, length))
            opened = None
        else:
            parts.append(piece)
            length += len(piece)
    return "".join(parts), spans


def at_first_word(moment: Moment, text: str, spans: list[tuple[int, int]]) -> None:
    """A speech moment with word times starts playing at the first word that matched."""
    words = moment.detail.get("words")
    if not (words and spans):
        return
    position = 0
    for word, start, _end in words:
        found = text.find(word.strip(), position)
        if found < 0:
            continue
        position = found + len(word.strip())
        if position > spans[0][0]:
            moment.at = start
            return
