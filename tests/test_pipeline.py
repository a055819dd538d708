"""The pipeline's scheduling and failure handling, with stand-in endpoints the test scripts.

The endpoints are the edge here (a model's answers, a broken worker); extraction, the
caption gate, the job runner and the merge are the real code on real ffmpeg clips.
"""

import asyncio

import pytest

from vidagent.config import Settings
from vidagent.errors import JobFailed, PipelineError, Stalled
from vidagent.pipeline import analyze_video
from vidagent.transports import JobResult, Router

GUARD_S = 120  # turns a hang into a failure; never reached by a passing test


def completion(text: str) -> dict:
    return {"choices": [{"message": {"role": "assistant", "content": text}}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 3}}


class ScriptedEndpoint:
    """A Transport whose answers are well-formed and empty (or scripted), whose jobs can be
    held back, and which fails on request."""

    name = "scripted"
    max_payload_bytes = None

    def __init__(self, concurrency: int = 4, release: asyncio.Event | None = None, seconds: float = 0.0,
                 failures: list[Exception] | None = None, reply=None):
        self._concurrency = concurrency
        self.release = release  # jobs wait for it, when given
        self.seconds = seconds  # each job takes this long
        self.failures = list(failures or [])  # raised by the first jobs, in order
        self.reply = reply  # payload -> output, overriding the default answer
        self.jobs = 0
        self.payloads: list[dict] = []

    def concurrency(self, endpoint: str) -> int:
        return self._concurrency

    async def submit(self, endpoint: str, payload: dict) -> JobResult:
        self.payloads.append(payload)
        if self.release is not None:
            await self.release.wait()
        await asyncio.sleep(self.seconds)
        if self.failures:
            raise self.failures.pop(0)
        self.jobs += 1
        if self.reply is not None:
            return JobResult(output=self.reply(payload), execution_s=0.0)
        if endpoint == "yolo":
            output = {"results": [{"width": 320, "height": 240, "detections": [
                {"label": "person", "class_id": 0, "confidence": 0.9, "box": [10, 10, 50, 90]}]}
                for _ in payload["images"]]}
        elif endpoint == "whisper":
            output = {"segments": [], "detected_language": "en", "language_probability": 0.99}
        else:
            output = completion('{"caption": "A test pattern."}')
        return JobResult(output=output, execution_s=0.0)

    async def aclose(self) -> None:
        pass


def run(video, settings, routes: dict) -> "Report":
    async def go():
        return await asyncio.wait_for(analyze_video(video, settings, Router(routes)), timeout=GUARD_S)

    return asyncio.run(go())


def all_stages(**extra) -> Settings:
    return Settings(**{"cache": False, "caption": True, "summary": True, "caption_trigger_classes": ["person"],
                       "detect_size": 160, **extra})


@pytest.fixture(scope="module")
def clip_23976(clips, sample):
    # At 24000/1001 fps a frame's time has more than six decimals: the rounded time a
    # detection result carries back is not the time the frame was sent with.
    return clips("c23976-40s.mp4", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=24000/1001:duration=40",
                 "-stream_loop", "3", "-i", str(sample), "-map", "0:v", "-map", "1:a", "-c:v", "libx264",
                 "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest")


def test_every_stage_at_23976_fps_finishes(clip_23976):
    routes = {"yolo": ScriptedEndpoint(), "whisper": ScriptedEndpoint(), "vlm": ScriptedEndpoint()}
    report = run(clip_23976, all_stages(), routes)
    assert report.status == "complete"
    assert len(report.detections) >= 395  # 40 s at 10 fps
    assert report.captions and report.captions[0].reason == "first"
    assert report.summary  # the scripted VLM's answer


def test_a_stalled_endpoint_holds_up_only_its_own_stream(sample):
    # Transcription takes one job at a time and holds it until every frame has been
    # detected; detection is slow, so the audio is all decoded long before the frames. If
    # audio chunks waited in line with the frames, the second chunk would block the frames
    # behind it and the run would never end.
    settings = Settings(detect_fps=5, audio_chunk_s=5, yolo_batch=5, cache=False, language="en")
    frames_done = asyncio.Event()
    detector = ScriptedEndpoint(concurrency=1, seconds=0.05)
    transcriber = ScriptedEndpoint(concurrency=1, release=frames_done)

    async def go():
        async def watch():
            while detector.jobs < 10:  # 50 frames at 5 fps, 5 a job
                await asyncio.sleep(0.01)
            frames_done.set()

        watcher = asyncio.create_task(watch())
        report = await asyncio.wait_for(
            analyze_video(sample, settings, Router({"yolo": detector, "whisper": transcriber})), timeout=GUARD_S
        )
        await watcher
        return report

    report = asyncio.run(go())
    assert len(report.detections) == 50
    assert transcriber.jobs >= 2  # 10 s of speech in ~5 s chunks
    assert report.usage["whisper"].jobs == transcriber.jobs


