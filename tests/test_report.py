import html
import io
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


def test_cue_text_that_would_break_a_subtitle_file_is_made_safe():
    import srt as srt_library
    import webvtt

    hostile = "Line one\n\nafter a blank line --> an arrow <b>not bold</b> & more\r\nlast"
    cues = [(1.0, 2.0, hostile), (3.0, 4.0, "  "), (5.0, 6.0, "plain")]
    # Read back by parsers nobody here wrote: every cue survives, in order, with its words.
    parsed = list(srt_library.parse(subtitles(cues, "srt")))
    assert [c.content.splitlines() for c in parsed] == [
        ["Line one", "after a blank line -> an arrow <b>not bold</b> & more", "last"], ["plain"]]
    vtt = webvtt.from_buffer(io.StringIO(subtitles(cues, "vtt")))
    # WebVTT shows `&lt;b&gt;` as the text `<b>`; as `<b>` it would be markup, dropped.
    assert [html.unescape(c.text).splitlines() for c in vtt] == [
        ["Line one", "after a blank line -> an arrow <b>not bold</b> & more", "last"], ["plain"]]
    assert [(c.start, c.end) for c in vtt] == [("00:00:01.000", "00:00:02.000"), ("00:00:05.000", "00:00:06.000")]


def test_written_files_get_the_umask_permissions_not_0600(tmp_path):
    old = os.umask(0o027)
    try:
        import importlib

        import vidagent.files as files

        importlib.reload(files)  # the umask is read once, at import
        path = files.atomic_write(tmp_path / "report.json", "{}")
        assert oct(path.stat().st_mode & 0o777) == oct(0o640)
        secret = files.atomic_write(tmp_path / ".env", "KEY=1\n", mode=0o600)
        assert oct(secret.stat().st_mode & 0o777) == oct(0o600)
    finally:
        os.umask(old)
        importlib.reload(files)
