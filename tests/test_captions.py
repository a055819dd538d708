"""Caption requests and answers, and the OpenAI transport's error mapping.

Error paths script an OpenAI-compatible server's answers (httpx.MockTransport): vLLM
cannot run here. The happy path runs over real HTTP in tests/test_serve.py's VLM route
and the local worker in tests/test_vlm_worker.py.
"""

import asyncio
import base64
import json

import httpx
import pytest

from vidagent.config import Settings
from vidagent.errors import BackendError, ConfigError, JobFailed
from vidagent.media.sampler import SampledFrame
from vidagent.report.model import DetectedObject, FrameDetections, Segment
from vidagent.tasks import caption
from vidagent.transports.openai_chat import OpenAIChatTransport

FRAME = SampledFrame("caption", 0, 12.0, b"\xff\xd8fakejpeg\xff\xd9", 64, 48)


def completion(content: str, prompt_tokens=50, completion_tokens=9) -> dict:
    return {
        "id": "c1", "object": "chat.completion", "created": 1, "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                  "total_tokens": prompt_tokens + completion_tokens},
    }


def test_caption_request_carries_image_prompt_grounding_and_limits():
    settings = Settings(vlm_model="Qwen/Qwen3-VL-8B-Instruct", vlm_max_tokens=99)
    detections = [FrameDetections(t=12.05, objects=[
        DetectedObject(label="person", class_id=0, confidence=0.9, box=[0, 0, 1, 1]),
        DetectedObject(label="person", class_id=0, confidence=0.8, box=[0, 0, 1, 1]),
        DetectedObject(label="dog", class_id=16, confidence=0.7, box=[0, 0, 1, 1])])]
    segments = [Segment(start=9.0, end=11.0, text="Sit, Rex."), Segment(start=40.0, end=41.0, text="far away")]
    context = caption.grounding(12.0, detections, segments)
    assert "2 person, 1 dog" in context and "Sit, Rex." in context and "far away" not in context

    job = caption.build_job(FRAME, context, settings, "Describe the frame.")
    assert job["openai_route"] == "/v1/chat/completions"
    body = job["openai_input"]
    assert body["model"] == "Qwen/Qwen3-VL-8B-Instruct" and body["max_tokens"] == 99
    # The prompt, shared by every caption, first (a prefix the server caches); per frame after it.
    system, user = body["messages"]
    assert system == {"role": "system", "content": "Describe the frame."}
    image, text = user["content"]
    assert user["role"] == "user"
    assert image["image_url"]["url"] == "data:image/jpeg;base64," + base64.b64encode(FRAME.jpeg).decode()
    assert "2 person, 1 dog" in text["text"] and "Describe the frame." not in text["text"]
    assert body["response_format"]["json_schema"]["schema"]["required"] == ["caption"]
    plain = caption.build_job(FRAME, "", Settings(caption_structured=False), "P")["openai_input"]
    assert "response_format" not in plain and plain["messages"][0]["content"] == "P"
    assert [part["type"] for part in plain["messages"][1]["content"]] == ["image_url"]


def test_captions_of_one_run_share_their_leading_tokens():
    """What prefix caching needs, checked with a real chat template: two frames' prompts
    agree up to the first image, and the agreed part holds the whole caption prompt."""
    from vidagent.workers.catalog import resolve_vlm
    from transformers import AutoProcessor

    processor = AutoProcessor.from_pretrained(resolve_vlm("offline:qwen3-vl-tiny"))
    prompt = "Describe what is happening in this video frame."
    texts = []
    for t, context in ((1.0, "An object detector sees: 1 dog."), (2.0, "")):
        body = caption.build_job(SampledFrame("caption", 0, t, FRAME.jpeg, 64, 48), context, Settings(), prompt)
        messages = [
            {"role": m["role"], "content": m["content"] if isinstance(m["content"], str) else
             [{"type": "image"} if p["type"] == "image_url" else p for p in m["content"]]}
            for m in body["openai_input"]["messages"]
        ]
        texts.append(processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False))
    shared = 0
    while texts[0][shared] == texts[1][shared]:
        shared += 1
    assert prompt in texts[0][:shared]
    # ...and precedes everything that changes per frame, the image first of all.
    assert texts[0].index(prompt) < texts[0].index("<|vision_start|>")


