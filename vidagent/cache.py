"""The job cache: every finished job's output, keyed by what was asked.

The key is a hash of the endpoint and the exact job payload (the frame or audio bytes,
model, parameters), so a rerun after a crash, Ctrl-C or `kill -9` sends only the jobs
that had not finished, and a rerun with one changed parameter redoes only the jobs whose
payload it changes. Entries are written atomically (temp file + rename): a half-written
entry never exists, and a corrupt one is treated as missing.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import wire
from .files import atomic_write
from .transports import JobResult, Router

CONTENT_HASH = "sha256"  # of a media file's bytes: the object store's key, the segments' cache key
# Payload fields that say where to read, not what is asked: a segment job's `url` is often
# a presigned URL that changes every run; its `content` field names the media instead.
NOT_IN_KEY = {"segment": frozenset({"url"})}
FORMAT = 2  # bump when the key or the entry layout changes: old entries are then ignored


@dataclass
class CacheInfo:
    path: Path
    entries: int
    bytes: int


class JobCache:
    def __init__(self, root: Path):
        self.root = root / "jobs"

    @staticmethod
    def key(endpoint: str, payload: dict[str, Any]) -> str:
        digest = hashlib.sha256(f"v{FORMAT}\0{endpoint}\0".encode())
        skip = NOT_IN_KEY.get(endpoint)
        digest.update(wire.canonical({k: v for k, v in payload.items() if k not in skip} if skip else payload))
        return digest.hexdigest()

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        try:
            return json.loads(self._path(key).read_text(encoding="utf-8"))["output"]
        except (FileNotFoundError, ValueError, KeyError):
            return None

    def put(self, key: str, output: dict[str, Any]) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, json.dumps({"output": output}))

    def info(self) -> CacheInfo:
        files = list(self.root.rglob("*.json")) if self.root.exists() else []
        return CacheInfo(self.root, len(files), sum(f.stat().st_size for f in files))

    def clear(self) -> int:
        removed = self.info().entries
        shutil.rmtree(self.root, ignore_errors=True)
        return removed


class CachingTransport:
    """A Router that answers from the cache when it can and fills it when it cannot."""

    def __init__(self, inner: Router, cache: JobCache):
        self.inner = inner
        self.cache = cache
        self.routes = inner.routes
        self.name = inner.name

    def payload_limit(self, endpoint: str) -> int | None:
        return self.inner.payload_limit(endpoint)

    def concurrency(self, endpoint: str) -> int:
        return self.inner.concurrency(endpoint)

    def transport(self, endpoint: str):
        return self.inner.transport(endpoint)

    async def submit(self, endpoint: str, payload: dict[str, Any]) -> JobResult:
        key = self.cache.key(endpoint, payload)
        # File reads and fsyncs off the event loop, where other jobs' HTTP waits.
        output = await asyncio.to_thread(self.cache.get, key)
        if output is not None:
            return JobResult(output=output, execution_s=0.0, cached=True)
        result = await self.inner.submit(endpoint, payload)
        await asyncio.to_thread(self.cache.put, key, result.output)
        return result

    async def aclose(self) -> None:
        await self.inner.aclose()


_content_hashes: dict[tuple, str] = {}
_content_lock = threading.Lock()


def content_hash(path: Path) -> str:
    """Hex SHA-256 of the file's bytes (the job keys' hash, over the file). Remembered for
    this process by (path, size, mtime, inode), so the upload and the segment cache keys of
    one run read a large file once; a file changed in place gets a new hash."""
    stat = path.stat()
    identity = (str(path.resolve()), stat.st_size, stat.st_mtime_ns, stat.st_ino)
    with _content_lock:
        known = _content_hashes.get(identity)
    if known is not None:
        return known
    with path.open("rb") as handle:
        digest = hashlib.file_digest(handle, CONTENT_HASH).hexdigest()
    with _content_lock:
        _content_hashes[identity] = digest
    return digest
