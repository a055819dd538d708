"""`vidagent serve`'s OpenAI-compatible route (RunPod's vLLM worker), through real clients.

The official `openai` SDK and `vidagent analyze` talk to real `vidagent serve` processes
over real HTTP. The workers are the real endpoint handlers with offline models (the tiny
random-weight Qwen3-VL answers garbage, but well-formed and greedy, so deterministic),
and, for failures a real model cannot be made to produce on demand, a stub handler that
this module writes (RunPod's SDK runs it like any handler).
"""

from __future__ import annotations

import base64
import io
import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import openai
import pytest
import yaml

from conftest import OFFLINE_CONFIG, ROOT
from test_serve import Serve  # starts `vidagent serve` and reads its ready line
from text_match import TINY_EN_MAX_WER, assert_words

KEY = "sk-openai-route-SECRET-7d1e"
WAIT_S = 3  # the stub server's openai_wait_s
TINY = "offline:qwen3-vl-tiny"
MODEL_ENV = {"VIDAGENT_YOLO_MODEL": "offline:yolo11n-random", "VIDAGENT_WHISPER_MODEL": "offline:tiny.en",
             "VIDAGENT_VLM_MODEL": TINY}

# A stand-in for the vLLM worker whose answer is chosen by the request's "model".
STUB_HANDLER = '''
import asyncio, json, runpod

async def handler(job):
    route, body = job["input"]["openai_route"], job["input"]["openai_input"]
    if route == "/v1/models":
        return {"object": "list", "data": [{"id": "stub", "object": "model", "created": 0, "owned_by": "test"}]}
    model = body.get("model")
    if model == "crash":
        raise RuntimeError("boom\\nin two lines")
    if model == "missing":
        return {"error": "The model `missing` does not exist."}
    if model == "long":
        return {"error": "context length exceeded: 9000 tokens > 4096"}
    if model == "slow":
        await asyncio.sleep(30)
    return {"id": "chatcmpl-stub", "object": "chat.completion", "created": 0, "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": json.dumps(body)[:50]},
                         "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}

# Room for a cancelled job still winding down beside the next one.
runpod.serverless.start({"handler": handler, "concurrency_modifier": lambda current: 4})
'''


def jpeg_url(width: int = 64, height: int = 48) -> str:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (30, 120, 200)).save(buffer, "JPEG")
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode()


def client(server: Serve, endpoint: str, key: str = KEY, **options) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.base_url}/{endpoint}/openai/v1", api_key=key, **options)


def stats(server: Serve, endpoint: str) -> dict:
    response = httpx.get(f"{server.root}/_vidagent/stats", headers={"Authorization": KEY}, timeout=10)
    return response.json()["endpoints"][endpoint]


def ask(llm: openai.OpenAI, model: str = TINY, **extra):
    return llm.chat.completions.create(
        model=model, max_tokens=5, temperature=0,
        messages=[{"role": "user", "content": [{"type": "image_url", "image_url": {"url": jpeg_url()}},
                                               {"type": "text", "text": "What is in the picture?"}]}],
        **extra,
    )


def stopped_cleanly(server: Serve) -> None:
    assert server.stop() == 0, server.stderr()[-3000:]
    assert KEY not in server.stderr()


# -- the three real models, one server for the module -----------------------------------


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("serve-models")
    config = folder / "serve.yaml"
    config.write_text(yaml.safe_dump({"endpoints": {
        "yolo-ep": {"handler": str(ROOT / "endpoints/yolo/handler.py"), "env": MODEL_ENV},
        "whisper-ep": {"handler": str(ROOT / "endpoints/whisper/handler.py"), "env": MODEL_ENV},
        "vlm-ep": {"handler": str(ROOT / "endpoints/qwen3-vl/local_handler.py"), "env": MODEL_ENV},
    }}))
    server = Serve(folder, "--config", config, "--api-key", KEY, timeout=300)
    yield server
    stopped_cleanly(server)


