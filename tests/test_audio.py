"""Audio on its own terms: audio-only files, several audio streams, true packet times,
the speech detector that picks a stream. Clips are made with ffmpeg (and PyAV, for a
stream with a hole in its timeline) from the bundled sample's speech, and with numpy
(tests/sounds.py: tones, music, noise, speech as a room and a phone line hear it)."""

import json
import subprocess
import sys

import av
import numpy as np
import pytest

from vidagent.media.audio import SAMPLE_RATE
from vidagent.media.probe import probe
from vidagent.media.soundtrack import choose_streams, extract_audio
from vidagent.media.speech import SPEECH_S, SPEECH_SCORE, speech_score, voice_activity_s

from conftest import DATA
from sounds import decoded, music, noise, recorded, tone, two_streams

SPEECH_AT = 1.5  # tests/data/sample.json: the speech starts here and ends at 8.0 s


def onset(chunks, threshold_dbfs=-40.0) -> float:
    """First time the audio gets loud, from the chunks' own start times."""
    for chunk in chunks:
        frames = chunk.samples[: len(chunk.samples) // 160 * 160].reshape(-1, 160).astype(np.float32) / 32768
        loud = np.nonzero(10 * np.log10(np.mean(frames ** 2, axis=1) + 1e-12) > threshold_dbfs)[0]
        if len(loud):
            return chunk.time_at(loud[0] * 160 / SAMPLE_RATE)
    raise AssertionError("no speech found")


@pytest.mark.parametrize("name,codec", [("speech.m4a", "aac"), ("speech.mp3", "libmp3lame"),
                                        ("speech.wav", "pcm_s16le"), ("speech.flac", "flac"),
                                        ("speech.ogg", "libvorbis"), ("speech.opus", "libopus")])
def test_audio_only_files_are_probed_and_decoded_at_true_times(clips, sample, name, codec):
    path = clips(name, "-i", str(sample), "-vn", "-c:a", codec)
    info = probe(path)
    assert not info.has_video and info.width is None and info.has_audio
    assert info.duration_s == pytest.approx(10.0, abs=0.1)
    chunks = list(extract_audio(path, info, 60.0))
    assert chunks[0].start == 0.0 and chunks[-1].end == pytest.approx(info.duration_s, abs=0.1)
    assert onset(chunks) == pytest.approx(SPEECH_AT, abs=0.1)


def two_track(clips, sample, name: str, first: list[str]) -> "Path":
    """A video whose first audio stream is `first` (an lavfi source) and second the speech."""
    return clips(name, "-i", str(sample), "-f", "lavfi", "-i", *first,
                 "-map", "0:v", "-map", "1:a", "-map", "0:a", "-c:v", "copy", "-c:a", "aac",
                 "-metadata:s:a:0", "title=Music and effects", "-metadata:s:a:1", "language=eng",
                 "-disposition:a:0", "default", "-disposition:a:1", "0", "-shortest")


@pytest.mark.parametrize("first", [["anullsrc=r=44100:cl=stereo"], ["sine=frequency=440:r=44100"],
                                   ["anoisesrc=color=pink:amplitude=0.2:r=44100"]])
def test_auto_picks_the_stream_that_carries_speech_and_names_the_skipped_one(clips, sample, first):
    path = two_track(clips, sample, f"two-tracks-{first[0].split('=')[0]}.mkv", first)
    info = probe(path)
    assert len(info.audio_streams) == 2 and info.audio_streams[0].default
    choice = choose_streams(path, info, "auto")
    assert choice.positions == [1]
    assert len(choice.warnings) == 1
    assert "audio stream 1 (eng)" in choice.warnings[0] and 'audio stream 0 ("Music and effects")' in choice.warnings[0]
    assert choose_streams(path, info, "all").positions == [0, 1]
    assert choose_streams(path, info, 0).positions == [0]


def test_a_stream_number_the_file_does_not_have_is_one_clear_error(clips, sample):
    from vidagent.errors import MediaError

    path = two_track(clips, sample, "two-tracks-anullsrc.mkv", ["anullsrc=r=44100:cl=stereo"])
    with pytest.raises(MediaError, match=r"audio_stream 5: the file has 2 audio stream\(s\), numbered 0-1"):
        choose_streams(path, probe(path), 5)


VOICES = DATA / "voices.opus"  # scripts/make_sentences.py --minutes 2: five voices, 5-40 s apart
FIRST_MINUTE_S = 60.0


@pytest.fixture(scope="module")
def voices() -> np.ndarray:
    """The first minute of the many-voice recording: three sentences, long silences."""
    return decoded(VOICES)[: int(FIRST_MINUTE_S * SAMPLE_RATE)]


@pytest.fixture(scope="module")
def sounds_of(voices):
    n = len(voices) / SAMPLE_RATE
    made = {"tone": tone(n), "music": music(n), "noise": noise(n), "silence": np.zeros_like(voices),
            "synthetic speech": voices, "recorded speech": recorded(voices)}
    return made.__getitem__


def spoken_s(until_s: float) -> float:
    return sum(s["end"] - s["start"] for s in json.loads(VOICES.with_suffix(".json").read_text())["sentences"]
               if s["end"] <= until_s)


@pytest.mark.parametrize("name", ["tone", "music", "noise", "silence"])
def test_voice_activity_hears_nothing_in_tones_music_noise_or_silence(sounds_of, name):
    assert voice_activity_s(sounds_of(name)) < SPEECH_S


def test_voice_activity_hears_synthetic_and_recorded_speech(sounds_of):
    truth = spoken_s(FIRST_MINUTE_S)
    # Tolerances: espeak's voices are heard almost whole; reverberation, the phone band and
    # a noise floor 20 dB down hide the quiet ends of words, so a third is enough there.
    assert voice_activity_s(sounds_of("synthetic speech")) == pytest.approx(truth, rel=0.25)
    assert truth / 3 <= voice_activity_s(sounds_of("recorded speech")) <= truth * 1.25


@pytest.mark.parametrize("commentary", ["synthetic speech", "recorded speech"])
@pytest.mark.parametrize("default", ["tone", "music", "noise"])
def test_auto_transcribes_the_commentary_not_the_music_and_effects(sounds_of, tmp_path, default, commentary):
    path = two_streams(tmp_path / "two.mkv", sounds_of(default), sounds_of(commentary))
    choice = choose_streams(path, probe(path), "auto")
    assert choice.positions == [1], choice.warnings
    assert choice.warnings == ['audio: transcribing audio stream 1 ("Commentary"), which carries speech; '
                               'skipped audio stream 0 ("Music and effects") (choose with --audio-stream N or all)']


def test_with_speech_on_no_stream_auto_keeps_the_default_and_says_so(sounds_of, tmp_path):
    path = two_streams(tmp_path / "two.mkv", sounds_of("music"), sounds_of("noise"))
    choice = choose_streams(path, probe(path), "auto")
    assert choice.positions == [0]
    assert "which is the default (no stream sounds like speech)" in choice.warnings[0]


def test_without_faster_whisper_the_loudness_score_chooses_and_the_warning_says_what_to_install(
        clips, sample, monkeypatch):
    monkeypatch.setitem(sys.modules, "faster_whisper.vad", None)  # a light install: importing it fails
    path = two_track(clips, sample, "two-tracks-sine.mkv", ["sine=frequency=440:r=44100"])
    choice = choose_streams(path, probe(path), "auto")
    assert choice.positions == [1]
    assert choice.warnings[0].endswith("judged by its loudness pattern "
                                       "(pip install 'vidagent[whisper]' to use its voice-activity model)")


@pytest.mark.slow
def test_a_steady_tone_by_default_and_a_synthetic_commentary_the_commentary_is_transcribed(
        run_cli, sounds_of, tmp_path):
    # The reported file: default stream a steady tone, the second a clear synthetic voice
    # speaking now and then. The loudness score averaged the commentary's silences in and
    # transcribed the tone: an empty transcript.
    from conftest import OFFLINE_CONFIG

    sys.path.insert(0, str(DATA.parents[1] / "scripts"))
    from speech_timeline import Spoken, word_error_rate

    path = two_streams(tmp_path / "film.mkv", sounds_of("tone"), sounds_of("synthetic speech"))
    out = tmp_path / "out"
    result = run_cli("analyze", path, "--out", out, "--config", OFFLINE_CONFIG, "--no-detect", "--no-cache",
                     "--format", "json")
    assert result.code == 0, result
    report = json.loads((out / "film" / "report.json").read_text())
    segments = [(s["start"], s["end"], s["text"]) for s in report["transcript"]["segments"]]
    truth = [Spoken(s["text"], s["start"], s["end"]) for s in
             json.loads(VOICES.with_suffix(".json").read_text())["sentences"] if s["end"] <= FIRST_MINUTE_S]
    assert report["transcript"]["streams"] == [probe(path).audio_streams[1].index]
    assert word_error_rate(segments, truth) <= 0.5, segments  # tiny.en mishears some espeak voices
    assert 'transcribing audio stream 1 ("Commentary"), which carries speech' in result.stderr


def test_speech_score_separates_speech_from_silence_tone_and_noise(clips, sample):
    info = probe(sample)
    speech = np.concatenate([c.samples for c in extract_audio(sample, info, 60.0)])
    t = np.arange(len(speech)) / SAMPLE_RATE
    tone = (0.3 * np.sin(2 * np.pi * 440 * t) * 32767).astype(np.int16)
    noise = (np.random.default_rng(0).normal(0, 0.1, len(speech)) * 32767).astype(np.int16)
    assert speech_score(speech) >= SPEECH_SCORE
    for other in (np.zeros_like(speech), tone, noise):
        assert speech_score(other) < SPEECH_SCORE


def test_a_hole_in_the_audio_timeline_shifts_nothing_after_it(sample, tmp_path):
    # Packets 0.5-1.0 s are missing (as when a damaged packet is skipped); the speech at
    # 1.5 s must still be heard at 1.5 s, and the audio still last as long as the file.
    holed = tmp_path / "holed.mkv"
    with av.open(str(sample)) as src, av.open(str(holed), "w") as dst:
        out = dst.add_stream("pcm_s16le", rate=16000, layout="mono")
        resampler = av.AudioResampler(format="s16", layout="mono", rate=16000)
        for frame in src.decode(src.streams.audio[0]):
            for piece in resampler.resample(frame):
                for packet in out.encode(piece):
                    if not 0.5 <= float(packet.pts * packet.time_base) < 1.0:
                        dst.mux(packet)
        for packet in out.encode(None):
            dst.mux(packet)
    info = probe(holed)
    chunks = list(extract_audio(holed, info, 60.0))
    assert onset(chunks) == pytest.approx(SPEECH_AT, abs=0.05)
    assert chunks[-1].end == pytest.approx(info.duration_s, abs=0.05)


def ffprobe_audio(path) -> list[dict]:
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "a", "-show_streams", "-of", "json",
                          str(path)], capture_output=True, text=True, check=True).stdout
    return json.loads(out)["streams"]


