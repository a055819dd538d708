"""The VLM over any OpenAI-compatible server: RunPod's vLLM worker route by default.

It takes the same job payload as the workers (`{"openai_route", "openai_input"}`) and
turns it into a call of the official `openai` SDK. Errors map to ours in one place, `_call`.

Keys: the RunPod key goes only to RunPod's API hosts and to the configured RUNPOD_BASE_URL
(hosts.py); any other server gets `vlm_api_key`, or no key at all, and never the
environment's OPENAI_* credentials. No key is sent over plain http off this machine.

Retries: each chat completion on RunPod's route is a billed job, and the route has no
idempotency key, so the SDK's own retries (which resend after timeouts and 5xx) are off;
RetryPolicy resends only what cannot have run: a 429 (refused) or a connection never made.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

from ..config import Settings
from ..errors import BackendError, ConfigError, JobFailed
from ..retry import GaveUp, RetryPolicy, TryAgain, never_sent, retry_after
from . import JobResult
from .hosts import check_key_destination, host_label, may_get_runpod_key

_SCHEMA_REFUSALS = ("response_format", "json_schema", "guided", "structured")
_NEVER_SENT = ("ConnectError", "ConnectTimeout", "PoolTimeout")


def vlm_target(settings: Settings) -> tuple[str, Any, str]:
    """(base URL, key or None, backend label) of the VLM; ConfigError when it has none."""
    if settings.vlm_base_url:
        base_url = settings.vlm_base_url
        runpod = may_get_runpod_key(base_url, settings.runpod_base_url)
        key = settings.vlm_api_key or (settings.runpod_api_key if runpod else None)
        where = "vlm_base_url"
    else:
        endpoint_id = settings.runpod_vlm_endpoint_id
        if not endpoint_id:
            raise ConfigError(
                "captions need a VLM: set RUNPOD_VLM_ENDPOINT_ID (RunPod's vLLM worker) "
                "or vlm_base_url (any OpenAI-compatible server)"
            )
        if settings.runpod_api_key is None or not settings.runpod_api_key.get_secret_value():
            raise ConfigError("RUNPOD_API_KEY is not set: export it or put it in ./.env")
        base_url = f"{settings.runpod_base_url.rstrip('/')}/{endpoint_id}/openai/v1"
        runpod, key, where = True, settings.runpod_api_key, "RUNPOD_BASE_URL"
    if key is not None and key.get_secret_value():
        check_key_destination(base_url, where)
    else:
        key = None
    return base_url, key, "runpod" if runpod else f"openai:{host_label(base_url)}"


class OpenAIChatTransport:
    name = "openai"
    max_payload_bytes = 20 * 1024 * 1024

    def __init__(self, settings: Settings, http_client=None, sleep=asyncio.sleep):
        import openai

        self.base_url, key, self._label = vlm_target(settings)
        self.settings = settings
        self.billed = self._label == "runpod"
        self._client = openai.AsyncOpenAI(
            base_url=self.base_url,
            # Explicit values: left unset, the SDK would read OPENAI_API_KEY, OPENAI_ORG_ID
            # and OPENAI_PROJECT_ID from the environment and send them to this server.
            # Without a key it needs a placeholder, and the header is then left out below.
            api_key=key.get_secret_value() if key else "EMPTY",
            organization="",
            project="",
            timeout=settings.runpod_request_timeout_s * 4,  # generation is slower than a status call
            max_retries=0,
            http_client=http_client,
        )
        # Headers this server has no business seeing, left out (the SDK wants that said per
        # request): OpenAI's organization and project, and without a key, Authorization.
        omitted = ["OpenAI-Organization", "OpenAI-Project"] + ([] if key else ["Authorization"])
        self._omit = {"extra_headers": {name: openai.Omit() for name in omitted}}
        self._policy = RetryPolicy(retries=settings.runpod_max_retries)
        self._sleep = sleep
        self._structured_ok = True  # until the server says it cannot

    def label(self, endpoint: str) -> str:
        return self._label

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
        return JobResult(output=output, execution_s=time.perf_counter() - started, billed=self.billed)

    async def _call(self, body: dict[str, Any]) -> dict[str, Any]:
        async def attempt() -> dict[str, Any]:
            return await self._attempt(body)

        try:
            return await self._policy.call_async(attempt, sleep=self._sleep)
        except GaveUp as exc:
            raise BackendError(f"{exc.problem} ({exc.tries} tries); lower vlm_concurrency") from None

    async def _attempt(self, body: dict[str, Any]) -> dict[str, Any]:
        import openai

        where = f"VLM at {self.base_url}"
        try:
            completion = await self._client.chat.completions.create(**body, **self._omit)
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
        except openai.RateLimitError as exc:  # refused, not run: safe to send again
            raise TryAgain(f"{where} kept answering 429 (rate limited)", retry_after(exc.response.headers)) from None
        except openai.APITimeoutError:
            raise BackendError(f"{where} did not answer in time; not resent, since the request may be running") from None
        except openai.APIConnectionError as exc:
            if _never_sent(exc):
                raise TryAgain(f"cannot reach {where}: {type(exc.__cause__ or exc).__name__}") from None
            raise BackendError(f"{where}: the connection broke ({type(exc.__cause__ or exc).__name__}); "
                               "not resent, since the request may have run") from None
        except openai.APIStatusError as exc:
            raise BackendError(f"{where} answered {exc.status_code}: {_message(exc)}; not resent, "
                               "since the request may have run") from None
        return completion.model_dump()

    async def aclose(self) -> dict[str, list[str]]:
        await self._client.close()
        return {}  # the OpenAI route names no job: there is no id to track or cancel


class _StructuredRefused(Exception):
    """The server does not do structured output: fall back to plain text, once."""


def _never_sent(exc: BaseException) -> bool:
    """The openai SDK wraps the HTTP library's error (httpx, or its fork httpx2, whose classes
    carry the same names): was it one raised before anything was sent?"""
    cause = exc.__cause__
    while cause is not None:
        if isinstance(cause, httpx.TransportError) and never_sent(cause):
            return True
        if type(cause).__name__ in _NEVER_SENT:
            return True
        cause = cause.__cause__
    return False


def _message(exc) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        detail = body.get("error", body)
        if isinstance(detail, dict):
            return str(detail.get("message", detail))[:300]
        return str(detail)[:300]
    return str(exc)[:300]
