"""The VLM over any OpenAI-compatible server: RunPod's vLLM worker route by default.

It takes the same job payload as the workers (`{"openai_route", "openai_input"}`) and
turns it into a call of the official `openai` SDK, which retries 429, 5xx and connection
errors with backoff and honours Retry-After. Errors map to ours in one place, `_call`.
"""

from __future__ import annotations

import time
from typing import Any

from ..config import Settings
from ..errors import BackendError, ConfigError, JobFailed
from . import JobResult

_SCHEMA_REFUSALS = ("response_format", "json_schema", "guided", "structured")


class OpenAIChatTransport:
    name = "openai"
    max_payload_bytes = 20 * 1024 * 1024

    def __init__(self, settings: Settings, http_client=None):
        import openai

        base_url = settings.vlm_base_url
        key = settings.vlm_api_key or settings.runpod_api_key
        if base_url is None:
            endpoint_id = settings.runpod_vlm_endpoint_id
            if not endpoint_id:
                raise ConfigError(
                    "captions need a VLM: set RUNPOD_VLM_ENDPOINT_ID (RunPod's vLLM worker) "
                    "or vlm_base_url (any OpenAI-compatible server)"
                )
            if key is None:
                raise ConfigError("RUNPOD_API_KEY is not set: export it or put it in ./.env")
            base_url = f"{settings.runpod_base_url.rstrip('/')}/{endpoint_id}/openai/v1"
        self.base_url = base_url
        self.settings = settings
        self._client = openai.AsyncOpenAI(
            base_url=base_url,
            api_key=key.get_secret_value() if key else "EMPTY",
            timeout=settings.runpod_request_timeout_s * 4,  # generation is slower than a status call
            max_retries=settings.runpod_max_retries,
            http_client=http_client,
        )
        self._structured_ok = True  # until the server says it cannot

    def concurrency(self, endpoint: str) -> int:
        return self.settings.vlm_concurrency

    async def submit(self, endpoint: str, payload: dict[str, Any]) -> JobResult:
        route = payload.get("openai_route")
        if route != "/v1/chat/completions":
            raise BackendError(f"the OpenAI transport does not serve route {route!r}")
        body = dict(payload["openai_input"])
        if not self._structured_ok:
            body.pop("response_format", None)
        started = time.perf_counter()
        try:
            output = await self._call(body)
        except _StructuredRefused:
            self._structured_ok = False
            body.pop("response_format", None)
            output = await self._call(body)
        return JobResult(output=output, execution_s=time.perf_counter() - started)

    async def _call(self, body: dict[str, Any]) -> dict[str, Any]:
        import openai

        where = f"VLM at {self.base_url}"
        try:
            completion = await self._client.chat.completions.create(**body)
        except openai.AuthenticationError:
            raise ConfigError(f"{where} rejected the API key (401)") from None
        except openai.NotFoundError as exc:
            raise ConfigError(f"{where}: model {body.get('model')!r} not found ({_message(exc)}); check vlm_model") from None
        except openai.BadRequestError as exc:
            message = _message(exc)
            if "response_format" in body and any(word in message.lower() for word in _SCHEMA_REFUSALS):
                raise _StructuredRefused() from None
            if "context" in message.lower() and "length" in message.lower():
                raise JobFailed(f"{where}: context length exceeded ({message}); lower caption_size or vlm_max_tokens") from None
            raise JobFailed(f"{where} refused the request: {message}") from None
        except openai.RateLimitError:
            raise BackendError(f"{where} kept answering 429 (rate limited); lower vlm_concurrency") from None
        except openai.APIConnectionError as exc:
            raise BackendError(f"cannot reach {where}: {type(exc.__cause__ or exc).__name__}") from None
        except openai.APIStatusError as exc:
            raise BackendError(f"{where} answered {exc.status_code}: {_message(exc)}") from None
        return completion.model_dump()

    async def aclose(self) -> None:
        await self._client.close()


class _StructuredRefused(Exception):
    """The server does not do structured output: fall back to plain text, once."""


def _message(exc) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        detail = body.get("error", body)
        if isinstance(detail, dict):
            return str(detail.get("message", detail))[:300]
        return str(detail)[:300]
    return str(exc)[:300]
