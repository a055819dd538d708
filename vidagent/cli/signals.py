"""Ctrl-C and SIGTERM take one path, from the first instruction of `main()` to the last.

SIGTERM is what a CI runner or `docker stop` sends. Python's default ends the process at
once (no cancels sent, so remote jobs keep billing), and asyncio's own signal handling
restores that default when its loop closes. So SIGTERM is handled here for the whole
run: while a `cancellable()` coroutine runs, it cancels that coroutine's task the way
Ctrl-C does (in-flight jobs are cancelled on their endpoints); at any other moment it
raises KeyboardInterrupt, which `main()` turns into exit code 130.

Python drops an exception raised where it cannot propagate: in a weakref callback that an
import runs, or a `__del__`, it prints "Exception ignored" and goes on. A SIGTERM that lands
there would be lost and the run would carry on, so until `main()` has taken an interrupt
(`leaving()`), each SIGTERM that raises also sends itself again REDELIVER_S later.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import threading

_running: tuple[asyncio.AbstractEventLoop, asyncio.Task] | None = None
_cancelled = False
_leaving = False
EXIT_DEADLINE_S = 3.0  # how long finishing writes may hold up the exit after an interrupt
REDELIVER_S = 0.5


def install() -> None:
    signal.signal(signal.SIGTERM, _on_sigterm)


def leaving() -> None:
    """An interrupt was taken and the process is on its way out: SIGTERM adds nothing now."""
    global _leaving
    _leaving = True


def _on_sigterm(signum, frame) -> None:
    global _cancelled
    if _running is None:
        if _leaving:
            return
        again = threading.Timer(REDELIVER_S, lambda: _leaving or os.kill(os.getpid(), signum))
        again.daemon = True
        again.start()
        raise KeyboardInterrupt
    if not _cancelled:  # a second SIGTERM must not cut the cancels of the first short
        _cancelled = True
        loop, task = _running
        loop.call_soon_threadsafe(task.cancel)


async def cancellable(work):
    """Await `work`; SIGTERM cancels it, as Ctrl-C cancels what asyncio.run runs."""
    global _running
    _running = (asyncio.get_running_loop(), asyncio.current_task())
    try:
        return await work
    finally:
        _running = None


def exit_now(code: int) -> None:
    """Leave without waiting for worker threads (a local model call cannot be stopped
    midway): files still being written get a moment to land whole, then the process ends."""
    from ..files import wait_for_writes

    leaving()
    wait_for_writes(EXIT_DEADLINE_S)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
