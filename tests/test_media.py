"""Probe, one-pass sampler and audio chunker on real clips made with ffmpeg."""

import io
import json
import math
import os
import signal
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from vidagent.errors import MediaError
from vidagent.media.audio import SAMPLE_RATE, AudioChunk, AudioChunker, quietest_cut
from vidagent.media.probe import probe
from vidagent.media import child, sampler
from vidagent.media.child import extract_frames_in_child
from vidagent.media.sampler import ExtractStats, FrameSpec, SampledFrame, extract, extract_frames, scaled_size

DETECT = FrameSpec("detect", 10, 640)
CAPTION = FrameSpec("caption", 1, 1024)


def sample_all(path, specs=(DETECT, CAPTION), audio_chunk_s=None):
    stats = ExtractStats()
    items = list(extract(path, probe(path), list(specs), audio_chunk_s, stats=stats))
    frames = {spec.kind: [i for i in items if isinstance(i, SampledFrame) and i.kind == spec.kind] for spec in specs}
    chunks = [i for i in items if isinstance(i, AudioChunk)]
    return frames, chunks, stats


def frame_times(path) -> list[float]:
    """Every frame's pts in seconds, as ffprobe sees them (independent of vidagent)."""
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "frame=pts_time",
         "-of", "json", str(path)],
        capture_output=True, text=True, check=True,
    ).stdout
    return sorted(float(f["pts_time"]) for f in json.loads(out)["frames"])


def expected_picks(times: list[float], fps: float) -> list[float]:
    start, picked, last = times[0], [], -1
    for t in times:
        bucket = math.floor((t - start) * fps + 1e-9)
        if bucket > last:
            picked.append(round(t - start, 3))
            last = bucket
    return picked


def test_probe_sample(sample):
    info = probe(sample)
    assert (info.width, info.height, info.rotation) == (320, 240, 0)
    assert info.duration_s == pytest.approx(10.0, abs=0.05)
    assert info.fps == 25 and info.video_codec == "h264"
    assert info.has_audio and info.audio_streams[0].codec == "aac"


def test_constant_rate_counts_and_timestamps(sample):
    frames, chunks, stats = sample_all(sample, audio_chunk_s=30)
    detect, caption = frames["detect"], frames["caption"]
    assert [round(f.t, 3) for f in detect] == expected_picks(frame_times(sample), 10)
    assert len(detect) == 100 and len(caption) == 10
    assert [round(f.t, 3) for f in caption] == [float(i) for i in range(10)]
    assert {(f.width, f.height) for f in detect} == {(320, 240)}  # never upscaled
    assert stats.decoded_frames + stats.skipped_frames == 250 and not stats.warnings
    assert stats.skipped_frames > 0  # x264's non-reference B-frames that no spec picks
    assert chunks[0].start == 0.0 and chunks[-1].end == pytest.approx(10.0, abs=0.05)  # the clock covers it all


def test_variable_frame_rate_uses_true_pts(clips):
    # 2 s at 5 fps, then 2 s at 25 fps: `index / fps` would be wrong in both halves.
    vfr = clips(
        "vfr.mkv",
        "-f", "lavfi", "-i", "testsrc2=size=160x120:rate=25:duration=4",
        "-vf", "select='lt(t,2)*not(mod(n,5))+gte(t,2)'", "-fps_mode", "vfr",
        "-c:v", "libx264", "-pix_fmt", "yuv420p",
    )
    times = frame_times(vfr)
    assert len(times) == 60
    frames, _, _ = sample_all(vfr)
    assert [round(f.t, 3) for f in frames["detect"]] == expected_picks(times, 10)
    assert [round(f.t, 3) for f in frames["detect"]][:4] == [0.0, 0.2, 0.4, 0.6]


@pytest.mark.parametrize("decode_threads", [1, 3])
def test_skipping_unpicked_frames_changes_no_picked_frame(clips, monkeypatch, decode_threads):
    # B-frame pyramid (half the frames are non-reference), variable frame rate, and two specs
    # whose intervals do not nest: every picked frame must come out bit for bit the same.
    clip = clips(
        "pyramid.mp4",
        "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30:duration=6",
        "-vf", "select='lt(t,3)+gte(t,3)*not(mod(n,4))'", "-fps_mode", "vfr",
        "-c:v", "libx264", "-x264-params", "bframes=3:b-pyramid=normal", "-pix_fmt", "yuv420p",
    )
    monkeypatch.setattr(sampler, "_thread_split", lambda cores: (decode_threads, 1))
    specs = [FrameSpec("detect", 7, 320), FrameSpec("caption", 1.5, 320)]
    info = probe(clip)
    every, skipping = ExtractStats(), ExtractStats()
    reference = [(f.kind, f.t, f.jpeg) for f in extract_frames(clip, info, specs, stats=every, skip_unpicked=False)]
    fast = [(f.kind, f.t, f.jpeg) for f in extract_frames(clip, info, specs, stats=skipping)]
    assert fast == reference
    assert every.skipped_frames == 0 and skipping.skipped_frames > 0
    assert skipping.decoded_frames + skipping.skipped_frames == every.decoded_frames


