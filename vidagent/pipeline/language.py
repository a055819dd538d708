"""The spoken language of one audio stream, detected once and then kept.

Whisper detects the language of every chunk it is given on its own, and on a chunk of
music, noise or a few words it can guess wrong, which garbles that chunk's transcript.
So the first chunk with speech is sent alone; when Whisper is confident about its
language, every later chunk is sent with that language fixed. If it is not, the next
chunk is tried, up to PROBES chunks, then the likeliest answer so far is kept. A chunk
waits only while a probe is in flight, so the wait always ends.
"""

from __future__ import annotations

import asyncio

CONFIDENT = 0.5  # Whisper's language probability at or above which the answer is kept
PROBES = 3


class LanguageLock:
    def __init__(self, fixed: str | None, detect_once: bool):
        self.language = fixed
        self.decided = fixed is not None or not detect_once
        self._probing = False
        self._tries = 0
        self._best: tuple[float, str] | None = None
        self._changed = asyncio.Event()

    async def for_next_chunk(self) -> tuple[str | None, bool]:
        """(language to send, whether this chunk is a probe whose answer must be observed)."""
        while not self.decided:
            if not self._probing:
                self._probing = True
                return None, True
            self._changed.clear()
            await self._changed.wait()
        return self.language, False

    def observe(self, language: str | None, probability: float | None) -> None:
        """A probe's answer; (None, None) when the probe failed."""
        self._probing = False
        self._tries += 1
        if language and probability is not None and (self._best is None or probability > self._best[0]):
            self._best = (probability, language)
        if language and (probability is None or probability >= CONFIDENT):
            self.language, self.decided = language, True
        elif self._tries >= PROBES:
            self.language, self.decided = (self._best[1] if self._best else None), True
        self._changed.set()