@pytest.mark.slow
def test_the_openai_sdk_lists_models_and_completes_a_chat(models):
    llm = client(models, "vlm-ep")
    assert [m.id for m in llm.models.list().data] == [TINY]
    before = stats(models, "vlm-ep")["openai"]["accepted"]

    completion = ask(llm)
    assert completion.object == "chat.completion" and completion.model == TINY
    [choice] = completion.choices
    assert isinstance(choice.message.content, str) and choice.message.role == "assistant"
    assert choice.finish_reason in ("stop", "length")
    usage = completion.usage
    assert usage.prompt_tokens > 10 and 0 < usage.completion_tokens <= 5  # the image counts as tokens
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert ask(llm).choices[0].message.content == choice.message.content  # greedy: same answer

    after = stats(models, "vlm-ep")
    assert after["openai"]["accepted"] == before + 2
    assert after["accepted"] == {"run": 0, "runsync": 0}


@pytest.mark.slow
def test_the_openai_sdk_raises_what_openai_would(models):
    llm = client(models, "vlm-ep", max_retries=0)
    with pytest.raises(openai.BadRequestError, match="workers do not fetch URLs") as refused:
        llm.chat.completions.create(
            model=TINY, max_tokens=5,
            messages=[{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "http://x/a.jpg"}}]}],
        )
    assert refused.value.body["type"] == "invalid_request_error"  # the SDK hands over body["error"]
    with pytest.raises(openai.NotFoundError, match="offline:nope"):
        ask(llm, model="offline:nope")
    with pytest.raises(openai.BadRequestError, match="streaming is not supported"):
        ask(llm, stream=True)
    with pytest.raises(openai.AuthenticationError):
        client(models, "vlm-ep", key="wrong-key").models.list()
    with pytest.raises(openai.NotFoundError, match="endpoint 'no-such-ep' not found"):
        client(models, "no-such-ep").models.list()


# -- failures on demand: a stub worker and a short wait ----------------------------------


@pytest.fixture(scope="module")
def stub(tmp_path_factory):
    folder = tmp_path_factory.mktemp("serve-stub")
    (folder / "stub.py").write_text(STUB_HANDLER)
    config = folder / "serve.yaml"
    config.write_text(yaml.safe_dump({"openai_wait_s": WAIT_S, "endpoints": {"stub": {"handler": "stub.py"}}}))
    server = Serve(folder, "--config", config, "--api-key", KEY)
    yield server
    stopped_cleanly(server)


@pytest.mark.parametrize(
    "model, error, status, kind, code, message",
    [
        ("crash", openai.InternalServerError, 500, "server_error", "worker_error",
         "the worker's handler failed: RuntimeError: boom in two lines"),  # one line, no traceback
        ("missing", openai.NotFoundError, 404, "not_found_error", "model_not_found",
         "The model `missing` does not exist."),
        ("long", openai.BadRequestError, 400, "invalid_request_error", "context_length_exceeded",
         "context length exceeded: 9000 tokens > 4096"),
    ],
)
def test_worker_failures_map_to_openai_statuses(stub, model, error, status, kind, code, message):
    with pytest.raises(error) as raised:
        client(stub, "stub", max_retries=0).chat.completions.create(model=model, messages=[])
    assert raised.value.status_code == status
    # The SDK keeps the object under "error" as .body.
    assert raised.value.body == {"message": message, "type": kind, "param": None, "code": code}


def until(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)
    return result


def idle(server: Serve, endpoint: str) -> dict:
    """The endpoint's stats once nothing is queued or running (earlier tests' jobs are over)."""
    return until(lambda: (s := stats(server, endpoint))["in_queue"] == s["in_progress"] == 0 and s, 10, "idle")


def test_a_request_that_outwaits_openai_wait_s_is_504_and_its_job_cancelled(stub):
    llm = client(stub, "stub", max_retries=0)
    idle(stub, "stub")
    before = stats(stub, "stub")
    started = time.monotonic()
    with pytest.raises(openai.InternalServerError, match=f"no result within {WAIT_S} s") as raised:
        llm.chat.completions.create(model="slow", messages=[])
    assert raised.value.status_code == 504 and WAIT_S - 0.1 < time.monotonic() - started < WAIT_S + 3
    after = stats(stub, "stub")
    assert after["final"]["CANCELLED"] == before["final"]["CANCELLED"] + 1
    # The endpoint still answers: the cancelled job holds nothing up.
    assert llm.chat.completions.create(model="fast", messages=[]).choices[0].finish_reason == "stop"