def test_rotation_is_applied_like_ffmpeg(clips, sample, tmp_path):
    rotated = clips("rot90.mp4", "-i", str(sample), "-c", "copy", "-metadata:s:v", "rotate=90")
    info = probe(rotated)
    assert (info.width, info.height, info.rotation) == (240, 320, 90)
    frames, _, _ = sample_all(rotated, specs=(FrameSpec("detect", 1, 320),))
    first = frames["detect"][0]
    assert (first.width, first.height) == (240, 320)
    # ffmpeg's own autorotation is the reference picture.
    reference = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(rotated), "-frames:v", "1", "-f", "rawvideo",
         "-pix_fmt", "rgb24", "-"], capture_output=True, check=True,
    ).stdout
    expected = np.frombuffer(reference, np.uint8).reshape(320, 240, 3).astype(int)
    ours = np.asarray(Image.open(io.BytesIO(first.jpeg)).convert("RGB")).astype(int)
    assert np.abs(ours - expected).mean() < 8  # JPEG noise only; a wrong turn is ~100


def test_nonzero_start_pts_starts_at_zero(clips):
    late = clips(
        "late.mp4",
        "-f", "lavfi", "-i", "testsrc2=size=160x120:rate=10:duration=3",
        "-f", "lavfi", "-i", "sine=frequency=440:duration=3",
        "-output_ts_offset", "5", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac",
    )
    info = probe(late)
    assert info.start_time_s == pytest.approx(5.0, abs=0.1)
    assert info.duration_s == pytest.approx(3.0, abs=0.1)
    frames, chunks, _ = sample_all(late, audio_chunk_s=10)
    assert frames["detect"][0].t == 0.0 and frames["caption"][0].t == 0.0
    assert frames["detect"][-1].t == pytest.approx(2.9, abs=0.01)
    assert chunks[0].start == pytest.approx(0.0, abs=0.05)
    assert chunks[-1].end == pytest.approx(3.0, abs=0.1)


def test_clip_shorter_than_one_interval_still_gives_a_frame(clips):
    short = clips(
        "short.mp4", "-f", "lavfi", "-i", "testsrc2=size=160x120:rate=25:duration=0.08",
        "-c:v", "libx264", "-pix_fmt", "yuv420p",
    )
    frames, _, _ = sample_all(short)
    assert len(frames["detect"]) == 1 and len(frames["caption"]) == 1
    assert frames["caption"][0].t == 0.0


def test_odd_sizes_scale_to_the_long_side(clips):
    odd = clips(
        "odd.mkv", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=10:duration=1", "-vf", "scale=321:241",
        "-c:v", "libx264", "-pix_fmt", "yuv444p",
    )
    info = probe(odd)
    assert (info.width, info.height) == (321, 241)
    frames, _, _ = sample_all(odd, specs=(FrameSpec("detect", 10, 100), FrameSpec("caption", 1, 1024)))
    assert {(f.width, f.height) for f in frames["detect"]} == {(100, 75)}
    assert {(f.width, f.height) for f in frames["caption"]} == {(321, 241)}
    image = Image.open(io.BytesIO(frames["detect"][0].jpeg))
    assert image.format == "JPEG" and image.size == (100, 75)


def test_scaled_size():
    assert scaled_size(1920, 1080, 640) == (640, 360)
    assert scaled_size(1080, 1920, 640) == (360, 640)
    assert scaled_size(320, 240, 640) == (320, 240)


def test_audio_is_16k_mono_downmix(clips):
    stereo = clips(
        "stereo.mkv",
        "-f", "lavfi", "-i", "testsrc2=size=160x120:rate=10:duration=2",
        "-f", "lavfi", "-i", "sine=frequency=1000:duration=2:sample_rate=48000",
        "-filter_complex", "[1:a]pan=stereo|c0=c0|c1=0*c0[a]", "-map", "0:v", "-map", "[a]",
        "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "pcm_s16le",
    )
    _, chunks, _ = sample_all(stereo, specs=(), audio_chunk_s=30)
    samples = np.concatenate([c.samples for c in chunks])
    assert samples.dtype == np.int16 and len(samples) == pytest.approx(2 * SAMPLE_RATE, abs=400)
    # The tone peaks at 1/8 of full scale in one channel; the mean of both channels at 1/16.
    # Taking either channel alone would give 1/8 or 0.
    assert np.abs(samples).max() / 32768 == pytest.approx(1 / 16, rel=0.1)
    spectrum = np.abs(np.fft.rfft(samples[:SAMPLE_RATE].astype(float)))
    assert np.argmax(spectrum) == pytest.approx(1000, abs=2)  # 1 s of samples: bin = Hz


