"""Caption jobs: OpenAI chat-completion requests in the vLLM worker's envelope.

The payload is `{"openai_route": "/v1/chat/completions", "openai_input": {...}}`, which
RunPod's vLLM worker takes as a job, `vidagent serve` and the local `vlm` worker take as
well, and the OpenAI transport unwraps into a call on any OpenAI-compatible server.
"""

from __future__ import annotations

import base64
import json
from collections import Counter
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from ..config import Settings
from ..errors import ConfigError
from ..media.sampler import SampledFrame
from ..report.model import Caption, FrameDetections, Segment
from ..timefmt import clock

ENDPOINT = "vlm"
CHAT_ROUTE = "/v1/chat/completions"
# configs/prompts in a checkout; the wheel carries the same files as vidagent/prompts.
_PROMPT_DIRS = (
    Path(__file__).resolve().parents[1] / "prompts",
    Path(__file__).resolve().parents[2] / "configs" / "prompts",
)


class CaptionAnswer(BaseModel):
    """The structured answer asked for; validated, with plain text as the fallback."""

    caption: str = Field(description="One or two sentences on what the frame shows.")
    people_count: int | None = Field(None, description="People visible, if any can be counted.")
    actions: list[str] = Field(default_factory=list, description="What is being done, short phrases.")
    visible_text: list[str] = Field(default_factory=list, description="Legible text in the picture.")


def load_prompt(path: Path | None, name: str) -> str:
    if path is None:
        path = next((d / name for d in _PROMPT_DIRS if (d / name).exists()), _PROMPT_DIRS[-1] / name)
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read prompt file ({exc.strerror})") from None


def grounding(t: float, detections: list[FrameDetections], segments: list[Segment], window_s: float = 5.0) -> str:
    """What the other models saw and heard around `t`, for the prompt."""
    lines = []
    nearest = min(detections, key=lambda d: abs(d.t - t), default=None)
    if nearest is not None and abs(nearest.t - t) <= 0.5:
        counts = Counter(obj.label for obj in nearest.objects)
        if counts:
            listed = ", ".join(f"{n} {label}" for label, n in counts.most_common())
            lines.append(f"An object detector sees in this frame: {listed}.")
    said = [s.text for s in segments if s.end >= t - window_s and s.start <= t + window_s]
    if said:
        lines.append(f'Speech around {clock(t)}: "{" ".join(said)}"')
    return "\n".join(lines)


def build_job(frame: SampledFrame, context: str, settings: Settings, prompt: str) -> dict[str, Any]:
    """The prompt, the same for every caption of a run, is the system turn and comes first;
    what differs per frame (the image, its grounding) follows in the user turn. A server
    with prefix caching (vLLM's default) then computes the prompt's tokens once per run,
    not once per caption."""
    image_url = "data:image/jpeg;base64," + base64.b64encode(frame.jpeg).decode("ascii")
    user: list[dict[str, Any]] = [{"type": "image_url", "image_url": {"url": image_url}}]
    if context:
        user.append({"type": "text", "text": f"Context (may be incomplete):\n{context}"})
    body: dict[str, Any] = {
        "model": settings.vlm_model,
        "messages": [
            {"role": "system", "content": prompt},
            {"role": "user", "content": user},
        ],
        "max_tokens": settings.vlm_max_tokens,
        "temperature": 0,
    }
    if settings.caption_structured:
        body["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": "caption", "schema": CaptionAnswer.model_json_schema()},
        }
    return {"openai_route": CHAT_ROUTE, "openai_input": body}


def parse_result(output: dict[str, Any], t: float, reason: str) -> Caption:
    content = answer_text(output)
    try:
        answer = CaptionAnswer.model_validate(json.loads(content))
    except (ValueError, ValidationError):
        return Caption(t=t, reason=reason, text=content.strip(), structured=False)
    return Caption(
        t=t,
        reason=reason,
        text=answer.caption.strip(),
        people_count=answer.people_count,
        actions=answer.actions,
        visible_text=answer.visible_text,
        structured=True,
    )


def answer_text(output: dict[str, Any]) -> str:
    choices = output.get("choices") or []
    if not choices:
        raise ValueError("the VLM answered with no choices")
    return choices[0].get("message", {}).get("content") or ""


def token_usage(output: dict[str, Any]) -> tuple[int, int]:
    usage = output.get("usage") or {}
    return int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)
