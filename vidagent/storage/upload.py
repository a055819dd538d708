"""Publishing a local file to the object store, and turning media references into URLs a
worker can read.

A file goes to `<prefix>/<sha256 of its bytes>.<ext>`: its key says what it holds, so a
HEAD that finds the key at the file's size means it is there already and nothing is sent.
Uploads go through boto3's transfer manager (multipart above `MULTIPART_BYTES`, parts of
`PART_BYTES`: under RunPod's 500 MB part limit, and few enough parts for AWS's 10,000 up
to 640 GB). No ACL is sent, so the object keeps the bucket's private default; workers get
a presigned GET URL that expires, never a credential.
"""

from __future__ import annotations

import mimetypes
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from ..cache import content_hash as file_content_hash
from ..config import Settings
from ..errors import ConfigError, Interrupted, StoreError
from .client import endpoint_label, is_runpod_volume, s3_client, store_error

MULTIPART_BYTES = 64 * 1024 * 1024
PART_BYTES = 64 * 1024 * 1024
UPLOAD_THREADS = 8
# Where RunPod mounts a network volume in a serverless worker (docs.runpod.io storage/s3-api:
# s3://VOLUME_ID/path is /runpod-volume/path there).
RUNPOD_VOLUME_MOUNT = "/runpod-volume"


@dataclass(frozen=True)
class PublishedMedia:
    url: str  # what a worker opens: a presigned https URL, or a /runpod-volume path
    content_hash: str  # hex sha256 of the file (vidagent.cache.content_hash)
    uploaded_bytes: int  # 0 when the object was there already
    bucket: str = ""
    key: str = ""
    size: int = 0
    expires_at: float | None = None  # unix time the URL stops working; None: a volume path
    upload_s: float = 0.0


def store_configured(settings: Settings) -> bool:
    return bool(settings.object_store_bucket)


def object_key(settings: Settings, digest: str, path: Path) -> str:
    ext = path.suffix.lower()
    prefix = settings.object_store_prefix.strip("/")
    return f"{prefix}/{digest}{ext}" if prefix else f"{digest}{ext}"


def publish(path: Path, settings: Settings, *, content_hash: str | None = None,
            cancel: threading.Event | None = None) -> PublishedMedia:
    """Upload `path` once and return what a worker reads. `content_hash` (hex sha256), when
    the caller has it, saves reading the file again. Blocking: call it off the event loop;
    setting `cancel` (on Ctrl-C) stops an upload within a part, aborts a multipart upload
    (no orphaned parts left billing in the bucket) and raises Interrupted."""
    bucket = settings.object_store_bucket
    if not bucket:
        raise ConfigError("no object store: set object_store_bucket (VIDAGENT_OBJECT_STORE_BUCKET) "
                          "to publish local files to the segment workers")
    size = path.stat().st_size
    digest = content_hash or file_content_hash(path)
    key = object_key(settings, digest, path)
    client = s3_client(settings)
    started = time.monotonic()
    uploaded = 0
    if not _already_there(client, settings, bucket, key, size, digest):
        _upload(client, settings, path, bucket, key, digest, cancel)
        uploaded = size
    upload_s = time.monotonic() - started
    url, expires_at = _worker_url(client, settings, bucket, key)
    return PublishedMedia(url, digest, uploaded, bucket, key, size, expires_at, upload_s)


def resolve_url(source: str, settings: Settings) -> str:
    """`s3://bucket/key` → a presigned GET URL (or the volume path on RunPod's S3 API);
    http(s) URLs pass through as they are."""
    scheme = urlsplit(source).scheme.lower()
    if scheme in ("http", "https"):
        return source
    if scheme != "s3":
        raise ConfigError(f"{source}: not a URL vidagent can give a worker: use https://, http:// or s3://bucket/key")
    parts = urlsplit(source)
    bucket, key = parts.netloc, parts.path.lstrip("/")
    if not bucket or not key:
        raise ConfigError(f"{source}: an s3 URL needs a bucket and a key: s3://bucket/path/to/video.mp4")
    client = s3_client(settings)
    try:
        client.head_object(Bucket=bucket, Key=key)
    except Exception as exc:  # botocore's; store_error says which
        if _status(exc) == 404:  # a HEAD has no body: a missing bucket reads the same
            raise StoreError(f"{source}: no such object (or bucket) at {endpoint_label(settings)}: "
                             "check the bucket and the key") from None
        raise store_error(exc, settings, bucket, "read the object") from None
    return _worker_url(client, settings, bucket, key)[0]


def _already_there(client, settings: Settings, bucket: str, key: str, size: int, digest: str) -> bool:
    """True when the object exists with this size (and, when it carries one, this hash).
    A 403 is not fatal here: a key allowed to put but not list gets 403 for a missing
    object, so the upload decides."""
    try:
        head = client.head_object(Bucket=bucket, Key=key)
    except Exception as exc:
        if _status(exc) in (403, 404):
            return False
        raise store_error(exc, settings, bucket, "look for the upload") from None
    stored = (head.get("Metadata") or {}).get("sha256")
    return head.get("ContentLength") == size and stored in (None, digest)


def _upload(client, settings: Settings, path: Path, bucket: str, key: str, digest: str,
            cancel: threading.Event | None) -> None:
    from boto3.s3.transfer import TransferConfig, create_transfer_manager

    config = TransferConfig(multipart_threshold=MULTIPART_BYTES, multipart_chunksize=PART_BYTES,
                            max_concurrency=UPLOAD_THREADS, use_threads=True)
    extra = {"Metadata": {"sha256": digest},
             "ContentType": mimetypes.guess_type(path.name)[0] or "application/octet-stream"}
    cancel = cancel or threading.Event()
    try:
        with create_transfer_manager(client, config) as manager:
            future = manager.upload(str(path), bucket, key, extra_args=extra)
            while not future.done():
                if cancel.wait(0.1):
                    future.cancel()  # its failure cleanup aborts a multipart upload
                    break
            future.result()
    except Exception as exc:
        if cancel.is_set():
            raise Interrupted(f"{path}: upload to bucket {bucket!r} cancelled; nothing was left there") from None
        raise store_error(exc, settings, bucket, f"upload {path.name}") from None


def _worker_url(client, settings: Settings, bucket: str, key: str) -> tuple[str, float | None]:
    if is_runpod_volume(settings):
        # RunPod's S3 API signs no URLs; the segment endpoint mounts the volume instead.
        return f"{RUNPOD_VOLUME_MOUNT}/{key}", None
    ttl = int(settings.object_store_url_ttl_s)
    try:
        url = client.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=ttl)
    except Exception as exc:
        raise store_error(exc, settings, bucket, "sign a URL") from None
    return url, time.time() + ttl


def _status(exc: BaseException) -> int | None:
    response = getattr(exc, "response", None)
    return response.get("ResponseMetadata", {}).get("HTTPStatusCode") if isinstance(response, dict) else None
