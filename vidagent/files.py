"""Writing files so that a reader never sees half of one."""

from __future__ import annotations

import os
import tempfile
import threading
from pathlib import Path

# mkstemp makes files 0600; a report should get what any new file gets (0644 under the
# usual umask 022), or shared folders and CI artifacts cannot read it. The umask can only
# be read by setting it, so it is read once, at import, before any thread writes files.
_UMASK = os.umask(0o022)
os.umask(_UMASK)


_writing = 0  # atomic writes under way, on any thread (an interrupted exit waits for them)
_writing_lock = threading.Condition()


def wait_for_writes(timeout_s: float) -> bool:
    """Wait until no atomic write is under way; False if some still are after `timeout_s`."""
    with _writing_lock:
        return _writing_lock.wait_for(lambda: _writing == 0, timeout_s)


def atomic_write(path: Path, text: str, mode: int | None = None) -> Path:
    """Write `text` beside `path`, flush it to disk, then rename it into place.

    An interrupted write leaves the old file (or none), never a truncated one. `mode` sets
    the permissions (a `.env` holding keys keeps its 0600); by default the file gets the
    permissions the user's umask gives a new file."""
    global _writing
    with _writing_lock:
        _writing += 1
    try:
        return _write(path, text, mode)
    finally:
        with _writing_lock:
            _writing -= 1
            _writing_lock.notify_all()


def _write(path: Path, text: str, mode: int | None) -> Path:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode if mode is not None else 0o666 & ~_UMASK)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
