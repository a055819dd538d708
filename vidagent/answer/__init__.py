"""`vidagent ask`: an answer from the VLM that rests on moments, or none.

Retrieve the moments that bear on the question (answer/evidence.py), send them with
frames of the best ones through the configured VLM transport, and keep only citations
that fall on a moment that was sent (vidagent/citations.py); the others are removed from
the answer and counted. When retrieval finds nothing, no model is asked and the answer
says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..citations import Checked, check
from ..config import Settings
from ..index import Moment, Video
from ..tasks.caption import ENDPOINT, answer_text, token_usage
from .evidence import Evidence, build_job, gather, searched_words
from .target import Target, open_target

__all__ = ["Answer", "Target", "ask", "open_target"]


@dataclass
class Answer:
    question: str
    scope: str
    found: bool  # False: nothing relevant was found and no model was asked
    text: str
    checked: Checked | None = None
    evidence: Evidence | None = None
    model: str | None = None
    usage: dict[str, int] = field(default_factory=dict)

    @property
    def removed(self) -> int:
        return len(self.checked.unresolved) if self.checked else 0

    def as_json(self) -> dict[str, Any]:
        evidence = self.evidence
        citations = self.checked.citations if self.checked else []
        unresolved = self.checked.unresolved if self.checked else []
        return {
            "question": self.question,
            "scope": self.scope,
            "found": self.found,
            "answer": self.text,
            "citations": [
                {"text": c.text, "video": _video(c.spans[0].ref[0]), "t": c.t, "t_end": c.t_end,
                 "moments": [_moment(s.ref[1]) for s in c.spans if s.ref[1] is not None]}
                for c in citations
            ],
            "unresolved": [{"text": u.text, "reason": u.reason} for u in unresolved],
            "removed_citations": self.removed,
            "evidence": None if evidence is None else {
                "text": "\n".join(evidence.lines()),
                "moments": [{"video": _video(v), **_moment(m)} for v, m in evidence.moments],
                "frames": [{"video": _video(v), "t": t, "jpeg_bytes": len(jpeg)} for v, t, jpeg in evidence.frames],
                "notes": evidence.notes,
            },
            "model": self.model,
            "usage": self.usage,
        }


async def ask(target: Target, question: str, settings: Settings, transport=None) -> Answer:
    """`transport`: a Router with a `vlm` route; by default one is made from `settings`."""
    evidence = gather(target.store, question, target.video_ids, settings)
    if evidence is None:
        words = searched_words(question)
        why = (f"no moment matches {', '.join(repr(w) for w in words)}" if words
               else "the question has no word to look for")
        return Answer(question, target.description, False, f"Nothing relevant found in {target.description}: {why}.")
    own = transport is None
    if own:
        from ..transports import make_transport

        transport = make_transport(settings, [ENDPOINT])
    try:
        result = await transport.submit(ENDPOINT, build_job(question, evidence, settings))
    finally:
        if own:
            await transport.aclose()
    checked = check(answer_text(result.output), evidence.spans(), evidence.citation_names())
    prompt_tokens, completion_tokens = token_usage(result.output)
    return Answer(question, target.description, True, checked.text, checked, evidence,
                  model=settings.vlm_model,
                  usage={"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens})


def _video(video: Video) -> dict[str, Any]:
    return {"name": video.name, "path": video.media_path, "report": video.report_path}


def _moment(m: Moment) -> dict[str, Any]:
    return {"kind": m.kind, "start": m.start, "end": m.end, "at": m.at, "label": m.label, "text": m.text}
