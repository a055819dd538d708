"""Qwen3-VL captioning worker, in-process through transformers.

In production captions come from RunPod's vLLM worker through its OpenAI-compatible
route. This worker takes the same job input, `{"openai_route": "/v1/chat/completions",
"openai_input": <chat-completions body>}` (or `/v1/models`, or a bare body), and returns
the same OpenAI objects, so the local transport, `vidagent serve` and tests on machines
without vLLM run the caption path unchanged.

Differences from vLLM, on purpose: images must be `data:` URLs (a worker never fetches),
`max_tokens` is required, and `response_format` is an instruction appended to the prompt,
not a constrained decoder, so the reply is only as well-formed as the model makes it.

Worker setting (environment, read per job; docs/decisions.md):
  VIDAGENT_VLM_MAX_PIXELS  pixel budget per image (default 768 x 768): a larger image is
                           scaled down to it before the vision encoder, so one image costs
                           at most budget / (32 x 32) vision tokens. vLLM's equivalent is
                           its `--mm-processor-kwargs` size (endpoints/qwen3-vl/worker.env).
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import os
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from . import WorkerInputError, env_int, parse_input
from .catalog import resolve_vlm

DEFAULT_MODEL = "Qwen/Qwen3-VL-8B-Instruct"
# The client's caption frames (caption_size 768, any aspect) fit unscaled; only larger
# images from other clients are scaled down.
DEFAULT_MAX_PIXELS = 768 * 768
MAX_TOKENS = 4096  # a caption is a sentence or a small JSON object; more is a runaway request
CHAT_ROUTE = "/v1/chat/completions"
MODELS_ROUTE = "/v1/models"


def default_model() -> str:
    """What the worker preloads and uses when a job names no model (an image sets this)."""
    return os.environ.get("VIDAGENT_VLM_MODEL", DEFAULT_MODEL)


class TextPart(BaseModel):
    model_config = ConfigDict(extra="ignore")

    type: Literal["text"]
    text: str


class DataURL(str):
    """A validated `data:image/...;base64,` URL that carries its decoded image."""

    image: Any


class ImageURL(BaseModel):
    model_config = ConfigDict(extra="ignore")

    url: str

    @field_validator("url")
    @classmethod
    def _decoded_data_url(cls, url: str) -> DataURL:
        # Decoded while validating, so a bad image fails with its field path in the message.
        if url.startswith(("http://", "https://")):
            raise ValueError(
                "workers do not fetch URLs: send the image as data:image/jpeg;base64,<data>"
            )
        header, sep, data = url.partition(",")
        if not (url.startswith("data:image/") and sep and header.endswith(";base64")):
            raise ValueError("expected a data:image/<format>;base64,<data> URL")
        checked = DataURL(url)
        checked.image = decode_image(data)
        return checked


class ImagePart(BaseModel):
    model_config = ConfigDict(extra="ignore")

    type: Literal["image_url"]
    image_url: ImageURL


Part = Annotated[TextPart | ImagePart, Field(discriminator="type")]


class Message(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "user", "assistant"]
    content: list[Part]

    @field_validator("content", mode="before")
    @classmethod
    def _string_is_one_text_part(cls, content: Any) -> Any:
        return [{"type": "text", "text": content}] if isinstance(content, str) else content

    @model_validator(mode="after")
    def _images_from_the_user(self) -> "Message":
        if self.role != "user" and any(isinstance(p, ImagePart) for p in self.content):
            raise ValueError(f"images are accepted in user messages only, not in {self.role!r}")
        return self


class ResponseFormat(BaseModel):
    model_config = ConfigDict(extra="ignore")

    type: Literal["text", "json_object", "json_schema"]
    json_schema: dict[str, Any] | None = None


class ChatInput(BaseModel):
    # Unknown keys are ignored, as an OpenAI server does, so any OpenAI client's body works.
    model_config = ConfigDict(extra="ignore")

    model: str = Field(default_factory=default_model, description="Default: the preloaded model.")
    messages: list[Message] = Field(min_length=1)
    # Required here although OpenAI makes it optional: an unbounded caption would hold the
    # GPU until the context is full.
    max_tokens: int = Field(gt=0, description=f"Required; more than {MAX_TOKENS} is capped.")
    # vLLM's extension, same name: generate at least this many tokens (end-of-turn is held
    # back until then). Benchmarks use it to pin the reply length of random weights.
    min_tokens: int = Field(0, ge=0)
    temperature: float | None = Field(None, ge=0, le=2, description="0: greedy. None: the model's default.")
    top_p: float | None = Field(None, gt=0, le=1)
    seed: int | None = None
    stop: str | list[str] | None = None
    n: int = Field(1, ge=1, le=1, description="One choice per request.")
    stream: Literal[False] = Field(False, description="A worker returns one object; no streaming.")
    response_format: ResponseFormat | None = None

    def token_budget(self) -> int:
        return min(self.max_tokens, MAX_TOKENS)

    def stop_strings(self) -> list[str]:
        stops = [self.stop] if isinstance(self.stop, str) else list(self.stop or [])
        return [s for s in stops if s]


class ChatRoute(BaseModel):
    model_config = ConfigDict(extra="ignore")

    openai_route: Literal["/v1/chat/completions"]
    openai_input: ChatInput


def decode_image(data: str):
    from PIL import Image

    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("the data URL is not valid base64") from None
    try:
        with Image.open(io.BytesIO(raw)) as image:
            return image.convert("RGB")  # forces the decode here, inside the try
    except (OSError, ValueError, Image.DecompressionBombError, ImportError):
        # ImportError: where ultralytics is loaded too (the local backend runs every worker
        # in one process) it wraps Image.open to retry unknown images with pi-heif, and
        # that import fails where pi-heif is not installed.
        raise ValueError("the data URL holds no decodable image") from None


@dataclass
class Loaded:
    processor: Any
    model: Any
    device: str
    generating: threading.Lock = field(default_factory=threading.Lock)

    @property
    def context_length(self) -> int:
        return self.model.config.text_config.max_position_embeddings


_models: dict[str, Loaded] = {}
_lock = threading.Lock()


def device() -> tuple[str, Any]:
    import torch

    if torch.cuda.is_available():
        return "cuda", torch.bfloat16
    return "cpu", torch.float32


def load(name: str | None = None) -> Loaded:
    """Load a model once per process (the endpoint calls this at start, not per job)."""
    name = name or default_model()
    with _lock:
        if name not in _models:
            from transformers import AutoProcessor, Qwen3VLForConditionalGeneration
            from transformers.utils import logging as transformers_logging

            # Its progress bars would tear through the CLI's own progress display.
            transformers_logging.disable_progress_bar()
            where, dtype = device()
            try:
                path = resolve_vlm(name)
                processor = AutoProcessor.from_pretrained(path)
                model = Qwen3VLForConditionalGeneration.from_pretrained(path, dtype=dtype)
            except (LookupError, ValueError, OSError) as exc:
                # "not found" first: OpenAI-style servers answer 404 for it, and clients
                # tell the user to check the model name rather than the request.
                reason = " ".join(str(exc).split())[:300]
                raise WorkerInputError(f"VLM model {name!r} not found or cannot be loaded: {reason}") from None
            _models[name] = Loaded(processor, model.to(where).eval(), where)
        return _models[name]


def handle(payload: dict[str, Any]) -> dict[str, Any]:
    route = payload.get("openai_route")
    if route is None:
        return chat_completion(parse_input(ChatInput, payload))
    if route == CHAT_ROUTE:
        return chat_completion(parse_input(ChatRoute, payload).openai_input)
    if route == MODELS_ROUTE:
        return list_models()
    raise WorkerInputError(
        f"input field 'openai_route': unsupported route {route!r}; "
        f"supported: {CHAT_ROUTE}, {MODELS_ROUTE}"
    )


def list_models() -> dict[str, Any]:
    names = [default_model(), *(n for n in _models if n != default_model())]
    data = []
    for name in names:
        entry = {"id": name, "object": "model", "created": int(time.time()), "owned_by": "vidagent"}
        if name in _models:
            entry["max_model_len"] = _models[name].context_length
        data.append(entry)
    return {"object": "list", "data": data}


def chat_completion(job: ChatInput) -> dict[str, Any]:
    loaded = load(job.model)
    inputs = _encode(loaded, job)
    prompt_tokens = int(inputs["input_ids"].shape[1])
    budget = min(job.token_budget(), _room_left(prompt_tokens, loaded.context_length))
    new_tokens = _generate(loaded, job, inputs, budget)
    text, finish_reason = _finish(loaded, job, new_tokens, budget)
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": job.model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": finish_reason,
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": len(new_tokens),
            "total_tokens": prompt_tokens + len(new_tokens),
        },
    }


def _room_left(prompt_tokens: int, context_length: int) -> int:
    if prompt_tokens > context_length:
        raise WorkerInputError(
            f"context length exceeded: {prompt_tokens} tokens > {context_length}"
        )
    if prompt_tokens == context_length:
        raise WorkerInputError(
            f"context length exceeded: {prompt_tokens} prompt tokens leave no room to generate "
            f"in {context_length}"
        )
    return context_length - prompt_tokens


def max_pixels() -> int:
    return env_int("VIDAGENT_VLM_MAX_PIXELS", DEFAULT_MAX_PIXELS, minimum=32 * 32)


def _image_size(loaded: Loaded) -> dict[str, int]:
    """The image processor's resize bounds in pixels: the budget lowers the model's own
    upper bound (Qwen3-VL's allows 16 M pixels), never raises it."""
    own = loaded.processor.image_processor.size
    budget = min(max_pixels(), own.longest_edge or max_pixels())
    return {"longest_edge": budget, "shortest_edge": min(own.shortest_edge or budget, budget)}


def _encode(loaded: Loaded, job: ChatInput):
    # sanitize_control_tokens: a caller's text that spells "<|image_pad|>" or "<|im_end|>"
    # is encoded as plain text, so it cannot fake an image slot or end a turn.
    return loaded.processor.apply_chat_template(
        _conversation(job),
        add_generation_prompt=True,
        tokenize=True,
        return_dict=True,
        return_tensors="pt",
        sanitize_control_tokens=True,
        processor_kwargs={"images_kwargs": {"size": _image_size(loaded)}},
    ).to(loaded.device)


def _conversation(job: ChatInput) -> list[dict[str, Any]]:
    """OpenAI messages as transformers chat messages, with decoded PIL images."""
    conversation = []
    for message in job.messages:
        parts = [
            {"type": "text", "text": p.text}
            if isinstance(p, TextPart)
            else {"type": "image", "image": p.image_url.url.image}
            for p in message.content
        ]
        if message.role != "user":  # chat templates expect plain text outside user turns
            parts = "".join(p["text"] for p in parts if p["type"] == "text")
        conversation.append({"role": message.role, "content": parts})
    instruction = _format_instruction(job.response_format)
    if instruction:
        _append_to_last_user_turn(conversation, instruction)
    return conversation


def _format_instruction(response_format: ResponseFormat | None) -> str | None:
    """What a constrained decoder would enforce, asked for in words instead."""
    if response_format is None or response_format.type == "text":
        return None
    if response_format.type == "json_object":
        return "Answer with one JSON object and nothing else."
    spec = response_format.json_schema or {}
    schema = spec.get("schema", spec)
    return (
        "Answer with JSON only, matching this JSON schema: "
        + json.dumps(schema, separators=(",", ":"), sort_keys=True)
    )


def _append_to_last_user_turn(conversation: list[dict[str, Any]], text: str) -> None:
    for turn in reversed(conversation):
        if turn["role"] == "user":
            turn["content"].append({"type": "text", "text": "\n\n" + text})
            return
    conversation.append({"role": "user", "content": [{"type": "text", "text": text}]})


def _generate(loaded: Loaded, job: ChatInput, inputs, budget: int) -> list[int]:
    import torch

    options: dict[str, Any] = {"max_new_tokens": budget}
    if job.min_tokens:
        options["min_new_tokens"] = min(job.min_tokens, budget)
    if job.temperature == 0:
        options["do_sample"] = False
    elif job.temperature is not None:
        options.update(do_sample=True, temperature=job.temperature)
    if job.top_p is not None and job.temperature != 0:
        options["top_p"] = job.top_p
    if job.stop_strings():
        options.update(stop_strings=job.stop_strings(), tokenizer=loaded.processor.tokenizer)
    with loaded.generating, torch.inference_mode():
        if job.seed is not None:
            torch.manual_seed(job.seed)  # process-wide RNG; this model's jobs take turns
        output = loaded.model.generate(**inputs, **options)
    return output[0, inputs["input_ids"].shape[1]:].tolist()


def _finish(loaded: Loaded, job: ChatInput, new_tokens: list[int], budget: int) -> tuple[str, str]:
    """The reply text without special tokens or the matched stop string, and why it ended."""
    text = loaded.processor.tokenizer.decode(new_tokens, skip_special_tokens=True)
    for stop in job.stop_strings():
        at = text.find(stop)
        if at >= 0:
            return text[:at], "stop"
    eos = loaded.model.generation_config.eos_token_id
    eos_ids = set(eos if isinstance(eos, list) else [eos])
    if new_tokens and new_tokens[-1] in eos_ids:
        return text, "stop"
    return text, "length" if len(new_tokens) >= budget else "stop"
