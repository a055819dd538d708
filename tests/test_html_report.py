"""The HTML report: written by analyze, re-rendered by `vidagent report`, loaded in Chromium.

The offline YOLO has random weights and finds nothing in the sample, so one test adds a
hand-made walking person to the analysed report.json and re-renders it: that is the path
`vidagent report` exists for, and it puts tracks, boxes and events on the page.
The browser screenshot is kept in the test artifacts folder (conftest.artifacts) as report.png.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from markupsafe import escape  # what the page's Jinja2 template escapes with

from vidagent.report.html import write_index_html

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "tests" / "data" / "sample.mp4"
CHROMIUM = Path("/usr/bin/chromium")
REMOTE = re.compile(r"""\b(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", re.IGNORECASE)

pytestmark = pytest.mark.slow


def person_walking() -> list[dict]:
    """A person crossing the 320x240 sample left to right, one box per detection frame."""
    frames = []
    for i in range(20):
        t = round(i * 0.5, 3)
        x = 20 + i * 12
        frames.append({"t": t, "objects": [
            {"label": "person", "class_id": 0, "confidence": round(0.5 + i / 50, 3), "box": [x, 60, x + 50, 200]}]})
    return frames


@pytest.fixture(scope="module")
def analysed(analysed_sample):
    """The folder of the sample analysed once (offline models, every default file; conftest)."""
    return analysed_sample.folder


@pytest.fixture(scope="module")
def rerendered(analysed, tmp_path_factory, run_report):
    """The analysed report plus a walking person and a scene caption, re-rendered."""
    folder = tmp_path_factory.mktemp("rerendered")
    report = json.loads((analysed / "report.json").read_text())
    report["detections"] = person_walking()
    report["captions"] = [{"t": 4.0, "reason": "scene", "text": "Colour bars <b>& a grey bar</b>", "structured": True}]
    report["tracks"], report["events"], report["object_counts"] = [], [], {}  # as a 1.1 report: recomputed
    (folder / "report.json").write_text(json.dumps(report))
    proc = run_report(folder / "report.json", "--format", "html,events_vtt")
    assert proc.returncode == 0, proc.stderr
    return folder


@pytest.fixture(scope="module")
def run_report():
    def run(*args) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "vidagent", "report", *map(str, args)],
                              capture_output=True, text=True, timeout=120)
    return run


