"""Blocking generators (the frame child's pipe, the audio decoder) read on threads and
handed to the event loop with backpressure."""

from __future__ import annotations

import asyncio
import threading
from typing import AsyncIterator, Iterator

QUEUE_ITEMS = 32


async def iterate_in_thread(source: Iterator, name: str, maxsize: int = QUEUE_ITEMS) -> AsyncIterator:
    """Run a blocking generator in a thread; yield its items here, with backpressure.

    The thread hands items over without waiting for the event loop (call_soon_threadsafe)
    and blocks only when `maxsize` items are waiting: a blocking hand-over per item made
    the decoder wait on every busy moment of the loop (docs/benchmarks.md)."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue = asyncio.Queue()
    slots = threading.Semaphore(maxsize)
    stop = threading.Event()
    end = object()

    def put(entry) -> bool:
        while not slots.acquire(timeout=0.2):
            if stop.is_set():
                return False
        loop.call_soon_threadsafe(queue.put_nowait, entry)
        return True

    def produce() -> None:
        try:
            for item in source:
                if stop.is_set() or not put((item, None)):
                    return
            put((end, None))
        except BaseException as exc:  # handed to the consumer, which re-raises it
            put((end, exc))
        finally:
            source.close()

    thread = threading.Thread(target=produce, name=name, daemon=True)
    thread.start()
    try:
        while True:
            item, error = await queue.get()
            slots.release()
            if item is end:
                if error is not None:
                    raise error
                return
            yield item
    finally:
        stop.set()
        await asyncio.to_thread(thread.join)
