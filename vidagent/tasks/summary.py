"""The summary of a video, every sentence with the times it rests on (pure, but for `submit`).

The material is one line per caption and speech segment, `[00:12] speech: …`, in time
order. Up to `summary_part_chars` of it go into one request. A longer video is cut into
parts at line boundaries and each part is summarised with citations; the part summaries
(with theirs) are then summarised again, level by level, until one request holds them
all, so the summary covers the whole video however long it is. Every answer's citations
are checked against the material's moments (vidagent/citations.py): the ones that point
to no caption or segment are removed and counted in the report's warnings.
"""

from __future__ import annotations

import asyncio
from typing import Any, Awaitable, Callable

from ..citations import Span, check, clock
from ..config import Settings
from ..report.model import Caption, EvidencedSummary, Segment, SummarySentence
from .caption import CHAT_ROUTE, answer_text, load_prompt

Submit = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]  # payload -> the VLM's output
Line = tuple[str, str, str]  # (first time, last time, text), times as written


def material(captions: list[Caption], segments: list[Segment]) -> tuple[list[Line], list[Span]]:
    """The lines sent, in time order, and the moments a citation may point to."""
    rows = [(c.t, c.t, "caption", c.text.strip()) for c in captions if c.text.strip()]
    rows += [(s.start, s.end, "speech", s.text.strip()) for s in segments if s.text.strip()]
    rows.sort(key=lambda r: (r[0], r[2]))
    lines = [(clock(start), clock(start), f"[{clock(start)}] {kind}: {text}") for start, _, kind, text in rows]
    return lines, [Span(0, start, end) for start, end, _, _ in rows]


def split(lines: list[Line], max_chars: int) -> list[list[Line]]:
    """Consecutive groups of whole lines, each within `max_chars` (a longer line alone);
    always fewer groups than lines, so that every level of summaries shrinks."""
    groups: list[list[Line]] = [[]]
    size = 0
    for line in lines:
        if groups[-1] and size + len(line[2]) + 1 > max_chars:
            groups.append([])
            size = 0
        groups[-1].append(line)
        size += len(line[2]) + 1
    if 1 < len(lines) == len(groups):  # every line too long for company: pair them up
        groups = [lines[i:i + 2] for i in range(0, len(lines), 2)]
    return groups


def job(prompt: str, lines: list[Line], settings: Settings) -> dict[str, Any]:
    body = {
        "model": settings.vlm_model,
        "messages": [{"role": "user", "content": prompt + "\n\n" + "\n".join(text for _, _, text in lines)}],
        "max_tokens": settings.summary_max_tokens,
        "temperature": 0,
    }
    return {"openai_route": CHAT_ROUTE, "openai_input": body}


def read_answer(text: str, spans: list[Span]) -> tuple[list[SummarySentence], int]:
    """Sentences with the times they cite, and how many citations were removed."""
    checked = check(text, spans)
    sentences = [SummarySentence(text=s.text, times=sorted({c.t for c in s.citations})) for s in checked.sentences]
    return sentences, len(checked.unresolved)


def as_lines(sentences: list[SummarySentence]) -> str:
    return " ".join(s.text + "".join(f" [{clock(t)}]" for t in s.times) for s in sentences)


async def summarise(captions: list[Caption], segments: list[Segment], settings: Settings,
                    submit: Submit) -> EvidencedSummary:
    lines, spans = material(captions, segments)
    if not lines:
        return EvidencedSummary(sentences=[], warnings=["summary: nothing was said or captioned to summarise"])
    first = load_prompt(settings.summary_prompt, "summary.txt")
    whole = load_prompt(None, "summary_whole.txt")
    removed = 0
    prompt = first
    while True:
        groups = split(lines, settings.summary_part_chars)
        if len(groups) == 1:
            sentences, lost = read_answer(answer_text(await submit(job(prompt, groups[0], settings))), spans)
            return _finish(sentences, removed + lost)
        answers = await asyncio.gather(*(
            submit(job(_part_prompt(prompt, group, n, len(groups)), group, settings))
            for n, group in enumerate(groups, start=1)
        ))
        lines = []
        for n, (group, output) in enumerate(zip(groups, answers), start=1):
            sentences, lost = read_answer(answer_text(output), spans)
            removed += lost
            first, last = group[0][0], group[-1][1]
            lines.append((first, last, f"Part {n} (from {first} to {last}): {as_lines(sentences)}"))
        prompt = whole


def _part_prompt(prompt: str, group: list[Line], n: int, parts: int) -> str:
    return (f"{prompt}\n\nThis is part {n} of {parts} of the video (from {group[0][0]} to {group[-1][1]}); "
            "summarise this part only.")


def _finish(sentences: list[SummarySentence], removed: int) -> EvidencedSummary:
    warnings = []
    if removed:
        warnings.append(f"summary: {removed} citation(s) pointed to no caption or speech and were removed")
    uncited = sum(1 for s in sentences if not s.times)
    if uncited:
        warnings.append(f"summary: {uncited} of {len(sentences)} sentence(s) cite no moment")
    return EvidencedSummary(sentences=sentences, warnings=warnings)
