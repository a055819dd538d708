"""RunPod's REST API v2 (https://api.runpod.io/v2) as deploy uses it: templates and
serverless endpoints, read, created and patched, with the shared retry policy.

- Reads and PATCHes are idempotent: network errors, 429 and 5xx are retried
  (vidagent/retry.py, honouring Retry-After).
- A create (POST) is resent only when it cannot have arrived: the connection was never
  made, or RunPod answered 429. After a 5xx or a lost answer it is first looked up by
  name (`recover`); only when it is not there is it sent again, so a retry never makes a
  duplicate.
- Errors are RFC 9457 problem bodies (`title`, `status`, `detail`, `errors`), shown as one line.
- In a dry run writes are shown (method, URL, JSON body, secrets masked), never sent;
  reads are tried once, so a plan made without network does not wait on retries.

The key goes into the Authorization header and nowhere else.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any, Callable

import httpx

from ..errors import ApiRefused, ConfigError, DeployError
from ..retry import GaveUp, RetryPolicy, TryAgain, never_sent, retry_after

REST_URL = "https://api.runpod.io/v2"
REQUEST_TIMEOUT_S = 30.0
DRY_RUN_TIMEOUT_S = 10.0
_SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL", re.IGNORECASE)


def rest_url(environ_value: str | None) -> str:
    """RUNPOD_REST_URL, or RunPod's; a v1 address is refused (v1 is retired)."""
    url = (environ_value or REST_URL).strip().rstrip("/")
    if url.endswith("/v1") or "rest.runpod.io" in url:
        raise ConfigError(f"RUNPOD_REST_URL={url}: that is RunPod's REST API v1, which is retired; "
                          f"unset it (deploy uses {REST_URL}) or give a v2 address")
    return url


class RestClient:
    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        dry_run: bool = False,
        show: Callable[[str], None] = print,
        http: httpx.Client | None = None,
        policy: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.base_url = base_url.rstrip("/")
        self.dry_run = dry_run
        self._show = show
        self._http = http or httpx.Client(timeout=DRY_RUN_TIMEOUT_S if dry_run else REQUEST_TIMEOUT_S)
        self._headers = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"}
        self._policy = policy or (RetryPolicy(retries=0) if dry_run else RetryPolicy())
        self._sleep = sleep

    def get(self, path: str) -> Any:
        if self.dry_run:
            self._show(f"GET {self.base_url}{path}")
        return self._send("GET", path)

    def write(self, method: str, path: str, body: dict[str, Any], *, dry_answer: dict[str, Any],
              recover: Callable[[], dict[str, Any] | None] | None = None) -> dict[str, Any]:
        if self.dry_run:
            self.show_write(method, path, body)
            return dry_answer
        return self._send(method, path, body=body, recover=recover)

    def show_write(self, method: str, path: str, body: dict[str, Any]) -> None:
        self._show(f"{method} {self.base_url}{path}")
        self._show("  " + json.dumps(redacted(body)))

    def close(self) -> None:
        self._http.close()

    def _send(self, method: str, path: str, *, body: Any = None,
              recover: Callable[[], dict[str, Any] | None] | None = None) -> Any:
        what = f"{method} {path}"
        creates = method == "POST"

        def attempt() -> Any:
            try:
                response = self._http.request(method, self.base_url + path, json=body, headers=self._headers)
            except httpx.TransportError as exc:
                problem = f"cannot reach {self.base_url} ({what}): {type(exc).__name__}"
                if creates and not never_sent(exc):
                    return _look_up_then_retry(recover, problem)
                raise TryAgain(problem) from None
            code = response.status_code
            if code == 429:  # refused unread: safe to send again, after the wait it asks for
                raise TryAgain(f"RunPod kept answering 429 to {what}", retry_after(response.headers))
            if code >= 500:
                problem = f"RunPod kept answering {code} to {what}: {problem_line(response)}"
                if creates:  # it may have been done before the error
                    return _look_up_then_retry(recover, problem)
                raise TryAgain(problem, retry_after(response.headers))
            return _answer(response, what)

        try:
            return self._policy.call(attempt, sleep=self._sleep)
        except GaveUp as exc:
            raise DeployError(str(exc) if exc.tries > 1 else exc.problem) from None


def _look_up_then_retry(recover: Callable[[], dict[str, Any] | None] | None, problem: str) -> Any:
    if recover is None:
        raise DeployError(f"{problem}; not sent again, since it may have been done: check the RunPod console")
    found = recover()
    if found is not None:
        return found
    raise TryAgain(problem)


def _answer(response: httpx.Response, what: str) -> Any:
    code = response.status_code
    if code == 401:
        raise ConfigError("RunPod rejected the API key (401): check RUNPOD_API_KEY")
    if code == 403:
        raise ConfigError(f"RunPod refused {what} (403): the API key needs read and write access "
                          "(RunPod console > Settings > API Keys)")
    if code >= 400:
        raise ApiRefused(code, what, problem_line(response))
    if code == 204 or not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        raise DeployError(f"RunPod sent a non-JSON answer to {what}") from None


def problem_line(response: httpx.Response) -> str:
    """An RFC 9457 problem body (`title`, `detail`, `errors`) in one line; other bodies as they are."""
    try:
        body = response.json()
    except ValueError:
        body = None
    text = ""
    if isinstance(body, dict):
        detail = body.get("detail") or body.get("message") or body.get("error") or body.get("title")
        errors = body.get("errors")
        text = str(detail or "")
        if isinstance(errors, list) and errors:
            text = f"{text}: {'; '.join(str(e) for e in errors)}" if text else "; ".join(str(e) for e in errors)
    if not text:
        text = response.text or response.reason_phrase
    return " ".join(text.split())[:400]


def redacted(body: dict[str, Any]) -> dict[str, Any]:
    """What a dry run shows: env values that look like secrets masked."""
    if not isinstance(body.get("env"), dict):
        return body
    env = {k: ("***" if _SECRET_NAME.search(k) else v) for k, v in body["env"].items()}
    return {**body, "env": env}


def listed(answer: Any, key: str, what: str) -> list[dict[str, Any]]:
    """v2 wraps lists in an object keyed by the resource: {"templates": [...]}."""
    items = answer.get(key) if isinstance(answer, dict) else None
    if not isinstance(items, list):
        raise DeployError(f"RunPod's answer to {what} has no {key!r} list: is RUNPOD_REST_URL a REST API v2?")
    return [item for item in items if isinstance(item, dict)]
