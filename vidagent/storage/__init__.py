"""The object store: local media published once for the segment workers, by content hash.

- `publish(path, settings) -> PublishedMedia(url, content_hash, uploaded_bytes, …)`: uploads
  the file to `object_store_bucket` under `<object_store_prefix>/<sha256>.<ext>` unless an
  object of that key and size is there; returns the URL a worker reads: a presigned GET URL
  that expires after `object_store_url_ttl_s` (RunPod's S3 API has none: there it is the
  file's path on the network volume the segment endpoint mounts, /runpod-volume/<key>).
- `resolve_url(source, settings)`: `s3://bucket/key` → such a URL; http(s) passes through.
- `store_configured(settings)`: whether a bucket is named.

Works with AWS S3, Cloudflare R2 and RunPod's S3-compatible network-volume API through
boto3 (`vidagent[store]`); credentials and failures: client.py. Everything here blocks:
the pipeline calls it off the event loop.
"""

from .upload import PublishedMedia, object_key, publish, resolve_url, store_configured

__all__ = ["PublishedMedia", "object_key", "publish", "resolve_url", "store_configured"]
