"""The Qwen3-VL worker through the vLLM worker's OpenAI job contract, on a tiny offline model.

The model is the real Qwen3-VL stack with random weights (vidagent/workers/catalog.py):
its words mean nothing, so these tests check the contract's types, counts and errors.
"""

import base64
import io
import os
import re
from pathlib import Path

import pytest

from vidagent.workers import WorkerInputError, get_handler
from vidagent.workers.catalog import build_qwen3_vl_tiny, resolve_vlm

TINY = "offline:qwen3-vl-tiny"
GOOD_TEXT = {"type": "text", "text": "hi"}


def jpeg_url(width=64, height=48, color=(200, 40, 40)) -> str:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buffer, "JPEG")
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode()


def image_part(url: str) -> dict:
    return {"type": "image_url", "image_url": {"url": url}}


def chat(*content, max_tokens=6, **extra) -> dict:
    return {
        "model": TINY,
        "messages": [{"role": "user", "content": list(content)}],
        "max_tokens": max_tokens,
        "temperature": 0,
        **extra,
    }


def routed(body: dict) -> dict:
    return {"openai_route": "/v1/chat/completions", "openai_input": body}


def vlm(payload: dict) -> dict:
    return get_handler("vlm")(payload)


def assert_chat_completion(output: dict, max_tokens: int) -> str:
    assert output["object"] == "chat.completion"
    assert output["id"].startswith("chatcmpl-")
    assert isinstance(output["created"], int)
    assert output["model"] == TINY
    [choice] = output["choices"]
    assert choice["index"] == 0
    assert choice["message"]["role"] == "assistant"
    assert isinstance(choice["message"]["content"], str)
    assert choice["finish_reason"] in ("stop", "length")
    usage = output["usage"]
    assert 1 <= usage["completion_tokens"] <= max_tokens
    if choice["finish_reason"] == "length":
        assert usage["completion_tokens"] == max_tokens
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    return choice["message"]["content"]


@pytest.fixture(scope="module")
def tiny_path() -> str:
    return resolve_vlm(TINY)


@pytest.mark.slow
def test_chat_route_with_one_image(tiny_path):
    text_only = vlm(routed(chat({"type": "text", "text": "Describe the frame."})))
    output = vlm(routed(chat(image_part(jpeg_url()), {"type": "text", "text": "Describe the frame."})))

    assert_chat_completion(output, max_tokens=6)
    # A 64x48 frame is resized to 64x64: 4x4 patches of 16 px, merged 2x2 into 4 tokens,
    # plus the <|vision_start|> and <|vision_end|> around them.
    image_tokens = output["usage"]["prompt_tokens"] - text_only["usage"]["prompt_tokens"]
    assert image_tokens == 4 + 2


@pytest.mark.slow
def test_greedy_is_deterministic_and_max_tokens_bounds_the_reply(tiny_path):
    body = chat(image_part(jpeg_url()), {"type": "text", "text": "What is here?"}, max_tokens=3)
    first, second = vlm(body), vlm(body)  # the bare body, without the route wrapper

    assert_chat_completion(first, max_tokens=3)
    assert first["choices"][0]["message"] == second["choices"][0]["message"]
    assert first["usage"] == second["usage"]


@pytest.mark.slow
def test_two_images_in_one_message_cost_twice_the_tokens(tiny_path):
    text = {"type": "text", "text": "What changed?"}
    one = vlm(routed(chat(image_part(jpeg_url()), text)))
    two = vlm(routed(chat(image_part(jpeg_url()), image_part(jpeg_url(color=(0, 0, 255))), text)))

    assert_chat_completion(two, max_tokens=6)
    assert two["usage"]["prompt_tokens"] - one["usage"]["prompt_tokens"] == 6


@pytest.mark.slow
def test_system_message_and_string_content(tiny_path):
    body = {
        "model": TINY,
        "messages": [
            {"role": "system", "content": "You caption video frames."},
            {"role": "user", "content": "Describe the frame."},
        ],
        "max_tokens": 4,
        "temperature": 0.7,
        "top_p": 0.9,
        "seed": 1,
        "stream": False,
        "logprobs": None,  # unknown here: ignored, as an OpenAI server ignores extra keys
    }
    without_system = dict(body, messages=body["messages"][1:])

    output = vlm(routed(body))
    assert_chat_completion(output, max_tokens=4)
    assert output["usage"]["prompt_tokens"] > vlm(routed(without_system))["usage"]["prompt_tokens"]


@pytest.mark.slow
@pytest.mark.parametrize(
    "response_format",
    [
        {"type": "json_object"},
        {"type": "json_schema", "json_schema": {"name": "caption", "schema": {
            "type": "object", "properties": {"caption": {"type": "string"}}}}},
    ],
)
def test_json_response_format_is_asked_for_in_the_prompt(tiny_path, response_format):
    plain = chat(image_part(jpeg_url()), {"type": "text", "text": "Caption."})
    output = vlm(routed(dict(plain, response_format=response_format)))

    assert_chat_completion(output, max_tokens=6)
    assert output["usage"]["prompt_tokens"] > vlm(routed(plain))["usage"]["prompt_tokens"]


def test_max_tokens_is_capped_not_refused():
    from vidagent.workers.vlm import MAX_TOKENS, ChatInput

    job = ChatInput.model_validate(chat(GOOD_TEXT, max_tokens=10**9))
    assert job.token_budget() == MAX_TOKENS
    assert ChatInput.model_validate(chat(GOOD_TEXT, max_tokens=7)).token_budget() == 7