def test_a_video_that_stops_moving_fails_with_what_it_waited_for(sample):
    never = asyncio.Event()
    routes = {"yolo": ScriptedEndpoint(release=never), "whisper": ScriptedEndpoint(release=never)}
    with pytest.raises(Stalled) as caught:
        run(sample, Settings(cache=False, stall_timeout_s=1.0), routes)
    message = str(caught.value)
    assert str(sample) in message and "no progress for" in message and "yolo job(s)" in message


def test_a_wait_that_nothing_in_flight_can_end_fails_at_once(sample, monkeypatch):
    # Simulate the old bug (an answer never matched to its frame): the gate must not hang.
    from vidagent.captions.gate import CaptionGate

    monkeypatch.setattr(CaptionGate, "detections_done", lambda self, frames, found: None)
    routes = {"yolo": ScriptedEndpoint(), "whisper": ScriptedEndpoint(), "vlm": ScriptedEndpoint()}
    with pytest.raises(PipelineError, match="caption stage: .* wait for .*detection frame"):
        run(sample, all_stages(summary=False), routes)


def test_a_failed_stage_gives_a_partial_report_with_the_rest(sample):
    routes = {"yolo": ScriptedEndpoint(),
              "whisper": ScriptedEndpoint(failures=[JobFailed("whisper job failed: model not found")] * 3)}
    report = run(sample, Settings(cache=False, audio_chunk_s=5), routes)
    assert report.status == "partial"
    assert "transcribe" in report.failed_stages and "model not found" in report.failed_stages["transcribe"]
    assert any(w.startswith("transcription failed:") for w in report.warnings)
    assert len(report.detections) == 100  # detection is whole
    assert len(routes["whisper"].payloads) == 2  # bad input is not resent


def test_a_broken_worker_is_retried_a_bounded_number_of_times_and_bad_input_never(sample):
    crash = JobFailed("yolo job failed: CUDA out of memory", retryable=True)
    flaky = ScriptedEndpoint(concurrency=1, failures=[crash, crash])
    report = run(sample, Settings(cache=False, transcribe=False, detect_fps=1, yolo_batch=32, job_retries=2),
                 {"yolo": flaky})
    assert report.status == "complete" and len(report.detections) == 10
    assert len(flaky.payloads) == 3  # one job, sent three times

    always = ScriptedEndpoint(concurrency=1, failures=[crash] * 10)
    report = run(sample, Settings(cache=False, transcribe=False, detect_fps=1, job_retries=2), {"yolo": always})
    assert report.status == "partial" and len(always.payloads) == 3

    bad = ScriptedEndpoint(concurrency=1, failures=[JobFailed("input field 'images': not valid base64")])
    report = run(sample, Settings(cache=False, transcribe=False, detect_fps=1, job_retries=2), {"yolo": bad})
    assert report.status == "partial" and len(bad.payloads) == 1


@pytest.mark.parametrize("reply", [{"results": "not a list"}, {"results": [{"width": 320}]}, {}])
def test_a_malformed_reply_fails_that_job_not_the_video(sample, reply):
    routes = {"yolo": ScriptedEndpoint(reply=lambda payload: reply), "whisper": ScriptedEndpoint()}
    report = run(sample, Settings(cache=False, detect_fps=1, language="en"), routes)
    assert report.status == "partial"
    assert "cannot read" in report.failed_stages["detect"]
    assert report.detections == []


def test_the_language_is_detected_once_then_kept(clip_23976):
    answers = iter([("fr", 0.3), ("en", 0.95)])  # the first chunk is unsure, the second is not

    def reply(payload):
        language, probability = next(answers, ("de", 0.99))
        return {"segments": [], "detected_language": language, "language_probability": probability}

    whisper = ScriptedEndpoint(concurrency=4, reply=reply)
    quiet = Settings(cache=False, detect=False, audio_chunk_s=5, enable_vad=False)
    run(clip_23976, quiet, {"whisper": whisper})
    sent = [p["language"] for p in whisper.payloads]
    assert len(sent) >= 4 and sent[:2] == [None, None]  # two probes, then the sure answer
    assert set(sent[2:]) == {"en"}

    whisper = ScriptedEndpoint(concurrency=4, reply=reply)
    run(clip_23976, quiet.model_copy(update={"language": "de"}), {"whisper": whisper})
    assert {p["language"] for p in whisper.payloads} == {"de"}
