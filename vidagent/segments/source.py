"""Media a worker can read: http(s) URLs, `s3://` keys (through the object store), and,
for workers in this process, local paths.

A URL may carry a signature (a presigned URL is a bearer token for the object), so it is
shown, logged and written into reports without its query string and user info
(`MediaURL.__str__`); only the worker that reads it sees it whole. Readers go through
media/remote.py, whose first ranged GET says in one line what is wrong with a URL that
cannot be read in ranges: unreachable, 403 (expired or not allowed), 404, or a server
that ignores Range (workers seek; such a server would send each of them the whole file).
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit, urlunsplit


URL_SCHEMES = ("http://", "https://")
STORE_SCHEME = "s3://"


def is_url(text: str | Path | "MediaURL") -> bool:
    if isinstance(text, MediaURL):
        return True
    return str(text).lower().startswith(URL_SCHEMES + (STORE_SCHEME,))


def redact(url: str) -> str:
    """The URL without user info, query and fragment: what may be shown anywhere."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


class MediaURL:
    """An input that is a URL. Quacks like the Path the batch uses for naming (name, stem,
    suffix) and never shows its query string; `url` is the whole thing, for readers."""

    def __init__(self, url: str):
        self.url = url
        self._shown = redact(url)
        self._path = PurePosixPath(urlsplit(url).path or "/")

    def __str__(self) -> str:
        return self._shown

    def __repr__(self) -> str:
        return f"MediaURL({self._shown!r})"

    def __eq__(self, other) -> bool:
        return isinstance(other, MediaURL) and other.url == self.url

    def __hash__(self) -> int:
        return hash(self.url)

    @property
    def name(self) -> str:
        return self._path.name or (urlsplit(self.url).hostname or "media")

    @property
    def stem(self) -> str:
        return self._path.stem or self.name

    @property
    def suffix(self) -> str:
        return self._path.suffix

    @property
    def is_store_key(self) -> bool:
        return self.url.lower().startswith(STORE_SCHEME)

    def resolve(self) -> "MediaURL":
        return self

    def exists(self) -> bool:
        return True

    def is_dir(self) -> bool:
        return False


def as_input(text: str) -> Path | MediaURL:
    """A command-line input: a URL stays whole (a Path would fold its '//')."""
    return MediaURL(text) if is_url(text) else Path(text)


def readable_url(source: MediaURL, settings) -> str:
    """The http(s) URL a worker reads: s3:// keys are presigned by the object store."""
    if not source.is_store_key:
        return source.url
    storage = _storage()
    return storage.resolve_url(source.url, settings)


def publish(path: Path, settings):
    """Upload a local file once (by content hash) and return the store's PublishedMedia
    (url, content_hash, uploaded_bytes)."""
    return _storage().publish(path, settings)


def _storage():
    # The object store is its own package (vidagent/storage, boto3); imported only when used,
    # and a light install without boto3 is told the extra that brings it.
    from ..extras import require

    require("store")
    from .. import storage

    return storage
