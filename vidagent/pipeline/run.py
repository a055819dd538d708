"""One video's jobs: started as items arrive, a bounded number per endpoint, results
collected, failures confined to the job that failed.

Every wait here has something in flight that will end it: a job holds each endpoint slot
waited on, a probe job holds the language lock, and the caption gate is waited on only
while a job runs (with none running, the video fails at once with the stage named).
`last_progress` lets the caller's watchdog fail a video that stops moving.
"""

from __future__ import annotations

import asyncio
import time
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from pydantic import ValidationError

from ..budget import Budget, BudgetExceeded
from ..captions.gate import CaptionGate
from ..config import Settings
from ..errors import BackendError, ConfigError, JobFailed, PipelineError
from ..media.audio import AudioChunk
from ..media.probe import MediaInfo
from ..media.sampler import SampledFrame
from ..report.model import Caption, EndpointUsage, FrameDetections, Segment
from ..speakers.timeline import ChunkSpeakers
from ..tasks import caption, detect, summary, transcribe
from ..transports import JobResult, Router
from .language import LanguageLock
from .streams import iterate_in_thread

# What a reply of the wrong shape raises in a task's parser: that job fails, not the batch.
MALFORMED = (KeyError, ValueError, TypeError, IndexError, AttributeError, ValidationError)


def unreadable(endpoint: str, exc: Exception) -> JobFailed:
    """A reply of the wrong shape, as the job's failure."""
    return JobFailed(f"{endpoint} sent a reply vidagent cannot read ({type(exc).__name__}: {str(exc)[:200]})")


@dataclass
class Failure:
    stage: str  # detect, transcribe, caption, summary
    reason: str
    start: float | None = None  # the stretch of the video it leaves without results
    end: float | None = None


@dataclass
class Collected:
    detections: list[FrameDetections] = field(default_factory=list)
    segments: list[Segment] = field(default_factory=list)
    languages: list[tuple[str | None, float | None, float]] = field(default_factory=list)
    usage: dict[str, EndpointUsage] = field(default_factory=dict)
    captions: list[Caption] = field(default_factory=list)
    summary: Any = None  # an EvidencedSummary (tasks/summary.py), which the Report unpacks
    silent_chunks: int = 0
    audio_chunks: int = 0
    segments_without_words: bool = False
    speaker_chunks: list = field(default_factory=list)  # ChunkSpeakers (vidagent/speakers)
    chunks_without_speakers: int = 0  # transcribed chunks whose reply had no `diarization`
    speakers_from: str = "whisper"  # the endpoint that diarizes (segment on the segment path)
    failures: list[Failure] = field(default_factory=list)
    retried_jobs: int = 0

    def record(self, endpoint: str, result: JobResult, items: int, tokens: tuple[int, int] = (0, 0)) -> None:
        usage = self.usage.setdefault(endpoint, EndpointUsage())
        usage.jobs += 1
        usage.cached_jobs += result.cached
        usage.items += items
        usage.prompt_tokens += tokens[0]
        usage.completion_tokens += tokens[1]
        usage.execution_s = round(usage.execution_s + result.execution_s, 3)
        usage.delay_s = round(usage.delay_s + result.delay_s, 3)


