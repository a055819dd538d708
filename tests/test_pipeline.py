"""The pipeline's scheduling, with stand-in endpoints whose timing the test controls."""

import asyncio

import pytest

from vidagent.config import Settings
from vidagent.pipeline import analyze_video
from vidagent.transports import JobResult, Router


class ScriptedEndpoint:
    """A Transport whose answers are empty results, and whose jobs can be held back."""

    name = "scripted"
    max_payload_bytes = None

    def __init__(self, concurrency: int, release: asyncio.Event | None = None, seconds: float = 0.0):
        self._concurrency = concurrency
        self.release = release  # jobs wait for it, when given
        self.seconds = seconds  # each job takes this long
        self.jobs = 0

    def concurrency(self, endpoint: str) -> int:
        return self._concurrency

    async def submit(self, endpoint: str, payload: dict) -> JobResult:
        if self.release is not None:
            await self.release.wait()
        await asyncio.sleep(self.seconds)
        self.jobs += 1
        if endpoint == "yolo":
            output = {"results": [{"width": 320, "height": 240, "detections": []} for _ in payload["images"]]}
        else:
            output = {"segments": [], "detected_language": "en", "language_probability": 1.0}
        return JobResult(output=output, execution_s=0.0)

    async def aclose(self) -> None:
        pass


def test_a_stalled_endpoint_holds_up_only_its_own_stream(sample):
    # Transcription takes one job at a time and holds it until every frame has been
    # detected; detection is slow, so the audio is all decoded long before the frames. If
    # audio chunks waited in line with the frames, the second chunk would block the frames
    # behind it and the run would never end.
    settings = Settings(detect_fps=5, audio_chunk_s=5, yolo_batch=5, cache=False)
    frames_done = asyncio.Event()
    detector = ScriptedEndpoint(concurrency=1, seconds=0.05)
    transcriber = ScriptedEndpoint(concurrency=1, release=frames_done)

    async def run():
        async def watch():
            while detector.jobs < 10:  # 50 frames at 5 fps, 5 a job
                await asyncio.sleep(0.01)
            frames_done.set()

        watcher = asyncio.create_task(watch())
        report = await asyncio.wait_for(
            analyze_video(sample, settings, Router({"yolo": detector, "whisper": transcriber})), timeout=30
        )
        await watcher
        return report

    report = asyncio.run(run())
    assert len(report.detections) == 50
    assert transcriber.jobs >= 2  # 10 s of speech in ~5 s chunks
    assert report.usage["whisper"].jobs == transcriber.jobs