@pytest.mark.slow
def test_all_streams_are_transcribed_and_each_segment_says_which(run_cli, clips, sample, tmp_path):
    from conftest import OFFLINE_CONFIG

    # Stream 0 speaks at 1.5 s, stream 1 (a second language track, here the same words) at 4.5 s.
    path = clips("two-speakers.mkv", "-i", str(sample), "-i", str(sample), "-filter_complex",
                 "[1:a]adelay=3000:all=1,apad,atrim=0:10[late]", "-map", "0:v", "-map", "0:a", "-map", "[late]",
                 "-c:v", "copy", "-c:a", "aac")
    out = tmp_path / "out"
    result = run_cli("analyze", path, "--out", out, "--config", OFFLINE_CONFIG, "--no-detect", "--no-cache",
                     "--audio-stream", "all", "--format", "json")
    assert result.code == 0, result
    transcript = json.loads((out / "two-speakers" / "report.json").read_text())["transcript"]
    streams = [s["index"] for s in probe(path).model_dump()["audio_streams"]]
    assert transcript["streams"] == streams
    first = {s["stream"]: s["start"] for s in sorted(transcript["segments"], key=lambda s: s["start"])[::-1]}
    assert set(first) == set(streams)
    assert first[streams[0]] == pytest.approx(SPEECH_AT, abs=0.6)
    assert first[streams[1]] == pytest.approx(SPEECH_AT + 3.0, abs=0.6)
