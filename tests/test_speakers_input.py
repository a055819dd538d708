"""Speakers on awkward input: one voice, telephone audio in stereo, no audio, a worker
without diarization (RunPod's official one), a reply vidagent cannot read, a very long
file's clustering, and reports from before speakers. The offline encoder and Silero VAD
run for real on the committed conversation (tests/data/conversation.*)."""

import asyncio
import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
import srt
from runpod.serverless.utils.rp_validator import validate

from conftest import DATA, OFFLINE_CONFIG
from test_whisper_contract import schema as official_schema
from vidagent.config import Settings, load_settings
from vidagent.errors import JobFailed
from vidagent.pipeline import analyze_video
from vidagent.report.model import Report
from vidagent.report.reader import read_report
from vidagent.report.writers import transcript_subtitles
from vidagent.speakers import cluster as clustering
from vidagent.speakers.timeline import ChunkSpeakers, diarize_video
from vidagent.transports import Router
from vidagent.transports.local import LocalTransport
from vidagent.workers import diarize

CONVERSATION = DATA / "conversation.opus"
TRUTH = json.loads((DATA / "conversation.json").read_text())


def decoded(path: Path) -> np.ndarray:
    from faster_whisper.audio import decode_audio

    return decode_audio(str(path), sampling_rate=16000)  # what the whisper worker decodes to


def found_speakers(samples: np.ndarray, **counts) -> int:
    reply = diarize.diarize(samples, diarize.DiarizeOptions(), diarize.speech_regions(samples, []))
    return diarize_video([ChunkSpeakers(0.0, reply)], **counts).count


@pytest.fixture(scope="module")
def conversation() -> np.ndarray:
    return decoded(CONVERSATION)


def test_one_voice_gives_one_speaker(conversation):
    # Only the second voice's turns, with the silences between them: no second speaker appears.
    keep = np.zeros(len(conversation), bool)
    for turn in TRUTH["turns"]:
        if turn["speaker"] == "spk2":
            keep[int(turn["start"] * 16000):int(turn["end"] * 16000)] = True
    alone = np.where(keep, conversation, 0).astype(np.float32)
    assert found_speakers(alone) == 1


def test_telephone_audio_in_stereo_still_gives_both_speakers(conversation, tmp_path):
    phone = tmp_path / "phone.wav"  # 8 kHz, two channels, as a call recording comes
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(CONVERSATION), "-ar", "8000", "-ac", "2", str(phone)], check=True)
    assert found_speakers(decoded(phone)) == 2


def test_speaker_counts_given_are_honoured(conversation):
    assert found_speakers(conversation, num=3) == 3
    assert found_speakers(conversation, max_speakers=1) == 1
    assert found_speakers(conversation, min_speakers=2) == 2


def test_a_three_hour_video_links_a_bounded_number_of_pieces(conversation):
    # Three hours of this conversation, chunk after chunk: ~2,700 chunks' windows. Linkage
    # needs every pairwise distance, so at most MAX_LINKED pieces are linked and the rest
    # join their nearest voice. The two voices keep their labels across all the chunks and
    # hold most of the speech (windows where both sound at once, repeated 270 times
    # here, can add up to a minor cluster: a known limit, docs/benchmarks.md).
    reply = diarize.diarize(conversation, diarize.DiarizeOptions(), diarize.speech_regions(conversation, []))
    length = len(conversation) / 16000
    chunks = [ChunkSpeakers(k * length, reply) for k in range(int(3 * 3600 / length))]
    linked = []
    real_linked = clustering._linked
    clustering._linked = lambda unit, *args: linked.append(len(unit)) or real_linked(unit, *args)
    try:
        found = diarize_video(chunks)
    finally:
        clustering._linked = real_linked
    assert linked and max(linked) <= clustering.MAX_LINKED
    assert found.turns[-1].end > 3 * 3600 - length
    speech = {}
    for turn in found.turns:
        speech[turn.speaker] = speech.get(turn.speaker, 0.0) + turn.end - turn.start
    top_two = sorted(speech.values())[-2:]
    assert sum(top_two) >= 0.8 * sum(speech.values()), speech
    first = {t.speaker for t in found.turns if t.end < length}
    last = {t.speaker for t in found.turns if t.start > 3 * 3600 - 2 * length}
    assert first == last  # the same labels at the end as in the first chunk


class OfficialWhisper:
    """A stand-in for RunPod's official worker-faster_whisper (its cloud is not reachable):
    its input validation, RunPod's own rp_validator over the published schema, in front of
    our worker, whose reply without `diarize` has no speakers, as the official one's."""

    def __init__(self):
        self.local = LocalTransport()
        self.name = "local"
        self.refused = 0

    def concurrency(self, endpoint):
        return 2

    def label(self, endpoint):
        return "local"

    max_payload_bytes = None

    async def submit(self, endpoint, payload):
        checked = validate(payload, official_schema())
        if "errors" in checked:
            self.refused += 1
            raise JobFailed(f"{endpoint} job failed: {checked['errors']}")
        return await self.local.submit(endpoint, payload)

    async def aclose(self):
        return await self.local.aclose()


