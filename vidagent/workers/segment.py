"""The segment worker: one stretch of one video, decoded where it runs, both models in
this process.

It reads the media over its URL in byte ranges (media/remote.py), from the keyframe that
starts its segment (media/sampler.py's `Window`) to the next segment's, samples frames by
the local path's rule, runs YOLO on the detection frames (workers/yolo.py), transcribes
its audio with Whisper (workers/whisper.py), and returns per picked frame its pts, time
and detections, the caption candidates' small JPEGs (the VLM stays on its endpoint), and
the words of its audio. The payloads and parsers are the client's own (tasks/), so a
segment's results are what the local path would have made of the same frames and audio.

Audio: each boundary between two segments moves to the quietest 200 ms within
`search_s` of it, judged by both neighbours on the same 20 ms grid of the video clock, so
they agree where it is; each side transcribes `overlap_s` past it (a word across it is
heard whole by both) and says where it cut. The client keeps each word on the side its
middle falls (segments/combine.py): none lost, none doubled.

This is the one worker that uses the client's task code (pure: payloads, parsers, the
sampler); it imports nothing from transports, pipeline or cli.
"""

from __future__ import annotations

import base64
import time
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from . import WorkerInputError, parse_input

ENDPOINT = "segment"
PAUSE_DBFS = -50.0  # 200 ms this quiet is a pause between words (speech sits around -20 dBFS)
# Settings a segment job carries: what its frames, detections and transcript depend on.
JOB_SETTINGS = ("detect", "transcribe", "detect_size", "jpeg_quality", "audio_chunk_s", "yolo_model", "yolo_conf",
                "yolo_iou", "yolo_classes", "yolo_max_det", "yolo_batch", "whisper_model", "language",
                "enable_vad", "segment_pause_s", "speakers", "num_speakers", "min_speakers", "max_speakers",
                "diarization_backend")


