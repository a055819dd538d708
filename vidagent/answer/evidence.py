"""The evidence for one question: the moments that bear on it, and frames of the best ones.

Retrieval is the index's own search, asked for any content word of the question; the
moments found bring their neighbours in time (what was said and seen just before and
after), since a question about "what happens after X" needs what follows X. Each moment
is written as one line that starts with the citation that names it.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..citations import Span, clock
from ..config import Settings
from ..index import Hit, IndexStore, Moment, Query, Video, terms
from ..index.frames import moment_pictures
from ..tasks.caption import CHAT_ROUTE, load_prompt

CONTEXT_S = 10.0  # neighbours within this many seconds of a moment found
NEIGHBOURS = 2  # per moment found, nearest first
FRAME_SIDE = 512  # long side of each frame sent, px
_CONTEXT_KINDS = ("speech", "caption", "event")


@dataclass
class Evidence:
    hits: list[Hit]  # what retrieval found, best first
    moments: list[tuple[Video, Moment]]  # what is sent: the hits and their neighbours, in time order
    frames: list[tuple[Video, float, bytes]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    names: dict[int, str] = field(default_factory=dict)  # video id -> its name in citations

    @property
    def multi(self) -> bool:
        return len(self.names) > 1

    def cite(self, video: Video, t: float, end: float | None = None) -> str:
        when = clock(t) if end is None or clock(end) == clock(t) else f"{clock(t)}-{clock(end)}"
        return f"[{self.names[video.id]} {when}]" if self.multi else f"[{when}]"

    def lines(self) -> list[str]:
        return [f"{self.cite(v, m.start, m.end)} {m.kind}{f' ({m.label})' if m.label else ''}: "
                f"{m.text}" for v, m in self.moments]

    def spans(self) -> list[Span]:
        """What a citation may point to: every moment and frame sent."""
        spans = [Span(v.id, m.start, m.end, (v, m)) for v, m in self.moments]
        return spans + [Span(v.id, t, t, (v, None)) for v, t, _ in self.frames]

    def citation_names(self) -> dict[str, int]:
        names = {}
        for video, _ in self.moments:
            names[self.names[video.id]] = video.id
            names[video.name] = video.id
        return names


def gather(store: IndexStore, question: str, video_ids: tuple[int, ...] | None, settings: Settings) -> Evidence | None:
    """None when nothing in the index bears on the question."""
    hits = store.search(Query(question, mode="any", video_ids=video_ids, limit=settings.ask_max_moments))
    if not hits:
        return None
    chosen: dict[tuple[int, int], tuple[Video, Moment]] = {(h.video.id, h.moment.id): (h.video, h.moment) for h in hits}
    for hit in hits:
        if len(chosen) >= settings.ask_max_moments:
            break
        m = hit.moment
        around = store.moments(hit.video.id, m.start - CONTEXT_S, m.end + CONTEXT_S, _CONTEXT_KINDS)
        around = [n for n in around if (hit.video.id, n.id) not in chosen]
        for near in sorted(around, key=lambda n: abs(n.start - m.start))[:NEIGHBOURS]:
            if len(chosen) < settings.ask_max_moments:
                chosen[(hit.video.id, near.id)] = (hit.video, near)
    moments = sorted(chosen.values(), key=lambda vm: (vm[0].name, vm[0].id, vm[1].start, vm[1].id))
    evidence = Evidence(hits, moments, names=_names([v for v, _ in moments]))
    _add_frames(evidence, settings.ask_max_frames)
    return evidence


def _names(videos: list[Video]) -> dict[int, str]:
    """Each video's name in citations: its file name without extension, made unique."""
    names: dict[int, str] = {}
    for video in videos:
        if video.id in names:
            continue
        base = Path(video.name).stem or f"video{video.id}"
        name, n = base, 1
        while name in names.values():
            n += 1
            name = f"{base}-{n}"
        names[video.id] = name
    return names


def _add_frames(evidence: Evidence, most: int) -> None:
    wanted: list[tuple[Video, float]] = []
    for hit in evidence.hits:
        key = (hit.video, round(hit.moment.at))
        if len(wanted) < most and all((v.id, round(t)) != (key[0].id, key[1]) for v, t in wanted):
            wanted.append((hit.video, hit.moment.at))
    if not wanted:
        return
    pictures = moment_pictures(wanted, side=FRAME_SIDE)
    evidence.notes += pictures.notes
    for video, t in wanted:
        picture = pictures.get(video, t)
        if picture is not None:
            evidence.frames.append((video, t, picture[0]))
    if pictures.notes:
        evidence.notes.append("the evidence for those videos is text only")


def build_job(question: str, evidence: Evidence, settings: Settings) -> dict[str, Any]:
    """One chat request: instructions, evidence lines, frames (each named by its
    citation), then the question."""
    example = "[name 00:12]" if evidence.multi else "[00:12]"
    prompt = load_prompt(None, "ask.txt").replace("{example}", example)
    content: list[dict[str, Any]] = [
        {"type": "text", "text": f"{prompt}\n\nEvidence:\n" + "\n".join(evidence.lines())},
    ]
    for video, t, jpeg in evidence.frames:
        content.append({"type": "text", "text": f"Frame at {evidence.cite(video, t)}:"})
        content.append({"type": "image_url",
                        "image_url": {"url": "data:image/jpeg;base64," + base64.b64encode(jpeg).decode("ascii")}})
    content.append({"type": "text", "text": f"Question: {question}"})
    body = {
        "model": settings.vlm_model,
        "messages": [{"role": "user", "content": content}],
        "max_tokens": max(settings.vlm_max_tokens, 400),
        "temperature": 0,
    }
    return {"openai_route": CHAT_ROUTE, "openai_input": body}


def searched_words(question: str) -> list[str]:
    return [t.text for t in terms(question, "any")]