def test_chunker_cuts_in_the_pause_and_loses_nothing():
    rng = np.random.default_rng(0)
    loud = lambda s: (rng.normal(0, 3000, int(s * SAMPLE_RATE))).astype(np.int16)  # noqa: E731
    quiet = lambda s: np.zeros(int(s * SAMPLE_RATE), np.int16)  # noqa: E731
    # Speech 0-9.2 s, pause 9.2-9.6 s, speech to 20 s: the cut near 10 s must land in the pause.
    audio = np.concatenate([loud(9.2), quiet(0.4), loud(10.4)])
    chunker = AudioChunker(target_s=10, start=0.0, search_s=2)
    chunks = []
    for piece in np.array_split(audio, 37):  # fed in uneven pieces, as a decoder does
        chunks += chunker.feed(piece)
    chunks += chunker.flush()
    assert 9.2 <= chunks[0].end <= 9.6
    assert np.array_equal(np.concatenate([c.samples for c in chunks]), audio)
    assert all(a.end == pytest.approx(b.start) for a, b in zip(chunks, chunks[1:]))
    assert [c.index for c in chunks] == list(range(len(chunks)))


def test_quietest_cut_prefers_target_on_digital_silence():
    silence = np.zeros(20 * SAMPLE_RATE, np.int16)
    cut = quietest_cut(silence, 8 * SAMPLE_RATE, 12 * SAMPLE_RATE)
    assert abs(cut - 10 * SAMPLE_RATE) < SAMPLE_RATE * 0.2


def test_silent_chunk_is_detected():
    assert AudioChunk(0, 0.0, np.zeros(16000, np.int16)).is_silent
    assert not AudioChunk(0, 0.0, np.full(16000, 3000, np.int16)).is_silent


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("empty.mp4", b"", "file is empty"),
        ("text.mp4", b"this is not a video\n" * 20, "not a readable media file"),
        ("random.mp4", bytes(np.random.default_rng(1).integers(0, 256, 4096, dtype=np.uint8)), "not a readable media file"),
    ],
)
def test_probe_rejects_non_media_with_the_file_name(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(MediaError) as err:
        probe(path)
    assert str(path) in str(err.value) and message in str(err.value)


def test_truncated_file_is_reported(sample, tmp_path):
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(sample.read_bytes()[: sample.stat().st_size // 2])
    frames, _, stats = sample_all(truncated)
    assert 0 < len(frames["detect"]) < 100
    assert any("truncated" in w for w in stats.warnings)


def live_children() -> set[int]:
    """Pids of this process's children that have not exited (Linux /proc)."""
    pids = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = open(f"/proc/{entry}/stat").read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == os.getpid() and fields[0] != "Z":
                pids.add(int(entry))
    return pids


def test_child_process_extraction_equals_in_process(sample):
    info = probe(sample)
    here, there = ExtractStats(), ExtractStats()
    expected = [(f.kind, f.t, f.jpeg) for f in extract_frames(sample, info, [DETECT, CAPTION], stats=here)]
    got = [(f.kind, f.t, f.jpeg) for f in extract_frames_in_child(sample, info, [DETECT, CAPTION], stats=there)]
    assert got == expected and there == here


def test_child_process_errors_arrive_as_themselves(sample, tmp_path):
    missing = tmp_path / "gone.mp4"
    with pytest.raises(MediaError, match="gone.mp4: no such file"):
        list(extract_frames_in_child(missing, probe(sample), [DETECT]))


def test_child_process_ends_with_its_consumer(sample):
    before = live_children()
    frames = extract_frames_in_child(sample, probe(sample), [DETECT])
    next(frames)
    assert len(live_children() - before) == 1
    frames.close()  # the consumer stops early (Ctrl-C, a failed video)
    assert live_children() == before


def test_a_killed_child_fails_its_video_with_a_reason(sample):
    before = live_children()
    frames = extract_frames_in_child(sample, probe(sample), [DETECT])
    next(frames)
    (pid,) = live_children() - before
    os.kill(pid, signal.SIGKILL)
    with pytest.raises(MediaError, match=r"sample\.mp4: the frame extraction process stopped .*exit code -9"):
        list(frames)
    assert live_children() == before


def test_prestarted_child_is_used_then_discarded(sample):
    before = live_children()
    child.prestart()
    spare = live_children() - before
    assert len(spare) == 1
    assert len(list(extract_frames_in_child(sample, probe(sample), [CAPTION]))) == 10
    assert live_children() == before  # the spare did the work and exited
    child.prestart()
    child._discard_spares()  # at exit: an unused spare ends without a word
    assert live_children() == before


def test_decoder_threads_follow_the_cpus_the_process_may_use():
    # A process pinned to one core (as `taskset -c 0` or a container's cpuset does) gets
    # one core's worth of threads, whatever the machine has.
    code = ("import os; os.sched_setaffinity(0, {min(os.sched_getaffinity(0))}); "
            "from vidagent.media.sampler import usable_cpus, _thread_split; print(usable_cpus(), _thread_split(usable_cpus()))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out[0] == "1" and " ".join(out[1:]) == "(1, 1)"