@pytest.mark.slow
def test_the_official_worker_keeps_the_transcript_and_says_why_no_speakers():
    settings = load_settings(OFFLINE_CONFIG, {"speakers": True, "detect": False, "cache": False, "audio_chunk_s": 20})
    official = OfficialWhisper()
    report = asyncio.run(analyze_video(CONVERSATION, settings, Router({"whisper": official})))
    assert official.refused == 1  # asked once, then the other chunks are sent without speakers
    assert report.status == "partial" and "speakers" in report.failed_stages
    assert report.transcript.segments and not report.speakers
    line = report.failed_stages["speakers"]
    assert "official worker-faster_whisper has no diarization" in line and "endpoints/whisper" in line
    assert "\n" not in line


def test_an_unreadable_speaker_reply_leaves_the_transcript_in_a_partial_report():
    from vidagent.media.probe import probe
    from vidagent.media.stats import ExtractStats
    from vidagent.pipeline.merge import merge
    from vidagent.pipeline.run import Collected
    from vidagent.report.model import Segment

    got = Collected(audio_chunks=1, segments=[Segment(start=1.0, end=2.0, text="hello")])
    got.speaker_chunks.append(ChunkSpeakers(0.0, {"windows": [[0, 1]], "embeddings": {"dtype": "float16", "dim": 3,
                                                                                      "data": "AAAA"}}))
    report = merge(probe(CONVERSATION), Settings(speakers=True), got, ExtractStats(), {}, [0], {})
    assert report.status == "partial" and report.transcript.segments[0].text == "hello"
    assert "cannot read" in report.failed_stages["speakers"]


def test_a_video_without_audio_warns_and_has_no_speakers(tmp_path):
    silent = tmp_path / "picture.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=160x120:rate=10:duration=2",
                    "-c:v", "libx264", str(silent)], check=True)
    settings = load_settings(OFFLINE_CONFIG, {"speakers": True, "detect": False, "cache": False})
    report = asyncio.run(analyze_video(silent, settings, Router({"whisper": LocalTransport()})))
    assert report.status == "complete" and report.speakers == [] and "no audio stream: the transcript is empty" in report.warnings


def test_a_report_from_before_speakers_reads_and_renders(tmp_path):
    old = json.loads(Report(vidagent_version="0.1.0", created_at="2026-11-01T00:00:00+00:00",
                            media=_media(), settings={}).model_dump_json())
    old.update(schema_version="1.3")
    for key in ("speakers", "speaker_turns"):
        del old[key]
    old["transcript"]["segments"] = [{"start": 1.0, "end": 2.5, "text": "Hello there."}]
    path = tmp_path / "report.json"
    path.write_text(json.dumps(old))
    report = read_report(path)
    assert report.speakers == [] and report.transcript.segments[0].speaker is None
    [cue] = srt.parse(transcript_subtitles(report, "srt"))
    assert cue.content == "Hello there."  # no speaker prefix where none is known


def _media():
    from vidagent.media.probe import probe

    return probe(CONVERSATION)


def test_a_diarization_that_breaks_on_the_worker_keeps_the_transcript(monkeypatch):
    import base64

    from vidagent.pipeline.merge import merge
    from vidagent.pipeline.run import Collected
    from vidagent.media.stats import ExtractStats
    from vidagent.speakers.timeline import ChunkSpeakers as Chunk
    from vidagent.workers import voice_encoder, whisper

    def missing():
        raise LookupError("the offline speaker model needs the PyPI package resemblyzer")

    monkeypatch.setattr(voice_encoder, "weights_path", missing)
    monkeypatch.setattr(voice_encoder, "_model", None)
    out = whisper.handle({"audio_base64": base64.b64encode(CONVERSATION.read_bytes()).decode(),
                          "model": "offline:tiny.en", "language": "en", "word_timestamps": True,
                          "enable_vad": True, "diarize": True})
    assert out["segments"] and "resemblyzer" in out["diarization"]["error"]
    got = Collected(audio_chunks=1)
    got.speaker_chunks.append(Chunk(0.0, out["diarization"]))
    from vidagent.report.model import Segment

    got.segments = [Segment(start=1.0, end=2.0, text="kept")]
    report = merge(_media(), Settings(speakers=True), got, ExtractStats(), {}, [0], {})
    assert report.status == "partial" and report.transcript.segments[0].text == "kept"
    assert "resemblyzer" in report.failed_stages["speakers"]