class FramePlan(BaseModel):
    """One sampling rate of the plan (plan.make_plan's FrameSpec)."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["detect", "caption"]
    fps: float = Field(gt=0)
    long_side: int = Field(ge=16)


class AudioPlan(BaseModel):
    model_config = ConfigDict(extra="forbid")
    stream: int | None = Field(None, description="Position among the audio streams (None: the default one).")
    cut_start: bool = Field(description="The start is a boundary with the previous segment (else: the audio's start).")
    cut_end: bool = Field(description="The end is a boundary with the next segment (else: the audio's end).")
    search_s: float = Field(2.0, ge=0, le=30, description="How far from a boundary its cut may move to a quiet point.")
    overlap_s: float = Field(1.0, ge=0, le=30, description="Audio transcribed past each cut.")


class SegmentJob(BaseModel):
    """The job contract (docs/architecture.md, Contracts)."""

    model_config = ConfigDict(extra="forbid")
    url: str = Field(description="https:// (a presigned URL), http:// (loopback tests), or a path the worker can "
                     "read: a RunPod network volume (/runpod-volume/KEY), or a file in-process.")
    content: str = Field(description="What the media is (content hash, or URL and size): the cache key uses it, not the URL.")
    segment: int = Field(ge=0)
    start: float = Field(ge=0, description="Seconds from time zero where the segment starts.")
    end: float = Field(gt=0, description="Seconds from time zero where it ends.")
    time_base: str | None = Field(None, description="Of the video stream, 'num/den' (None: audio only).")
    origin_pts: int = Field(0, description="Pts of the video's first frame: time zero.")
    start_pts: int | None = Field(None, description="First video pts owned (a keyframe).")
    end_pts: int | None = Field(None, description="First video pts not owned (None: to the end).")
    frames: list[FramePlan] = Field(default_factory=list)
    audio: AudioPlan | None = None
    media: dict[str, Any] = Field(description="MediaInfo of the whole video (media/probe.py), as the client probed it.")
    settings: dict[str, Any] = Field(default_factory=dict, description="The client's settings named in JOB_SETTINGS.")


def load() -> None:
    """Both models, before the first job (the endpoint's start)."""
    from . import whisper, yolo

    yolo.load()
    whisper.load()


def handle(payload: dict[str, Any]) -> dict[str, Any]:
    from ..errors import MediaError
    from ..media.remote import Unreachable

    job = parse_input(SegmentJob, payload)
    try:
        return _handle(job)
    except Unreachable as exc:  # the network, not the job: worth another try
        raise ConnectionError(f"segment {job.segment + 1} ({job.start:.1f}-{job.end:.1f}s): {exc}") from None
    except MediaError as exc:
        raise WorkerInputError(f"segment {job.segment + 1} ({job.start:.1f}-{job.end:.1f}s): {exc}") from None


def _handle(job: SegmentJob) -> dict[str, Any]:
    from ..config import Settings
    from ..media.probe import MediaInfo

    try:
        from . import whisper, yolo

        # A job that names no model gets the endpoint's own (the weights its image baked).
        named = {"yolo_model": yolo.default_model(), "whisper_model": whisper.default_model()}
        named.update({k: v for k, v in job.settings.items() if k in JOB_SETTINGS})
        settings = Settings.model_validate(named)
        media = MediaInfo.model_validate(job.media)
    except ValueError as exc:
        raise WorkerInputError(f"input field 'settings' or 'media': {str(exc).splitlines()[0]}") from None
    from ..media.remote import sharing

    source = _source(job.url)
    started = time.perf_counter()
    timings: dict[str, float] = {}
    with sharing(job.url), ThreadPoolExecutor(1, thread_name_prefix="segment-audio") as pool:
        heard = pool.submit(_audio, job, source, media, settings, timings) if job.audio and media.has_audio else None
        frames, warnings, reader = _frames(job, source, media, settings, timings)
        transcript = heard.result() if heard is not None else None
    timings["total_s"] = time.perf_counter() - started
    return {"segment": job.segment, "frames": frames, "transcript": transcript, "warnings": warnings,
            "timings": {k: round(v, 4) for k, v in timings.items()}, **reader}


def _source(url: str):
    from ..segments.source import MediaURL, is_url

    if is_url(url):
        if url.lower().startswith("s3://"):
            raise WorkerInputError("input field 'url': an s3:// key; the client sends presigned https:// URLs")
        return MediaURL(url)
    path = Path(url)
    if not path.is_file():
        raise WorkerInputError(f"input field 'url': no such file {url!r}")
    return path


# -- frames and detections ----------------------------------------------------------------


def _frames(job: SegmentJob, source, media, settings, timings: dict) -> tuple[list[dict], list[str], dict]:
    from ..media.sampler import FrameSpec, Window, extract_frames
    from ..media.stats import ExtractStats
    from ..tasks import detect
    from . import yolo

    if not job.frames or not media.has_video or job.start_pts is None:
        return [], [], {}
    stats = ExtractStats()
    specs = [FrameSpec(f.kind, f.fps, f.long_side) for f in job.frames]
    window = Window(job.origin_pts, job.start_pts, job.end_pts)
    out: list[dict] = []
    batch: list = []
    detect_s = 0.0

    def run_batch() -> None:
        nonlocal detect_s, batch
        began = time.perf_counter()
        found = detect.parse_result(yolo.handle(detect.build_job(batch, settings)), batch, media)
        detect_s += time.perf_counter() - began
        for frame, detections in zip(batch, found):
            out.append({**_frame_facts(frame), "detections": detections.model_dump()})
        batch = []

    began = time.perf_counter()
    for frame in extract_frames(source, media, specs, settings.jpeg_quality, stats, window=window):
        if frame.kind == "caption":
            out.append({**_frame_facts(frame), "jpeg": base64.b64encode(frame.jpeg).decode("ascii"),
                        "signature": frame.signature.tolist() if frame.signature is not None else None})
        elif settings.detect:
            batch.append(frame)
            if len(batch) >= settings.yolo_batch:
                run_batch()
    if batch:
        run_batch()
    timings["detect_s"] = detect_s
    timings["decode_s"] = time.perf_counter() - began - detect_s
    return out, stats.warnings, {"decoded_frames": stats.decoded_frames}


def _frame_facts(frame) -> dict[str, Any]:
    return {"kind": frame.kind, "pts": frame.pts, "t": frame.t, "width": frame.width, "height": frame.height}


# -- audio and words ----------------------------------------------------------------------


def _audio(job: SegmentJob, source, media, settings, timings: dict) -> dict[str, Any]:
    import numpy as np

    from ..media.audio import SAMPLE_RATE, AudioChunk, AudioChunker
    from ..media.soundtrack import extract_audio

    plan = job.audio
    began = time.perf_counter()
    reach = plan.search_s + plan.overlap_s
    lo, hi = max(0.0, job.start - reach), min(media.duration_s, job.end + reach)
    # Every sample, silences whole: the pieces are joined back into one stretch below.
    pieces = list(extract_audio(source, media, 3600.0, None, plan.stream, start_s=lo, end_s=hi, keep_silence_s=None))
    if not pieces:
        return {"cut_start": job.start, "cut_end": job.end, "segments": [], "chunks": 0, "silent_chunks": 0,
                "languages": []}
    t0 = pieces[0].start
    samples = np.concatenate([p.samples for p in pieces])
    cut_start, quiet_start = _cut(samples, t0, job.start, plan.search_s) if plan.cut_start else (job.start, True)
    if plan.cut_end:
        cut_end, quiet_end = _cut(samples, t0, job.end, plan.search_s)
    else:
        cut_end, quiet_end = t0 + len(samples) / SAMPLE_RATE, True
    # Past a cut in a pause nothing of ours is heard: the audio tiles exactly there, as the
    # local chunker's does. Past a cut in speech, the overlap lets a word across it be heard whole.
    first = max(0, round((cut_start - (0.0 if quiet_start else plan.overlap_s) - t0) * SAMPLE_RATE))
    last = min(len(samples), round((cut_end + (0.0 if quiet_end else plan.overlap_s) - t0) * SAMPLE_RATE))
    chunker = AudioChunker(settings.audio_chunk_s, start=t0 + first / SAMPLE_RATE)
    chunks = chunker.feed(samples[first:last]) + chunker.flush()
    timings["audio_decode_s"] = time.perf_counter() - began
    around = AudioChunk(0, t0, samples)  # where words are voiced is judged on all of it, not a short chunk
    return {"cut_start": round(cut_start, 3), "cut_end": round(cut_end, 3),
            **_transcribe(chunks, settings, timings, around, (cut_start, cut_end))}


def _cut(samples, t0: float, at: float, search_s: float) -> tuple[float, bool]:
    """The middle of the quietest 200 ms within search_s of `at`, on the video clock's 20 ms
    grid (not the array's), so two workers with different lead-ins choose the same place;
    and whether it is a pause (below PAUSE_DBFS)."""
    from ..media.audio import FRAME_S, SAMPLE_RATE, AudioChunk, quietest_cut

    lo_t = (int((at - search_s) / FRAME_S)) * FRAME_S
    lo = max(0, round((lo_t - t0) * SAMPLE_RATE))
    hi = min(len(samples), round((at + search_s - t0) * SAMPLE_RATE))
    cut = lo + quietest_cut(samples[lo:hi], 0, hi - lo) if search_s > 0 and hi > lo else round((at - t0) * SAMPLE_RATE)
    around = samples[max(0, cut - SAMPLE_RATE // 10): cut + SAMPLE_RATE // 10]
    return round(t0 + cut / SAMPLE_RATE, 4), AudioChunk(0, 0.0, around).rms_dbfs < PAUSE_DBFS


def _transcribe(chunks, settings, timings: dict, around, cuts: tuple[float, float]) -> dict[str, Any]:
    """With speakers, each chunk's diarization too, on the video clock and within the cuts
    (speakers/timeline.py clusters every segment's evidence once per video, on the client)."""
    from ..speakers.timeline import ChunkSpeakers, reply_on_clock
    from ..tasks import transcribe
    from . import whisper

    worded = settings.model_copy(update={"word_timestamps": True})  # the client keeps words by their middles
    segments, languages, speakers, silent = [], [], [], 0
    began = time.perf_counter()
    for chunk in chunks:
        if chunk.is_silent:
            silent += 1
            continue
        got = transcribe.parse_result(whisper.handle(transcribe.build_job(chunk, settings)), chunk, worded, around)
        segments += [s.model_dump() for s in got.segments]
        languages.append([got.language, got.probability, chunk.duration])
        if got.speakers is not None:
            speakers.append(reply_on_clock(ChunkSpeakers(chunk.start, got.speakers, chunk.time_at), cuts))
    timings["transcribe_s"] = time.perf_counter() - began
    heard = {"segments": segments, "chunks": len(chunks), "silent_chunks": silent, "languages": languages}
    return {**heard, "speakers": speakers} if settings.speakers else heard


def time_base(text: str | None) -> Fraction | None:
    return Fraction(text) if text else None
