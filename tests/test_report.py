import os

import pytest

from vidagent.files import atomic_write
from vidagent.timefmt import clock, subtitles


def test_clock():
    assert clock(0) == "00:00:00.000"
    assert clock(3661.2345) == "01:01:01.234"
    assert clock(59.9996, ",") == "00:01:00,000"
    assert clock(-1) == "00:00:00.000"


def test_srt_and_vtt_documents():
    cues = [(1.5, 3.25, " Hello --> world "), (4.0, 3.0, "end before start")]
    srt = subtitles(cues, "srt")
    assert srt == (
        "1\n00:00:01,500 --> 00:00:03,250\nHello -> world\n\n"
        "2\n00:00:04,000 --> 00:00:04,001\nend before start\n\n"
    )
    vtt = subtitles(cues, "vtt")
    assert vtt.startswith("WEBVTT\n\n00:00:01.500 --> 00:00:03.250\nHello -> world\n")
    with pytest.raises(ValueError):
        subtitles(cues, "ass")


def test_atomic_write_leaves_old_file_when_rendering_fails(tmp_path):
    target = tmp_path / "report.json"
    atomic_write(target, "old")

    with pytest.raises(TypeError):
        atomic_write(target, 123)  # not text: the write fails midway
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["report.json"]  # no temp file left behind