def chromium(page: Path, profile: Path, *flags: str) -> subprocess.CompletedProcess:
    if not CHROMIUM.exists():
        pytest.skip("no /usr/bin/chromium (apt-get install chromium, or `make system-deps` as root)")
    return subprocess.run(
        [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0", *flags, page.as_uri()],
        capture_output=True, text=True, timeout=60,
    )


def test_analyze_writes_a_self_contained_page(analysed):
    html = (analysed / "report.html").read_text()
    report = json.loads((analysed / "report.json").read_text())
    assert str(escape(report["media"]["file_name"])) in html and 'id="timeline"' in html
    assert html.count("data:image/jpeg;base64,") >= 10  # coverage frames decoded from the video
    segments = report["transcript"]["segments"]
    assert segments and all(str(escape(s["text"])) in html for s in segments)  # the transcript
    assert not REMOTE.search(html), REMOTE.search(html).group(0)


def test_report_command_rerenders_tracks_events_and_escapes(rerendered):
    html = (rerendered / "report.html").read_text()
    report_json = json.loads((rerendered / "report.json").read_text())
    assert report_json["tracks"] == []  # re-rendering never rewrites the JSON it read
    assert "person (1)" in html  # one lane, one distinct person
    assert "1 person" in html  # object_counts in the header
    assert re.search(r'<rect x="[\d.]+" y="60(\.0)?"', html)  # its box drawn over a thumbnail
    assert "person appears 00:00–00:09" in html
    # Caption text is escaped in the page and in the script data, never live markup.
    assert "<b>& a grey bar</b>" not in html
    assert "Colour bars &lt;b&gt;&amp; a grey bar&lt;/b&gt;" in html
    vtt = (rerendered / "events.vtt").read_text()
    assert vtt.startswith("WEBVTT") and "person appears 00:00–00:09" in vtt and "Colour bars" in vtt
    assert not REMOTE.search(html)


def test_page_runs_in_chromium_without_errors(rerendered, tmp_path, artifacts):
    page = rerendered / "report.html"
    dom = chromium(page, tmp_path / "profile-dom", "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert 'data-ready="1"' in dom.stdout, "the page script did not run to the end"
    assert "Uncaught" not in dom.stderr and ":CONSOLE(" not in dom.stderr, dom.stderr[-2000:]
    assert dom.stdout.count('class="bar"') >= 3  # speech, caption, track bars drawn by the script
    assert 'id="playhead"' in dom.stdout
    assert dom.stdout.count("<img ") >= 10  # gallery plus the moment view

    shot = tmp_path / "report.png"
    run = chromium(page, tmp_path / "profile-shot", f"--screenshot={shot}", "--window-size=1280,1600")
    assert run.returncode == 0, run.stderr[-2000:]
    assert shot.exists() and shot.stat().st_size > 20_000  # a blank page is a few kB
    shutil.copy(shot, artifacts / "report.png")


def test_missing_video_renders_without_thumbnails(rerendered, run_report, tmp_path):
    proc = run_report(rerendered / "report.json", "--video", tmp_path / "gone.mp4", "--out", tmp_path)
    assert proc.returncode == 0, proc.stderr
    html = (tmp_path / "report.html").read_text()
    assert "no thumbnails" in html and "data:image" not in html
    assert 'id="timeline"' in html


def test_report_command_refuses_unknown_formats(rerendered, run_report):
    proc = run_report(rerendered / "report.json", "--format", "pdf")
    assert proc.returncode == 2 and "unknown format pdf" in proc.stderr


def test_index_page_links_each_video(tmp_path):
    # Its own folder: the shared analysis's index.html is read by other tests.
    folder = tmp_path / "sample"
    folder.mkdir()
    (folder / "report.html").write_text("<!DOCTYPE html>")  # a written report: the index links it
    rows = [
        {"input": str(SAMPLE), "status": "done", "folder": str(folder), "duration_s": 10.0,
         "detection_frames": 20, "segments": 1, "captions": 0, "warnings": ["the <audio> is quiet"], "error": None},
        {"input": "broken.mp4", "status": "failed", "folder": None, "duration_s": None, "detection_frames": None,
         "segments": None, "captions": None, "warnings": [], "error": "broken.mp4: not a readable media file"},
    ]
    out = tmp_path
    index = write_index_html(rows, out)
    html = index.read_text()
    assert index == out / "index.html"
    assert 'href="sample/report.html"' in html
    assert "not a readable media file" in html and "the &lt;audio&gt; is quiet" in html


def test_thumbnails_decode_forward_through_a_long_gop(tmp_path):
    """One keyframe in 12 s: every seek lands far before its target and must decode on."""
    from vidagent.media.probe import probe
    from vidagent.report.html import grab_frames
    from vidagent.report.model import Report

    clip = tmp_path / "long_gop.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=25:duration=12",
                    "-g", "400", "-pix_fmt", "yuv420p", str(clip)], check=True, timeout=60)
    report = Report(vidagent_version="test", created_at="2026-01-01T00:00:00+00:00", media=probe(clip), settings={})
    found = grab_frames(clip, report, [0.5, 7.0, 11.9, 20.0])
    assert sorted(found) == [0.5, 7.0, 11.9, 20.0]  # past the end: the last frame
    assert all(jpeg.startswith(b"\xff\xd8") and (w, h) == (320, 240) for jpeg, w, h in found.values())
    assert found[0.5] != found[7.0]