def test_structured_and_plain_answers():
    structured = caption.parse_result(completion(json.dumps(
        {"caption": "A man walks a dog.", "people_count": 1, "actions": ["walking"], "visible_text": ["EXIT"]})), 3.0, "scene")
    assert (structured.text, structured.people_count, structured.structured) == ("A man walks a dog.", 1, True)
    assert structured.actions == ["walking"] and structured.visible_text == ["EXIT"] and structured.reason == "scene"
    plain = caption.parse_result(completion("  A quiet street at night. "), 4.0, "coverage")
    assert (plain.text, plain.structured, plain.people_count) == ("A quiet street at night.", False, None)
    wrong_shape = caption.parse_result(completion('{"people": 3}'), 5.0, "first")
    assert wrong_shape.structured is False and wrong_shape.text == '{"people": 3}'
    with pytest.raises(ValueError):
        caption.answer_text({"choices": []})


class FakeVLM:
    def __init__(self, *answers):
        self.answers = list(answers)
        self.bodies = []

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.bodies.append(json.loads(request.content))
        code, body = self.answers.pop(0)
        return httpx.Response(code, json=body)


def submit(fake: FakeVLM, **settings):
    transport = OpenAIChatTransport(
        Settings(vlm_base_url="http://vlm.test/v1", runpod_max_retries=0, **settings),
        http_client=httpx.AsyncClient(transport=httpx.MockTransport(fake.handler)),
    )
    job = caption.build_job(FRAME, "", transport.settings, "P")
    return transport, asyncio.run(transport.submit("vlm", job))


def test_structured_output_refused_falls_back_to_plain_once():
    refusal = (400, {"error": {"message": "response_format json_schema is not supported"}})
    fake = FakeVLM(refusal, (200, completion("plain words")))
    transport, result = submit(fake)
    assert caption.answer_text(result.output) == "plain words"
    assert "response_format" in fake.bodies[0] and "response_format" not in fake.bodies[1]
    assert transport._structured_ok is False


@pytest.mark.parametrize(
    "answer, error, text",
    [
        ((404, {"error": {"message": "The model `x` does not exist."}}), ConfigError, "not found"),
        ((401, {"error": {"message": "bad key"}}), ConfigError, "rejected the API key"),
        ((400, {"error": {"message": "This model's maximum context length is 8192 tokens"}}), JobFailed, "context length exceeded"),
        ((429, {"error": {"message": "slow down"}}), BackendError, "429"),
        ((503, {"error": {"message": "overloaded"}}), BackendError, "503"),
    ],
)
def test_errors_become_clear_messages(answer, error, text):
    with pytest.raises(error, match=text):
        submit(FakeVLM(answer))


def test_runpod_route_and_key_by_default():
    transport = OpenAIChatTransport(Settings(runpod_api_key="rp_k", runpod_vlm_endpoint_id="vlm123",
                                             runpod_base_url="http://127.0.0.1:9/v2"))
    assert transport.base_url == "http://127.0.0.1:9/v2/vlm123/openai/v1"
    with pytest.raises(ConfigError, match="RUNPOD_VLM_ENDPOINT_ID"):
        OpenAIChatTransport(Settings())


def test_captions_as_subtitles():
    from vidagent.media.probe import MediaInfo
    from vidagent.report.model import Report
    from vidagent.report.writers import caption_subtitles

    media = MediaInfo(path="v.mp4", file_name="v.mp4", size_bytes=1, duration_s=30.0, width=64, height=48,
                      coded_width=64, coded_height=48, has_audio=False)
    captions = [caption.parse_result(completion("A red door."), 1.0, "first"),
                caption.parse_result(completion("A blue car --> passes."), 3.0, "scene"),
                caption.parse_result(completion("Night falls."), 20.0, "coverage")]
    report = Report(vidagent_version="t", created_at="now", media=media, settings={}, captions=captions)
    srt = caption_subtitles(report, "srt")
    # each caption shows until the next one, at most 5 s
    assert "00:00:01,000 --> 00:00:03,000\nA red door." in srt
    assert "00:00:03,000 --> 00:00:08,000\nA blue car -> passes." in srt
    assert "00:00:20,000 --> 00:00:25,000\nNight falls." in srt
    assert caption_subtitles(report, "vtt").startswith("WEBVTT")
