"""The boto3 S3 client for the configured store, and botocore's failures as one-line StoreErrors.

Credentials: VIDAGENT_OBJECT_STORE_ACCESS_KEY_ID and VIDAGENT_OBJECT_STORE_SECRET_ACCESS_KEY
(settings object_store_access_key_id/_secret_access_key) when both are set, so a machine
whose AWS_* keys serve something else can still name an R2 or RunPod key; otherwise boto3's
own chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, ~/.aws, an instance role).
boto3 signs with them and sends requests only to the store's endpoint; no message here
contains them (botocore's own texts are not passed on, only the error code).
"""

from __future__ import annotations

import re
import threading
from typing import Any

from ..config import Settings
from ..errors import StoreError

ACCESS_KEY_VAR = "VIDAGENT_OBJECT_STORE_ACCESS_KEY_ID"
SECRET_KEY_VAR = "VIDAGENT_OBJECT_STORE_SECRET_ACCESS_KEY"
# RunPod's S3-compatible API on network volumes (docs.runpod.io storage/s3-api): one host per
# datacenter; it has no presigned URLs, and workers read the volume at /runpod-volume.
RUNPOD_S3_HOST = re.compile(r"^https?://s3api-[a-z0-9-]+\.runpod\.io(:\d+)?/?$", re.IGNORECASE)

_clients: dict[tuple, Any] = {}
_lock = threading.Lock()


def endpoint_label(settings: Settings) -> str:
    return settings.object_store_endpoint_url or "AWS S3"


def is_runpod_volume(settings: Settings) -> bool:
    return bool(settings.object_store_endpoint_url and RUNPOD_S3_HOST.match(settings.object_store_endpoint_url))


def s3_client(settings: Settings) -> Any:
    """One client per store and key pair for the process (boto3 clients are thread-safe and
    slow to build)."""
    key_id = settings.object_store_access_key_id
    secret = settings.object_store_secret_access_key
    if (key_id is None) != (secret is None):
        missing = SECRET_KEY_VAR if secret is None else ACCESS_KEY_VAR
        raise StoreError(f"object store: {missing} is not set: set both {ACCESS_KEY_VAR} and "
                         f"{SECRET_KEY_VAR}, or neither to use boto3's AWS_ACCESS_KEY_ID/AWS_PROFILE")
    identity = (settings.object_store_endpoint_url, settings.object_store_region,
                key_id.get_secret_value() if key_id else None, secret.get_secret_value() if secret else None)
    with _lock:
        client = _clients.get(identity)
        if client is None:
            client = _clients[identity] = _make_client(settings, identity)
    return client


def _make_client(settings: Settings, identity: tuple) -> Any:
    try:
        import boto3
        from botocore.config import Config
    except ImportError:
        raise StoreError("object store: boto3 is not installed: pip install 'vidagent[store]'") from None
    endpoint, region, key_id, secret = identity
    config = Config(
        signature_version="s3v4",  # presigned URLs carry X-Amz-Expires; R2 and RunPod take only v4
        # A custom endpoint's bucket goes in the path: RunPod's volume ids and most
        # S3-compatible hosts have no per-bucket DNS names.
        s3={"addressing_style": "path" if endpoint else "auto"},
        connect_timeout=10,
        read_timeout=120,
        retries={"mode": "standard", "max_attempts": 3},
    )
    session = boto3.session.Session()
    return session.client("s3", endpoint_url=endpoint, region_name=region or None,
                          aws_access_key_id=key_id, aws_secret_access_key=secret, config=config)


def store_error(exc: BaseException, settings: Settings, bucket: str, doing: str) -> StoreError:
    """A botocore/boto3 failure as one line naming the bucket and what to do."""
    from botocore import exceptions as bce

    where = f"object store bucket {bucket!r} at {endpoint_label(settings)}"
    cause = exc.__context__ if type(exc).__name__ == "S3UploadFailedError" and exc.__context__ else exc
    if isinstance(cause, (bce.NoCredentialsError, bce.PartialCredentialsError)):
        return StoreError(f"{where}: no credentials to {doing}: set {ACCESS_KEY_VAR} and {SECRET_KEY_VAR} "
                          "(or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or AWS_PROFILE)")
    if isinstance(cause, (bce.EndpointConnectionError, bce.ConnectTimeoutError, bce.ReadTimeoutError)):
        return StoreError(f"{where}: cannot reach the endpoint to {doing}: check object_store_endpoint_url "
                          "(VIDAGENT_OBJECT_STORE_ENDPOINT_URL) and the network")
    if isinstance(cause, bce.ClientError):
        code = str(cause.response.get("Error", {}).get("Code", ""))
        status = cause.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code == "NoSuchBucket":
            return StoreError(f"{where}: no such bucket: create it (for RunPod, a network volume; its id is "
                              "the bucket) or set object_store_bucket (VIDAGENT_OBJECT_STORE_BUCKET)")
        if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken", "ExpiredToken"):
            return StoreError(f"{where}: the store rejected the credentials ({code}) when asked to {doing}: "
                              f"check {ACCESS_KEY_VAR}/{SECRET_KEY_VAR} (or AWS_ACCESS_KEY_ID/AWS_PROFILE)")
        if code in ("AccessDenied", "403", "Forbidden") or status == 403:
            return StoreError(f"{where}: access denied when asked to {doing}: give the key s3:PutObject, "
                              "s3:GetObject and s3:ListBucket on the bucket, or use another key")
        return StoreError(f"{where}: could not {doing} ({code or status or 'error'})")
    return StoreError(f"{where}: could not {doing} ({type(cause).__name__})")


def describe_store(settings: Settings) -> tuple[bool, str]:
    """For `vidagent doctor`: what the store would use, never a credential's value; no network."""
    if not settings.object_store_bucket:
        return True, "not configured (object_store_bucket): local files are not published to segment workers"
    import os

    where = f"bucket {settings.object_store_bucket} at {endpoint_label(settings)}"
    try:
        import boto3  # noqa: F401
    except ImportError:
        return False, f"{where}; boto3 not installed: pip install 'vidagent[store]'"
    if settings.object_store_access_key_id and settings.object_store_secret_access_key:
        keys = f"keys from {ACCESS_KEY_VAR}/{SECRET_KEY_VAR}"
    elif settings.object_store_access_key_id or settings.object_store_secret_access_key:
        return False, f"{where}; set both {ACCESS_KEY_VAR} and {SECRET_KEY_VAR}, or neither"
    elif os.environ.get("AWS_ACCESS_KEY_ID") or os.environ.get("AWS_PROFILE"):
        keys = "keys from boto3's chain (" + ("AWS_PROFILE" if os.environ.get("AWS_PROFILE") else "AWS_ACCESS_KEY_ID") + ")"
    else:
        keys = "keys from boto3's chain (~/.aws or an instance role, if any)"
    urls = ("workers read /runpod-volume (RunPod's S3 API signs no URLs)" if is_runpod_volume(settings)
            else f"presigned URLs for {settings.object_store_url_ttl_s:g} s")
    return True, f"{where}; {keys}; {urls}"