class VideoRun:
    """Starts the jobs of one video, a bounded number per endpoint, and collects results."""

    def __init__(self, media: MediaInfo, settings: Settings, transport: Router, progress,
                 limits: dict[str, asyncio.Semaphore], budget: Budget, audio_streams: int = 1):
        self.media, self.settings, self.transport, self.progress = media, settings, transport, progress
        self.collected = Collected()
        self.limits = limits
        self.budget = budget
        self.jobs: asyncio.TaskGroup | None = None
        # None on the segment path, where the segment worker batches its own frames.
        self.batcher = detect.FrameBatcher(settings.yolo_batch, transport.payload_limit(detect.ENDPOINT)) \
            if settings.detect and media.has_video and detect.ENDPOINT in transport.routes else None
        self.captions = CaptionGate(settings, media, audio_streams)
        self.languages = [LanguageLock(settings.language, settings.language_detection == "once")
                          for _ in range(audio_streams)]
        self.in_flight: dict[str, int] = {}  # endpoint -> jobs started and not finished
        self.last_progress = time.monotonic()
        self.speakers_refused = False  # the whisper worker has no diarization: stop asking for it
        self._changed = asyncio.Event()  # a job finished: held captions may be releasable
        if settings.caption or settings.summary:
            self._caption_prompt = caption.load_prompt(settings.caption_prompt, "caption.txt")

    # -- the two streams ------------------------------------------------------------------

    async def consume_frames(self, frames: Iterator[SampledFrame]) -> None:
        # aclosing: a cancelled run stops the reader thread (and the decoder) at once.
        async with aclosing(iterate_in_thread(frames, "frames")) as items:
            async for frame in items:
                self._moved()
                if frame.kind == "detect":
                    await self.add_detect_frame(frame)
                else:
                    self.captions.offer(frame)
                await self.release_captions()

    async def consume_audio(self, chunks: Iterator[AudioChunk], stream: int = 0, position: int | None = None) -> None:
        """`stream`: which of this run's audio streams (0…); `position`: its place in the file."""
        async with aclosing(iterate_in_thread(chunks, "audio", maxsize=2)) as items:  # chunks are MBs each
            async for chunk in items:
                self._moved()
                await self.send_chunk(chunk, stream, position)
                await self.release_captions()

    async def add_detect_frame(self, frame: SampledFrame) -> None:
        self.captions.detect_frame_seen(frame)
        for batch in self.batcher.add(frame):
            await self.send_frames(batch)

    async def extraction_finished(self) -> None:
        if self.batcher is not None and (last := self.batcher.flush()):
            await self.send_frames(last)
        self.captions.extraction_done()
        while self.captions.waiting():
            await self.release_captions()
            if not self.captions.waiting():
                break
            if not any(self.in_flight.values()):
                raise PipelineError(
                    f"caption stage: {self.captions.waiting()} caption candidate(s) wait for "
                    f"{self.captions.blocked_on()} that no running job will deliver (a bug: please report it)"
                )
            self._changed.clear()
            await self._changed.wait()

    # -- jobs per stage -------------------------------------------------------------------

    async def send_frames(self, frames: list[SampledFrame]) -> None:
        def done(result: JobResult) -> None:
            found = detect.parse_result(result.output, frames, self.media)
            self.collected.detections += found
            self.captions.detections_done(frames, found)
            self.collected.record(detect.ENDPOINT, result, len(frames))

        def failed() -> None:
            self.captions.detections_done(frames, None)

        await self._start("detect", detect.ENDPOINT, detect.build_job(frames, self.settings), done, failed,
                          span=(frames[0].t, frames[-1].t), items=len(frames))

    async def send_chunk(self, chunk: AudioChunk, stream: int = 0, position: int | None = None) -> None:
        self.collected.audio_chunks += 1
        self.captions.chunk_seen(chunk, stream)
        if chunk.is_silent:  # nothing to hear: send nothing, invent nothing
            self.collected.silent_chunks += 1
            self.captions.chunk_done(chunk, [], stream)
            self.progress.advanced("transcribe", 1)
            return
        lock = self.languages[stream]
        language, probe = await lock.for_next_chunk()

        def done(result: JobResult) -> None:
            got = transcribe.parse_result(result.output, chunk, self.settings)
            if position is not None and len(self.languages) > 1:  # several heard: say which
                index = self.media.audio_streams[position].index
                segments = [s.model_copy(update={"stream": index}) for s in got.segments]
            else:
                segments = got.segments
            self.collected.segments += segments
            self.collected.segments_without_words |= not got.had_words
            if self.settings.speakers:
                if got.speakers is None:
                    self.collected.chunks_without_speakers += 1
                else:
                    self.collected.speaker_chunks.append(ChunkSpeakers(chunk.start, got.speakers, chunk.time_at))
            self.captions.chunk_done(chunk, segments, stream)
            self.collected.languages.append((got.language, got.probability, chunk.duration))
            self.collected.record(transcribe.ENDPOINT, result, 1)
            if probe:
                lock.observe(got.language, got.probability)

        def failed() -> None:
            self.captions.chunk_done(chunk, [], stream)
            if probe:
                lock.observe(None, None)

        payload = transcribe.build_job(chunk, self.settings, language)
        if self.speakers_refused:
            payload = transcribe.without_speakers(payload)
        await self._start("transcribe", transcribe.ENDPOINT, payload, done, failed, span=(chunk.start, chunk.end))

    async def release_captions(self) -> None:
        for frame, reason, context in self.captions.release():
            self.progress.advanced("caption", 1)
            if reason is not None:
                await self._send_caption(frame, reason, context)

    async def _send_caption(self, frame: SampledFrame, reason: str, context: str) -> None:
        def done(result: JobResult) -> None:
            self.collected.captions.append(caption.parse_result(result.output, frame.t, reason))
            self.collected.record(caption.ENDPOINT, result, 1, caption.token_usage(result.output))

        payload = caption.build_job(frame, context, self.settings, self._caption_prompt)
        # Progress counts caption candidates (release_captions), not these jobs.
        await self._start("caption", caption.ENDPOINT, payload, done, lambda: None, span=(frame.t, frame.t), items=0)

    async def summarise(self) -> None:
        """The summary: parts, then the whole (tasks/summary.py), every request bounded by
        the VLM's slots; a failure leaves the report partial, not the video failed."""
        async def submit(payload: dict[str, Any]) -> dict[str, Any]:
            async with self.limits[caption.ENDPOINT]:
                self.in_flight[caption.ENDPOINT] = self.in_flight.get(caption.ENDPOINT, 0) + 1
                try:
                    result = await self._submit(caption.ENDPOINT, payload)
                finally:
                    self.in_flight[caption.ENDPOINT] -= 1
                    self._moved()
            self.budget.charge(caption.ENDPOINT, result)
            self.collected.record(caption.ENDPOINT, result, 1, caption.token_usage(result.output))
            return result.output

        try:
            # An EvidencedSummary: the Report takes it as `summary` (text, sentences, warnings).
            self.collected.summary = await summary.summarise(
                self.collected.captions, self.collected.segments, self.settings, submit)
        except (ConfigError, BudgetExceeded):
            raise
        except BackendError as exc:
            self.collected.failures.append(Failure("summary", str(exc)))
        except MALFORMED as exc:
            self.collected.failures.append(Failure("summary", str(unreadable(caption.ENDPOINT, exc))))

    # -- starting, running, failing -----------------------------------------------------------

    async def _start(self, stage: str, endpoint: str, payload: dict[str, Any], on_result: Callable[[JobResult], None],
                     on_failure: Callable[[], None], span: tuple[float, float] | None = None,
                     items: int = 1) -> None:
        """`items`: what the job advances the stage's progress by when it ends."""
        # Waiting here, not inside the task, is the backpressure that keeps memory flat.
        await self.limits[endpoint].acquire()
        self.in_flight[endpoint] = self.in_flight.get(endpoint, 0) + 1
        self.jobs.create_task(self._run(stage, endpoint, payload, on_result, on_failure, span, items))

    async def _run(self, stage, endpoint, payload, on_result, on_failure, span, items) -> None:
        try:
            result = await self._submit(endpoint, payload)
            self.budget.charge(endpoint, result)
            try:
                on_result(result)
            except MALFORMED as exc:
                raise unreadable(endpoint, exc) from None
        except (ConfigError, BudgetExceeded):
            raise  # wrong for every job (a bad key, the budget spent): stop the batch
        except BackendError as exc:
            start, end = span if span else (None, None)
            self.collected.failures.append(Failure(stage, str(exc), start, end))
            on_failure()
        finally:
            self.in_flight[endpoint] -= 1
            self.limits[endpoint].release()
            if items:
                self.progress.advanced(stage, items)
            self._moved()
            self._changed.set()

    async def _submit(self, endpoint: str, payload: dict[str, Any]) -> JobResult:
        """A job whose worker broke (not its input) is sent again, `job_retries` times."""
        for attempt in range(self.settings.job_retries + 1):
            try:
                return await self.transport.submit(endpoint, payload)
            except JobFailed as exc:
                if endpoint == transcribe.ENDPOINT and transcribe.refused_speakers(str(exc), payload):
                    # Refused at validation, before any work: the transcript without speakers,
                    # and the report says why (pipeline/merge.py).
                    self.speakers_refused = True
                    return await self._submit(endpoint, transcribe.without_speakers(payload))
                if not exc.retryable or attempt == self.settings.job_retries:
                    raise
                self.collected.retried_jobs += 1
        raise AssertionError("unreachable")

    async def _drain(self) -> None:
        while any(self.in_flight.values()):
            self._changed.clear()
            await self._changed.wait()

    def _moved(self) -> None:
        self.last_progress = time.monotonic()

    def waiting_for(self) -> str:
        """What the video is waiting on, in words (for the stall message)."""
        running = [f"{n} {endpoint} job(s)" for endpoint, n in self.in_flight.items() if n]
        held = self.captions.waiting()
        parts = running + ([f"{held} caption candidate(s) held"] if held else [])
        return ", ".join(parts) or "the decoder"
