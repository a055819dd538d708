"""A file object over HTTP Range requests, for PyAV to demux a URL as if it were a file.

FFmpeg's own http reader asks for open-ended ranges (`bytes=N-`), so every seek leaves
a response streaming bytes nobody reads, and the bytes a reader costs cannot be counted
on either side. This reader asks for bounded blocks (BLOCK bytes, aligned), keeps the
last few, counts what it fetched (`bytes_read`, `requests`), reuses one connection, and
turns HTTP failures into one-line MediaErrors naming the media by its shown name (a
presigned URL's signature stays out of messages).
"""

from __future__ import annotations

import io
import threading
from collections import OrderedDict
from contextlib import contextmanager

from ..errors import MediaError

BLOCK = 1 << 19  # bytes per request: an mp4 index or a keyframe's packets take a few
_KEEP = 8  # blocks kept (a demuxer reads back and forth around one place)


_shared: dict[str, "_SharedBlocks"] = {}
_shared_lock = threading.Lock()


class _SharedBlocks:
    """Blocks one job fetched, for every reader of the same URL in it (the video and the
    audio demuxer read the same interleaved bytes): the store serves them once."""

    LIMIT = 256  # blocks (128 MiB): the audio reader runs ahead of the video reader by less

    def __init__(self) -> None:
        self.blocks: OrderedDict[int, bytes] = OrderedDict()
        self.lock = threading.Lock()


@contextmanager
def sharing(url: str):
    """Within this block, readers of `url` share what they fetch (held until it ends)."""
    with _shared_lock:
        _shared[url] = _SharedBlocks()
    try:
        yield
    finally:
        with _shared_lock:
            _shared.pop(url, None)


class Unreachable(MediaError):
    """The server could not be reached or kept failing (5xx): another try may succeed."""


class RangeReader(io.RawIOBase):
    def __init__(self, url: str, shown: str, timeout_s: float = 30.0, retries: int = 3):
        import httpx

        self.url, self.shown = url, shown
        self._client = httpx.Client(timeout=timeout_s, follow_redirects=True)
        self._retries = retries
        self._blocks: OrderedDict[int, bytes] = OrderedDict()
        self._pos = 0
        self.bytes_read = 0
        self.requests = 0
        self.version: str | None = None  # ETag or Last-Modified of the first answer
        self.size = self._size()

    # -- io.RawIOBase ---------------------------------------------------------------------

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self.size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            n = self.size - self._pos
        n = min(n, self.size - self._pos)
        if n <= 0:
            return b""
        block_no = self._pos // BLOCK
        block = self._block(block_no)
        at = self._pos - block_no * BLOCK
        data = block[at:at + n]
        self._pos += len(data)
        return data

    def readinto(self, buffer) -> int:
        data = self.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._client.close()
        super().close()

    # -- HTTP -----------------------------------------------------------------------------

    def _size(self) -> int:
        reply = self._get(0, 0)
        self.version = reply.headers.get("etag") or reply.headers.get("last-modified")
        total = reply.headers.get("content-range", "").rpartition("/")[2]
        if not total.isdigit():
            raise MediaError(f"{self.shown}: the server did not say the file's size (no Content-Range)")
        return int(total)

    def _block(self, number: int) -> bytes:
        block = self._blocks.get(number)
        if block is None:
            shared = _shared.get(self.url)
            if shared is not None:
                with shared.lock:  # one fetch per block, whichever reader asks first
                    block = shared.blocks.get(number)
                    if block is None:
                        block = shared.blocks[number] = self._fetch(number)
                        if len(shared.blocks) > shared.LIMIT:
                            shared.blocks.popitem(last=False)
            else:
                block = self._fetch(number)
            self._blocks[number] = block
            while len(self._blocks) > _KEEP:
                self._blocks.popitem(last=False)
        else:
            self._blocks.move_to_end(number)
        return block

    def _fetch(self, number: int) -> bytes:
        start = number * BLOCK
        return self._get(start, min(self.size, start + BLOCK) - 1).content

    def _get(self, start: int, end: int):
        import httpx

        for attempt in range(self._retries + 1):
            try:
                reply = self._client.get(self.url, headers={"Range": f"bytes={start}-{end}"})
            except httpx.TransportError as exc:
                if attempt == self._retries:
                    reason = (str(exc).splitlines() or [type(exc).__name__])[0][:160]
                    raise Unreachable(f"{self.shown}: cannot be reached ({reason})") from None
                continue
            if reply.status_code >= 500 and attempt < self._retries:
                continue
            break
        self.requests += 1
        self.bytes_read += len(reply.content)
        if reply.status_code == 206:
            return reply
        failure = Unreachable if reply.status_code >= 500 else MediaError
        raise failure(http_failure(self.shown, reply.status_code))


def http_failure(shown: str, status: int) -> str:
    """One line for an HTTP status that stops a ranged reader."""
    if status in (401, 403):
        return (f"{shown}: access denied (HTTP {status}): the presigned URL has expired or does not allow "
                "reading; make a new one")
    if status == 404:
        return f"{shown}: not found (HTTP 404)"
    if status == 200:
        return (f"{shown}: the server ignores Range requests (answered 200 to a ranged GET), so segment "
                "workers cannot seek; serve it from one that honours Range (any S3 store, nginx, a CDN) "
                "or analyse a local copy")
    if status == 416:
        return f"{shown}: the server refused the byte range (HTTP 416): the file changed or is empty"
    return f"{shown}: cannot be read (HTTP {status})"
