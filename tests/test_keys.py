"""Keys go only where they belong: a real local HTTP server records what each request carries.

The VLM transport talks to it through the official openai SDK, as it would to RunPod's
vLLM route or any OpenAI-compatible server; the environment holds OPENAI_* credentials
that must never be sent either.
"""

from __future__ import annotations

import asyncio
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from vidagent.config import Settings
from vidagent.errors import ConfigError
from vidagent.transports.hosts import is_runpod_host, may_get_runpod_key
from vidagent.transports.openai_chat import OpenAIChatTransport

RUNPOD_KEY = "rp_ACCOUNT_KEY_never_elsewhere"
VLM_KEY = "sk-vlm-server-key"
ENV_SECRETS = {"OPENAI_API_KEY": "sk-env-openai", "OPENAI_ADMIN_KEY": "sk-env-admin",
               "OPENAI_ORG_ID": "org-env", "OPENAI_PROJECT_ID": "proj-env"}
COMPLETION = {"id": "c1", "object": "chat.completion", "created": 0, "model": "m",
              "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}]}


class Recorder:
    """An HTTP server on 127.0.0.1 that answers every POST with a chat completion and keeps
    each request's path and headers."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, str]]] = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                recorder.requests.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
                body = json.dumps(COMPLETION).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_port
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def recorder(monkeypatch):
    for name, value in ENV_SECRETS.items():
        monkeypatch.setenv(name, value)
    server = Recorder()
    yield server
    server.close()


def ask(recorder: Recorder, **settings) -> tuple[OpenAIChatTransport, str, dict[str, str]]:
    """One caption request through the transport: the path and headers the server saw."""
    transport = OpenAIChatTransport(Settings(runpod_api_key=RUNPOD_KEY, runpod_max_retries=0, **settings))
    payload = {"openai_route": "/v1/chat/completions",
               "openai_input": {"model": "m", "messages": [{"role": "user", "content": "hi"}]}}

    async def run():
        try:
            return await transport.submit("vlm", payload)
        finally:
            await transport.aclose()

    before = len(recorder.requests)
    asyncio.run(run())
    [(path, headers)] = recorder.requests[before:]
    return transport, path, headers


def no_secrets(headers: dict[str, str], *allowed: str) -> None:
    sent = " ".join(headers.values())
    for secret in (RUNPOD_KEY, VLM_KEY, *ENV_SECRETS.values()):
        if secret not in allowed:
            assert secret not in sent, secret


def test_another_server_gets_no_key_at_all(recorder):
    transport, _, headers = ask(recorder, vlm_base_url=f"http://127.0.0.1:{recorder.port}/v1")
    assert "authorization" not in headers
    assert "openai-organization" not in headers and "openai-project" not in headers
    no_secrets(headers)
    assert transport.label("vlm") == f"openai:127.0.0.1:{recorder.port}" and transport.billed is False


def test_another_server_gets_vlm_api_key_and_only_that(recorder):
    transport, _, headers = ask(recorder, vlm_base_url=f"http://127.0.0.1:{recorder.port}/v1", vlm_api_key=VLM_KEY)
    assert headers["authorization"] == f"Bearer {VLM_KEY}"
    no_secrets(headers, VLM_KEY)


def test_the_runpod_key_goes_to_the_configured_runpod_base_url(recorder):
    base = f"http://127.0.0.1:{recorder.port}/v2"
    transport, path, headers = ask(recorder, runpod_base_url=base, runpod_vlm_endpoint_id="vlm-ep")
    assert path == "/v2/vlm-ep/openai/v1/chat/completions"
    assert headers["authorization"] == f"Bearer {RUNPOD_KEY}"
    no_secrets(headers, RUNPOD_KEY)
    assert transport.label("vlm") == "runpod" and transport.billed is True
    # vlm_base_url on that same origin is RunPod's route too
    transport, _, headers = ask(recorder, runpod_base_url=base, vlm_base_url=f"{base}/vlm-ep/openai/v1")
    assert headers["authorization"] == f"Bearer {RUNPOD_KEY}" and transport.label("vlm") == "runpod"


def test_the_same_server_under_another_name_is_another_origin(recorder):
    # localhost and 127.0.0.1 reach the same socket, but the key was configured for one
    transport, _, headers = ask(recorder, runpod_base_url=f"http://127.0.0.1:{recorder.port}/v2",
                             vlm_base_url=f"http://localhost:{recorder.port}/v1")
    assert "authorization" not in headers
    no_secrets(headers)


def test_no_key_over_plain_http_to_another_machine():
    with pytest.raises(ConfigError, match="vlm_base_url: http://10.1.2.3:8000/v1 is plain http") as err:
        OpenAIChatTransport(Settings(vlm_base_url="http://10.1.2.3:8000/v1", vlm_api_key=VLM_KEY))
    assert VLM_KEY not in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(ConfigError, match="RUNPOD_BASE_URL: http://192.168.0.9/v2/.* is plain http"):
        OpenAIChatTransport(Settings(runpod_api_key=RUNPOD_KEY, runpod_vlm_endpoint_id="e",
                                     runpod_base_url="http://192.168.0.9/v2"))
    keyless = OpenAIChatTransport(Settings(vlm_base_url="http://10.1.2.3:8000/v1", runpod_api_key=RUNPOD_KEY))
    assert keyless.label("vlm") == "openai:10.1.2.3:8000"  # nothing secret to send: allowed


def test_runpods_hosts():
    assert is_runpod_host("https://api.runpod.ai/v2/abc/openai/v1")
    assert is_runpod_host("https://abc123.api.runpod.ai/v1")  # a load-balancing endpoint
    for url in ("http://api.runpod.ai/v2", "https://api.runpod.ai.example.com/v1", "https://evilapi.runpod.ai/v1",
                "https://abc-8000.proxy.runpod.net/v1", "https://api.runpod.io/v2"):
        assert not is_runpod_host(url), url
    default = Settings().runpod_base_url
    assert may_get_runpod_key("https://API.RunPod.ai:443/v2/x/openai/v1", default)
    assert not may_get_runpod_key("https://my-vllm.example.com/v1", default)


# -- resending: only what cannot have run -----------------------------------------------


def scripted(*answers):
    """An OpenAI transport whose server answers from a script; the requests it got."""
    import httpx

    seen = []

    def handler(request):
        seen.append(request)
        answer = answers[len(seen) - 1]
        if isinstance(answer, Exception):
            raise answer
        return httpx.Response(answer[0], json=answer[1], headers=answer[2] if len(answer) > 2 else None)

    async def no_wait(seconds):
        pass

    transport = OpenAIChatTransport(Settings(vlm_base_url="https://vlm.test/v1", runpod_max_retries=3),
                                    http_client=httpx.AsyncClient(transport=httpx.MockTransport(handler)),
                                    sleep=no_wait)
    payload = {"openai_route": "/v1/chat/completions", "openai_input": {"model": "m", "messages": []}}
    return transport, payload, seen


def test_a_429_or_a_connection_never_made_is_resent():
    import httpx

    transport, payload, seen = scripted((429, {"error": {"message": "slow down"}}, {"Retry-After": "0"}),
                                        httpx.ConnectError("refused"), (200, COMPLETION))
    assert asyncio.run(transport.submit("vlm", payload)).output["choices"][0]["message"]["content"] == "ok"
    assert len(seen) == 3


@pytest.mark.parametrize("failure", ["timeout", "dropped", 500, 502, 503])
def test_a_request_that_may_have_run_is_not_resent(failure):
    import httpx

    answer = {"timeout": httpx.ReadTimeout("slow"), "dropped": httpx.RemoteProtocolError("gone")}.get(failure)
    transport, payload, seen = scripted(answer or (failure, {"error": {"message": "oops"}}), (200, COMPLETION))
    from vidagent.errors import BackendError

    with pytest.raises(BackendError, match="not resent"):
        asyncio.run(transport.submit("vlm", payload))
    assert len(seen) == 1


# -- the object store's secret: signs requests to the store's endpoint, is written nowhere ----


def test_the_object_store_secret_is_in_no_written_byte(tmp_path, monkeypatch):
    """Publish, republish, sign an s3:// URL and fail with the wrong bucket, with botocore
    logging everything it does at DEBUG into a file; every byte written (that log, the URLs
    and the errors as a pipeline would keep them) is read back for the secret. The access
    key id is in every presigned URL by design (SigV4 names the key it signed with); the
    secret never is."""
    import logging

    from conftest import SAMPLE
    from s3_server import ACCESS_KEY, SECRET_KEY, start_s3_server
    from vidagent.errors import StoreError
    from vidagent.storage import client as store_client
    from vidagent.storage import publish, resolve_url

    monkeypatch.setenv("VIDAGENT_OBJECT_STORE_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("VIDAGENT_OBJECT_STORE_SECRET_ACCESS_KEY", SECRET_KEY)
    store_client._clients.clear()
    server = start_s3_server()
    log = logging.FileHandler(tmp_path / "debug.log")
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(log)
    root.setLevel(logging.DEBUG)
    try:
        server.client().create_bucket(Bucket="leak-check")
        from vidagent.config import load_settings

        settings = load_settings(None, {"object_store_bucket": "leak-check", "object_store_endpoint_url": server.url,
                                        "object_store_region": "us-east-1"})
        written = [publish(SAMPLE, settings), publish(SAMPLE, settings)]
        written.append(resolve_url(f"s3://leak-check/{written[0].key}", settings))
        settings.object_store_bucket = "missing-bucket"
        with pytest.raises(StoreError) as err:
            publish(SAMPLE, settings)
        written.append(str(err.value))
        (tmp_path / "kept.json").write_text(json.dumps([repr(w) for w in written] + [repr(settings)]))
    finally:
        root.removeHandler(log)
        root.setLevel(old_level)
        log.close()
        server.close()
        store_client._clients.clear()
    everything = b"".join(p.read_bytes() for p in tmp_path.rglob("*") if p.is_file())
    assert b"PutObject" in everything or b"put_object" in everything.lower()  # the log did record the calls
    assert ACCESS_KEY.encode() in everything  # in the presigned URLs, as SigV4 has it
    assert SECRET_KEY.encode() not in everything