def test_a_client_that_leaves_gets_its_job_cancelled(stub):
    before = idle(stub, "stub")["final"]["CANCELLED"]
    started = time.monotonic()
    with pytest.raises(openai.APITimeoutError):
        client(stub, "stub", max_retries=0, timeout=0.3).chat.completions.create(model="slow", messages=[])
    until(lambda: stats(stub, "stub")["final"]["CANCELLED"] == before + 1, 5, "the job to be cancelled")
    assert time.monotonic() - started < WAIT_S  # not the wait running out: the server saw the client go
    assert "cancelled: its client left" in stub.stderr()


def test_a_job_cancelled_through_the_runpod_api_answers_410(stub):
    idle(stub, "stub")
    http = httpx.Client(base_url=stub.base_url, headers={"Authorization": KEY}, timeout=10)
    with ThreadPoolExecutor(1) as pool, http:
        pending = pool.submit(client(stub, "stub", max_retries=0).chat.completions.create, model="slow", messages=[])

        def running_job():
            workers = http.get(f"{stub.root}/_vidagent/workers").json()["workers"]
            return next((job for w in workers for job in w["jobs_in_progress"]), None)

        job_id = until(running_job, WAIT_S / 2, "the job to start")
        assert http.post(f"/stub/cancel/{job_id}").json()["status"] == "CANCELLED"
        with pytest.raises(openai.APIStatusError, match="was cancelled") as raised:
            pending.result(timeout=10)
    assert raised.value.status_code == 410


def test_timed_out_and_crashed_jobs_read_as_openai_errors():
    from vidagent.serve.hub import ApiError
    from vidagent.serve.openai_route import openai_answer, worker_failure
    from vidagent.serve.jobs import JobStore, Policy

    store = JobStore(["ep"], clock=lambda: 0.0)
    job = store.submit("ep", {}, Policy(execution_timeout_s=0), sync=True, source="openai")
    store.take("ep", "w1")
    store.tick()  # executionTimeout 0 has passed
    with pytest.raises(ApiError) as raised:
        openai_answer(job)
    assert (raised.value.status, raised.value.code) == (504, "timeout") and store.counters["ep"].accepted_openai == 1

    sdk_report = json.dumps({"error_type": "<class 'torch.OutOfMemoryError'>", "error_message": "CUDA out\nof memory",
                             "error_traceback": "Traceback (most recent call last):\n  ..."})
    assert worker_failure(sdk_report).message == "torch.OutOfMemoryError: CUDA out of memory"
    assert worker_failure(sdk_report).crashed and not worker_failure("bad input\nsee docs").crashed
    assert worker_failure("bad input\nsee docs").message == "bad input see docs"


def test_limits_and_raw_http(stub):
    headers = {"Authorization": f"Bearer {KEY}"}
    url = f"{stub.base_url}/stub/openai/v1/chat/completions"
    too_big = b'{"model": "x", "messages": [], "pad": "' + b"x" * 20_000_000 + b'"}'
    response = httpx.post(url, content=too_big, headers=headers, timeout=30)
    assert response.status_code == 413 and "20 MB" in response.json()["error"]["message"]
    assert httpx.post(url, content=b"{oops", headers=headers, timeout=10).status_code == 400
    answer = httpx.post(url, json={"model": "m", "messages": []}, headers=headers, timeout=10)
    assert answer.status_code == 200 and answer.json()["object"] == "chat.completion"
    assert httpx.get(url, headers=headers, timeout=10).status_code == 405
    unauthorized = httpx.get(f"{stub.base_url}/stub/openai/v1/models", timeout=10)
    assert unauthorized.status_code == 401 and unauthorized.json()["error"]["code"] == "invalid_api_key"


# -- faults: the SDK's retries ----------------------------------------------------------


@pytest.mark.slow
def test_the_openai_sdk_retries_injected_429_and_5xx(tmp_path):
    server = Serve(tmp_path, "--endpoint", "vlm-ep=endpoints/qwen3-vl/local_handler.py", "--api-key", KEY,
                   "--fault-429", "0.3", "--fault-5xx", "0.3", "--fault-seed", "4", env=MODEL_ENV, timeout=300)
    try:
        # Seed 4, requests one at a time: 500, then 429, 500, 429 in a row, then no more faults.
        llm = client(server, "vlm-ep", max_retries=3)
        for _ in range(3):
            assert [m.id for m in llm.models.list().data] == [TINY]
        assert isinstance(ask(llm).choices[0].message.content, str)
        injected = httpx.get(f"{server.root}/_vidagent/stats", headers={"Authorization": KEY}, timeout=10).json()
        codes = {int(code) for code in injected["faults"]["injected"]}
        assert 429 in codes and codes & {500, 502, 503}, injected
        # A faulted request never reached the route: one job per answered call.
        assert injected["endpoints"]["vlm-ep"]["openai"]["accepted"] == 4
    finally:
        stopped_cleanly(server)


