"""Run frame extraction in a child process, so the decoder never waits for our GIL.

The decoder thread gives up and takes back the GIL for every packet it reads and decodes.
In the pipeline the event loop holds the GIL for its Python work (job JSON, HTTP,
parsing results); each time the decoder wants it back it may wait up to the interpreter's
switch interval. Measured (docs/benchmarks.md): a pure-Python thread busy ~17% of the
time slowed a 10-minute extraction from 11.6 s to 14.4 s. In a process of its own the
decoder shares its GIL only with its own JPEG encoder thread, as when run alone.

The child is a fresh `python` running `_main()`: arguments arrive pickled on its stdin,
frames leave pickled on its stdout, then its ExtractStats. (Not multiprocessing: that
re-imports the caller's main script in the child, which breaks unguarded scripts.)
A closed pipe ends the child, so it never outlives its consumer. Starting one costs
~0.3 s (interpreter and imports); `prestart()` starts it ahead, while the caller sets up
or the previous video is still running.
"""

from __future__ import annotations

import atexit
import pickle
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

from ..errors import MediaError

if TYPE_CHECKING:  # at run time only the child needs them: prestart() must stay cheap
    from .probe import MediaInfo
    from .sampler import ExtractStats, FrameSpec, SampledFrame

_PIPE_BYTES = 1 << 20  # room for ~30 JPEG frames, so a busy consumer rarely stalls the decoder
_MAX_SPARES = 4

_spares: list[subprocess.Popen] = []  # started, waiting for their arguments
_spares_lock = threading.Lock()  # prestart() runs on the event loop, extraction on its own thread


@dataclass(frozen=True)
class _End:
    stats: ExtractStats
    error: BaseException | None


def extract_frames_in_child(
    path: Path,
    info: MediaInfo,
    frames: list[FrameSpec],
    jpeg_quality: int = 90,
    stats: ExtractStats | None = None,
    cpus: int | None = None,
) -> Iterator[SampledFrame]:
    """`extract_frames()`, run in a child process; same items, same stats, same errors."""
    child = _take()
    try:
        _widen(child.stdout)
        with child.stdin:
            pickle.dump((path, info, frames, jpeg_quality, cpus), child.stdin)
        # A buffered reader: pickle.load reads many small pieces.
        with open(child.stdout.fileno(), "rb", closefd=False) as stream:
            while True:
                try:
                    item = pickle.load(stream)
                except EOFError:
                    # Killed (out of memory, a signal) or crashed in the decoder: this
                    # video fails with a reason, the others in the batch go on.
                    code = child.wait()
                    raise MediaError(
                        f"{path}: the frame extraction process stopped before the end (exit code {code}); "
                        "if it repeats, check memory and the file with `ffmpeg -v error -i FILE -f null -`"
                    ) from None
                if isinstance(item, _End):
                    break
                yield item
        if stats is not None:
            for field in fields(stats):
                setattr(stats, field.name, getattr(item.stats, field.name))
        if item.error is not None:
            raise item.error
    finally:
        child.stdout.close()  # a child still writing gets a broken pipe and ends
        if child.poll() is None:
            child.terminate()
        child.wait()


def prestart(ready: int = 1) -> None:
    """Have `ready` children started and waiting for extractions about to come."""
    with _spares_lock:
        _spares[:] = [child for child in _spares if child.poll() is None]
        while len(_spares) < min(ready, _MAX_SPARES):
            _spares.append(_spawn())


def _take() -> subprocess.Popen:
    with _spares_lock:
        while _spares:
            child = _spares.pop(0)
            if child.poll() is None:
                return child
    return _spawn()


def _spawn() -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", f"from {__name__} import _main; _main()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0,
    )


@atexit.register
def _discard_spares() -> None:
    with _spares_lock:
        spares, _spares[:] = list(_spares), []
    for child in spares:
        child.stdin.close()  # no arguments will come: it exits
        child.stdout.close()
        try:
            child.wait(timeout=2)
        except subprocess.TimeoutExpired:
            child.kill()


def _main() -> None:
    from .sampler import ExtractStats, extract_frames

    # Ctrl-C reaches the whole process group; the parent decides what stops, and ends us.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        path, info, frames, jpeg_quality, cpus = pickle.load(sys.stdin.buffer)
    except EOFError:
        return  # a spare that was never needed
    out = sys.stdout.buffer
    stats = ExtractStats()
    error = None
    try:
        for item in extract_frames(path, info, frames, jpeg_quality, stats, cpus=cpus):
            pickle.dump(item, out, protocol=pickle.HIGHEST_PROTOCOL)
            out.flush()
    except BrokenPipeError:
        return  # the consumer stopped reading: nothing left to do
    except Exception as exc:  # handed to the consumer, which raises it
        error = exc
    try:
        try:
            end = pickle.dumps(_End(stats, error), protocol=pickle.HIGHEST_PROTOCOL)
        except Exception:  # an exception that cannot cross the pipe: send its words
            end = pickle.dumps(_End(stats, RuntimeError(f"{type(error).__name__}: {error}")))
        out.write(end)
        out.flush()
    except BrokenPipeError:
        pass


def _widen(pipe) -> None:
    """Linux pipes hold 64 KiB by default: two frames. Ask for more where we can."""
    try:
        import fcntl

        fcntl.fcntl(pipe.fileno(), getattr(fcntl, "F_SETPIPE_SZ", 1031), _PIPE_BYTES)
    except (ImportError, OSError):
        pass

