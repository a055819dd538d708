"""What a search asks for, and the words of a query as full-text terms (pure).

People type words, "quoted phrases" and prefixes (`light*`); nothing they type is passed
to a full-text engine as syntax, so `NOT`, `-` or a stray quote cannot break a query.
`search` wants every term (AND); `ask` wants any content word of a question (OR), with
the words that carry no content dropped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_TOKEN = re.compile(r'"([^"]*)"|([^\W_][\w\'’-]*\*?)')

STOP_WORDS = frozenset("""
a about above after again all also am an and any are as at be been before being below between both
but by can could did do does doing down during each few for from further had has have having he her
here hers him his how i if in into is it its itself just me more most my no nor not now of off on
once only or other our out over own same she should so some such than that the their them then there
these they this those through to too under until up very was we were what when where which while who
whom why will with would you your yours show tell find happen happens happened video clip someone
something anyone anything does did please moment moments
""".split())


@dataclass(frozen=True)
class Term:
    text: str  # one word, or several for a phrase
    prefix: bool = False

    @property
    def phrase(self) -> bool:
        return " " in self.text


@dataclass
class Query:
    """A search: words (optional) and filters. Times are seconds on each video's clock."""

    text: str | None = None
    mode: str = "all"  # all: every term must match; any: one is enough (ask)
    label: str | None = None
    min_count: int = 1  # with label: at least this many in frame at once
    video_glob: str | None = None  # matched against the file name and the full path
    start: float | None = None
    end: float | None = None
    kinds: tuple[str, ...] = ()
    speaker: str | None = None  # speech of this speaker (name, case-insensitive); with label: while they speak
    video_ids: tuple[int, ...] | None = None  # restrict to these videos (ask's target)
    limit: int = 20


def terms(text: str | None, mode: str = "all") -> list[Term]:
    """The terms of a query. Words that carry no content are dropped when others remain
    (always, for `any`, so a question of only such words finds nothing)."""
    found: list[Term] = []
    for match in _TOKEN.finditer(text or ""):
        if match.group(1) is not None:
            words = " ".join(re.findall(r"[^\W_][\w'’-]*", match.group(1)))
            if words:
                found.append(Term(words.lower()))
        else:
            word = match.group(2)
            found.append(Term(word.rstrip("*").lower(), prefix=word.endswith("*")))
    content = [t for t in found if t.phrase or t.prefix or t.text not in STOP_WORDS]
    if mode == "any" or content:
        found = content
    return list(dict.fromkeys(found))


def fts5_match(found: list[Term], mode: str = "all") -> str:
    """An FTS5 MATCH expression: every term a quoted string, joined by AND or OR."""
    quoted = ['"' + t.text.replace('"', '""') + '"' + ("*" if t.prefix else "") for t in found]
    return (" OR " if mode == "any" else " AND ").join(quoted)