def test_a_lost_answer_makes_the_sdk_bill_twice_and_vidagent_once(tmp_path):
    """Why vidagent turns the openai SDK's retries off on RunPod's route: after a lost
    answer the SDK sends the same completion again, and each request is a billed job."""
    import asyncio

    from vidagent.config import Settings
    from vidagent.errors import BackendError
    from vidagent.transports.openai_chat import OpenAIChatTransport

    (tmp_path / "stub.py").write_text(STUB_HANDLER)
    server = Serve(tmp_path, "--endpoint", f"stub={tmp_path / 'stub.py'}", "--api-key", KEY, "--fault-lost", "1")
    try:
        with pytest.raises(openai.InternalServerError):
            client(server, "stub", max_retries=1).chat.completions.create(model="m", messages=[])
        assert stats(server, "stub")["openai"]["accepted"] == 2  # one call, two jobs

        transport = OpenAIChatTransport(Settings(runpod_api_key=KEY, runpod_base_url=server.base_url,
                                                 runpod_vlm_endpoint_id="stub"))
        payload = {"openai_route": "/v1/chat/completions", "openai_input": {"model": "m", "messages": []}}
        with pytest.raises(BackendError, match="answered 502: .*not resent"):
            asyncio.run(transport.submit("vlm", payload))
        assert stats(server, "stub")["openai"]["accepted"] == 3  # one call, one job
    finally:
        stopped_cleanly(server)


# -- end to end: `vidagent analyze` with captions, remote and local -----------------------


def analyze(run_cli, out: Path, backend: str, env: dict) -> tuple[object, dict]:
    result = run_cli(
        "analyze", ROOT / "tests/data/sample.mp4", "--out", out, "--config", OFFLINE_CONFIG, "--backend", backend,
        "--caption", "--summary", "--vlm-model", TINY, "--detect-fps", "2", "--yolo-batch", "4", "--progress", "lines",
        env={"VIDAGENT_CAPTION_MAX_GAP_S": "3", **env},
    )
    assert result.code == 0, result
    return result, json.loads((out / "sample" / "report.json").read_text())


@pytest.mark.slow
def test_analyze_with_captions_through_serve_matches_local(models, run_cli, tmp_path):
    remote_env = {"RUNPOD_API_KEY": KEY, "RUNPOD_BASE_URL": models.base_url, "RUNPOD_YOLO_ENDPOINT_ID": "yolo-ep",
                  "RUNPOD_WHISPER_ENDPOINT_ID": "whisper-ep", "RUNPOD_VLM_ENDPOINT_ID": "vlm-ep"}
    before = stats(models, "vlm-ep")["openai"]["accepted"]
    remote_result, remote = analyze(run_cli, tmp_path / "remote", "runpod", remote_env)

    captions = remote["captions"]
    assert len(captions) >= 3 and captions[0]["reason"] == "first"  # 10 s of video, one caption per 3 s at least
    for caption in captions:
        assert isinstance(caption["t"], (int, float)) and isinstance(caption["text"], str)
        assert caption["reason"] in ("first", "scene", "coverage") or caption["reason"].startswith("trigger:")
    assert isinstance(remote["summary"], str)
    usage = remote["usage"]["vlm"]
    assert usage["jobs"] == len(captions) + 1 and usage["prompt_tokens"] > 0
    assert stats(models, "vlm-ep")["openai"]["accepted"] == before + len(captions) + 1
    assert remote["detections"]
    assert_words(" ".join(s["text"] for s in remote["transcript"]["segments"]),
                 json.loads((ROOT / "tests/data/sample.json").read_text())["text"], max_wer=TINY_EN_MAX_WER)

    local_result, local = analyze(run_cli, tmp_path / "local", "local", {})
    for key in ("captions", "summary", "detections", "transcript"):
        assert remote[key] == local[key], key

    written = "".join(p.read_text(errors="replace") for p in tmp_path.rglob("*") if p.is_file())
    for text in (remote_result.stdout, remote_result.stderr, written, models.stderr()):
        assert KEY not in text
