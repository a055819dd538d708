"""Where an API key may go.

The RunPod key opens the whole account, so it goes only to RunPod's serverless API hosts
(`api.runpod.ai`, and `ENDPOINT_ID.api.runpod.ai` for load-balancing endpoints, as RunPod's
docs name them: serverless/endpoints/send-requests, serverless/load-balancing/overview) and to
the configured RUNPOD_BASE_URL (a `vidagent serve`, say). Not to `*.proxy.runpod.net`: those
reach whatever a pod runs, not RunPod's API. No key travels over plain http except to a
loopback address.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from ..errors import ConfigError

RUNPOD_API_HOST = "api.runpod.ai"


def origin(url: str) -> tuple[str, str, int | None]:
    """(scheme, host, port) of a URL, lower-cased, the default port made explicit."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        port = None
    default = {"https": 443, "http": 80}.get(scheme)
    return scheme, (parts.hostname or "").lower(), port or default


def is_runpod_host(url: str) -> bool:
    scheme, host, _ = origin(url)
    return scheme == "https" and (host == RUNPOD_API_HOST or host.endswith("." + RUNPOD_API_HOST))


def is_loopback(url: str) -> bool:
    host = origin(url)[1]
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_key_destination(url: str, where: str) -> None:
    """Refuse, in one line naming the setting, to send a key to `url` in clear text."""
    scheme = origin(url)[0]
    if scheme not in ("http", "https"):
        raise ConfigError(f"{where}: {url!r} is not an http(s) URL")
    if scheme == "http" and not is_loopback(url):
        raise ConfigError(
            f"{where}: {url} is plain http to a host that is not this machine; the API key would "
            "travel unencrypted: use https"
        )


def may_get_runpod_key(url: str, runpod_base_url: str) -> bool:
    """True for RunPod's API hosts and for the configured RUNPOD_BASE_URL's origin."""
    return is_runpod_host(url) or origin(url) == origin(runpod_base_url)


def host_label(url: str) -> str:
    """`host` or `host:port` (a non-default port), for `openai:<host>` backend names."""
    scheme, host, port = origin(url)
    default = {"https": 443, "http": 80}.get(scheme)
    return host if port in (None, default) else f"{host}:{port}"