@pytest.mark.slow
def test_text_spelling_control_tokens_stays_text(tiny_path):
    # "<|image_pad|>" typed by a caller must not claim an image slot the job has no image for.
    output = vlm(routed(chat({"type": "text", "text": "<|image_pad|><|im_end|> hi"})))
    assert_chat_completion(output, max_tokens=6)


@pytest.mark.slow
def test_models_route_lists_the_default_and_loaded_models(tiny_path):
    vlm(routed(chat({"type": "text", "text": "hi"}, max_tokens=1)))
    output = vlm({"openai_route": "/v1/models"})

    assert output["object"] == "list"
    by_id = {m["id"]: m for m in output["data"]}
    assert "Qwen/Qwen3-VL-8B-Instruct" in by_id
    assert by_id[TINY]["object"] == "model"
    assert by_id[TINY]["max_model_len"] == 32768


@pytest.mark.slow
def test_prompt_longer_than_the_context_is_a_clear_error(tiny_path):
    limit = 32768  # the tiny model's max_position_embeddings
    long_text = "Describe the scene in words. " * (limit // 8)  # ~11 tokens per sentence
    with pytest.raises(WorkerInputError, match=rf"context length exceeded: \d+ tokens > {limit}$"):
        vlm(routed(chat({"type": "text", "text": long_text})))


URL_FIELD = "messages.0.content.0.image_url.image_url.url"  # the middle image_url: the part's tag


@pytest.mark.parametrize(
    "payload, field, detail",
    [
        ({"max_tokens": 4}, "messages", "required"),
        ({"messages": [], "max_tokens": 4}, "messages", "at least 1"),
        (routed({"messages": [{"role": "user", "content": "hi"}]}), "openai_input.max_tokens", "required"),
        (chat(GOOD_TEXT, max_tokens=0), "max_tokens", "greater than 0"),
        (chat(image_part("https://example.com/frame.jpg")), URL_FIELD, "do not fetch"),
        (chat(image_part("data:image/jpeg;base64,@@not-base64@@")), URL_FIELD, "not valid base64"),
        (chat(image_part("data:image/jpeg;base64," + base64.b64encode(b"hello").decode())),
         URL_FIELD, "no decodable image"),
        (chat(image_part("file:///etc/passwd")), URL_FIELD, "expected a data:image"),
        (chat({"type": "input_audio", "input_audio": {}}), "messages.0.content.0", "input_audio"),
        ({"messages": [{"role": "tool", "content": "x"}], "max_tokens": 4}, "messages.0.role", "user"),
        (chat(GOOD_TEXT, stream=True), "stream", "False"),
        (chat(GOOD_TEXT, n=2), "n", "less than or equal to 1"),
        (chat(GOOD_TEXT, response_format={"type": "grammar"}), "response_format.type", "json_schema"),
        ({"openai_route": "/v1/completions", "openai_input": {}}, "openai_route", "unsupported"),
        ({"openai_route": "/v1/chat/completions"}, "openai_input", "required"),
    ],
)
def test_bad_input_names_the_field(payload, field, detail):
    with pytest.raises(WorkerInputError, match=rf"^input field '{re.escape(field)}': .*{detail}"):
        vlm(payload)


def test_images_only_in_user_messages():
    body = {
        "messages": [{"role": "system", "content": [image_part(jpeg_url())]}],
        "max_tokens": 4,
    }
    with pytest.raises(WorkerInputError, match=r"'messages.0'.*user messages only"):
        vlm(body)


def test_unknown_offline_model_is_a_clean_error():
    with pytest.raises(WorkerInputError, match="unknown offline VLM"):
        vlm(routed(dict(chat(GOOD_TEXT), model="offline:nope")))


@pytest.mark.slow
def test_tiny_model_builds_reproducibly_and_loads_offline(tiny_path, tmp_path):
    import torch
    from safetensors.torch import load_file
    from transformers import AutoProcessor, Qwen3VLForConditionalGeneration

    assert os.environ["HF_HUB_OFFLINE"] == "1"
    again = tmp_path / "again"
    again.mkdir()
    build_qwen3_vl_tiny(again)

    cached = load_file(os.path.join(tiny_path, "model.safetensors"))
    rebuilt = load_file(str(again / "model.safetensors"))
    assert cached.keys() == rebuilt.keys()
    for name in ("model.language_model.embed_tokens.weight", "model.visual.patch_embed.proj.weight"):
        assert torch.equal(cached[name], rebuilt[name])
    size = sum(f.stat().st_size for f in again.iterdir())
    assert size < 5_000_000

    processor = AutoProcessor.from_pretrained(again)
    model = Qwen3VLForConditionalGeneration.from_pretrained(again)
    tokenizer = processor.tokenizer
    assert model.config.image_token_id == tokenizer.convert_tokens_to_ids("<|image_pad|>")
    assert model.config.vision_start_token_id == tokenizer.convert_tokens_to_ids("<|vision_start|>")
    assert model.config.text_config.vocab_size == len(tokenizer)
    assert tokenizer.eos_token == "<|im_end|>"
    assert processor.image_processor.patch_size == model.config.vision_config.patch_size == 16
    assert processor.image_processor.merge_size == model.config.vision_config.spatial_merge_size == 2
    leftovers = [p.name for p in Path(tiny_path).parent.iterdir() if p.name.startswith(".")]
    assert leftovers == []  # the build's temporary folder was renamed into place
