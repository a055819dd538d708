"""The player in report.html and on the search page, driven in the system's headless
Chromium through Playwright (its own browser is never downloaded); then, without a
browser, the proxy, the links and the warning.

Pages come from one analysed sample (conftest.analysed_sample), re-rendered by
`vidagent report` into other folders: the path the relative link must survive. The
report is given two transcript lines (the sample's one sentence split at a word), a
caption and a summary citation, so there is something to click and to follow.
Tolerances: a seek lands within SEEK_TOL_S of its target (the player starts playing at
once after a click); the playhead is drawn within PLAYHEAD_TOL_S of the media's time.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote, urlparse

import numpy as np
import pytest

from text_match import heard_truth_word
from vidagent.media.probe import probe

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "tests" / "data" / "sample.mp4"
CHROMIUM = Path("/usr/bin/chromium")
SEEK_TOL_S = 0.5
PLAYHEAD_TOL_S = 0.3
WAIT_MS = 20_000

slow = pytest.mark.slow  # a model run (the shared analysed sample) or a browser


def vidagent(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vidagent", *map(str, args)], capture_output=True, text=True, timeout=300)


def with_lines(report: dict) -> dict:
    """Two transcript lines (the one sentence split at its middle word), a caption, a cited
    summary and a walking person."""
    [segment] = [s for s in report["transcript"]["segments"] if s["text"].strip()][:1]
    words = segment["text"].split()
    middle = round((segment["start"] + segment["end"]) / 2, 2)
    report["transcript"]["segments"] = [
        {**segment, "end": middle, "text": " ".join(words[: len(words) // 2]), "words": None},
        {**segment, "start": middle, "text": " ".join(words[len(words) // 2:]), "words": None},
    ]
    report["captions"] = [{"t": 4.0, "reason": "scene", "text": "Colour bars and a grey bar", "structured": True}]
    report["detections"] = [  # a person crossing the frame, so there is a track and an event to click
        {"t": round(i * 0.5, 3), "objects": [{"label": "person", "class_id": 0, "confidence": 0.8,
                                               "box": [20 + i * 12, 60, 70 + i * 12, 200]}]} for i in range(20)]
    report["tracks"], report["events"], report["object_counts"] = [], [], {}  # recomputed when read
    report["summary_sentences"] = [{"text": "Someone speaks over colour bars.", "times": [6.5]}]
    report["summary"] = "Someone speaks over colour bars. [00:06]"
    return report


def render(report: dict, folder: Path, *args) -> subprocess.CompletedProcess:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "report.json").write_text(json.dumps(report))
    done = vidagent("report", folder / "report.json", "--format", "html", *args)
    assert done.returncode == 0, done.stderr
    return done


@pytest.fixture(scope="module")
def sample_report(analysed_sample) -> dict:
    return with_lines(json.loads(json.dumps(analysed_sample.report)))


@pytest.fixture(scope="module")
def video_page(sample_report, tmp_path_factory) -> Path:
    """The sample's page two folders away from the video, as `vidagent report` writes it."""
    folder = tmp_path_factory.mktemp("pages") / "deep" / "sample"
    render(sample_report, folder)
    return folder / "report.html"


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.skip("no /usr/bin/chromium (apt-get install chromium, or `make system-deps` as root)")
    playwright = pytest.importorskip("playwright.sync_api")
    with playwright.sync_playwright() as driver:
        chromium = driver.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu"])
        yield chromium
        chromium.close()


class Page:
    """A page loaded over file://, with every request it made and every error it printed."""

    def __init__(self, browser, path: Path, fragment: str = ""):
        self.page = browser.new_page(viewport={"width": 1280, "height": 900})
        self.requests: list[str] = []
        self.errors: list[str] = []
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.goto(path.as_uri() + fragment)
        self.page.wait_for_selector("body[data-ready='1']", timeout=WAIT_MS)

    def js(self, expression: str):
        return self.page.evaluate(expression)

    def wait(self, expression: str):
        self.page.wait_for_function(expression, timeout=WAIT_MS)

    def media(self) -> dict:
        return self.js("""(() => { const v = document.getElementById('player');
            return {t: v.currentTime, paused: v.paused, rate: v.playbackRate, ready: v.readyState,
                    seeking: v.seeking, src: v.currentSrc, error: v.error && v.error.code}; })()""")

    def settled(self):
        self.wait("(() => { const v = document.getElementById('player'); return v.readyState >= 2 && !v.seeking; })()")

    def close(self):
        self.page.close()


def files_requested(page: Page) -> set[Path]:
    """Every request was for a local file (no host, no network): the paths."""
    remote = [u for u in page.requests if urlparse(u).scheme not in ("file", "data", "blob")]
    assert not remote, remote
    return {Path(unquote(urlparse(u).path)) for u in page.requests if u.startswith("file:")}


@slow
def test_clicks_seek_the_video_and_the_page_follows_it(browser, video_page, sample_report, artifacts):
    page = Page(browser, video_page)
    html = video_page.read_text()
    assert 'src="../../../' in html  # relative to the page's folder, not an absolute path
    page.settled()
    video = Path(sample_report["media"]["path"]).resolve()  # the shared analysis's oddly named copy
    assert Path(unquote(urlparse(page.media()["src"]).path)) == video

    page.page.click("#summary a.cite")  # the summary's [00:06] citation
    state = page.media()
    assert 6.5 <= state["t"] < 6.5 + SEEK_TOL_S and not state["paused"]
    assert page.page.url.endswith("report.html")  # played here: the address did not change

    first, second = sample_report["transcript"]["segments"]
    page.page.click("#transcript p[data-start] >> nth=0", position={"x": 200, "y": 8})  # the line's words, not its time
    assert first["start"] <= page.media()["t"] < first["start"] + SEEK_TOL_S
    page.wait(f"document.getElementById('player').currentTime > {first['start'] + 0.3}")
    line = page.js("document.querySelector('#transcript p.now').dataset.start")
    assert float(line) == first["start"]  # the line being spoken is highlighted
    page.wait(f"document.getElementById('player').currentTime > {second['start'] + 0.2}")
    now = page.js("[...document.querySelectorAll('#transcript p.now')].map(p => +p.dataset.start)")
    assert now == [second["start"]]  # ...and the highlight moved on with the video
    caption = page.js("[...document.querySelectorAll('#captions p.now')].map(p => +p.dataset.start)")
    assert caption == [4.0]  # 4.0 s caption is current from 4.0 s on

    head = page.js("""(() => { const v = document.getElementById('player'), h = document.getElementById('playhead');
        return [v.currentTime, +h.dataset.t, +h.getAttribute('x1')]; })()""")
    assert abs(head[0] - head[1]) < PLAYHEAD_TOL_S
    page.wait(f"+document.getElementById('playhead').getAttribute('x1') > {head[2]}")  # it moves while playing

    page.page.keyboard.press("k")
    page.wait("document.getElementById('player').paused")
    [track] = page.js("[...document.querySelectorAll('#timeline .bar')].filter(b => b.textContent.includes('person #'))"
                      ".map(b => +b.dataset.t)")
    page.page.click("#events tr >> nth=0")  # an event: person appears 00:00-00:09
    assert page.media()["t"] < SEEK_TOL_S
    page.page.click("#captions p[data-start]")  # a caption
    assert 4.0 <= page.media()["t"] < 4.0 + SEEK_TOL_S
    page.page.keyboard.press("k")
    page.page.click("#timeline .bar >> nth=-1")  # a detection track's bar: it starts where the person appears
    assert track <= page.media()["t"] < track + SEEK_TOL_S
    page.page.keyboard.press("k")
    page.page.click("#captions p[data-start]")
    page.page.keyboard.press("k")
    page.wait("document.getElementById('player-frame').classList.contains('floating')")  # scrolled away: it floats
    page.page.evaluate("window.scrollTo(0, 0)")
    page.wait("!document.getElementById('player-frame').classList.contains('floating')")
    page.settled()
    for name, whole in (("report-player.png", False), ("report-page.png", True)):
        page.page.screenshot(path=str(artifacts / name), full_page=whole)
        print(f"screenshot: {artifacts / name}")
    assert files_requested(page) <= {video_page.resolve(), video}
    assert not page.errors, page.errors
    page.close()


@slow
def test_keys_play_pause_and_move(browser, video_page):
    page = Page(browser, video_page, "#t=5")
    page.settled()
    assert abs(page.media()["t"] - 5) < 0.05 and page.media()["paused"]  # #t= opens there, without playing
    page.page.focus("#transcript button.t")  # a focused button must not take the space bar
    keys = page.page.keyboard
    keys.press(" ")
    page.wait("!document.getElementById('player').paused")
    keys.press(" ")
    page.wait("document.getElementById('player').paused")
    # The arrows from a known place: where the short play above stopped depends on the
    # machine's load, and 5 s past it can be beyond the 10 s clip's end (the browser clamps).
    page.js("document.getElementById('player').currentTime = 4")
    page.settled()
    keys.press("ArrowRight")
    assert abs(page.media()["t"] - 9) < 0.05
    keys.press("ArrowLeft")
    assert abs(page.media()["t"] - 4) < 0.05
    keys.press("ArrowLeft")
    assert page.media()["t"] == 0  # 5 s back from 4 s: the start, not before it
    keys.press("l")
    page.wait("!document.getElementById('player').paused")
    keys.press("l")
    keys.press("l")
    assert page.media()["rate"] == 4  # each further L doubles the speed
    keys.press("k")
    state = page.media()
    assert state["paused"] and state["rate"] == 1
    keys.press("ArrowRight")
    before = page.media()["t"]
    keys.press("j")
    assert abs(page.media()["t"] - max(0.0, before - 10)) < 0.05
    # The label follows the media's ratechange event, which the browser fires after the key.
    page.wait("document.getElementById('player-rate').textContent === ''")
    assert not page.errors, page.errors
    page.close()


@slow
def test_a_file_on_its_own_clock_is_seeked_on_it(browser, sample_report, clips, tmp_path):
    """A file whose first frame is at 2 s: the browser shows 2 s there, the report says 0."""
    late = clips("late2.mp4", "-i", str(SAMPLE), "-c", "copy", "-output_ts_offset", "2")
    media = probe(late)
    assert abs(media.start_time_s - 2.0) < 0.05
    render({**sample_report, "media": media.model_dump()}, tmp_path / "late", "--video", late)
    page = Page(browser, tmp_path / "late" / "report.html")
    page.settled()
    page.page.click("#summary a.cite")
    assert 6.5 + media.start_time_s <= page.media()["t"] < 6.5 + media.start_time_s + SEEK_TOL_S
    page.wait("+document.getElementById('playhead').dataset.t > 6.5")
    assert float(page.js("document.getElementById('playhead').dataset.t")) < 6.5 + SEEK_TOL_S + 1
    page.close()


@slow
def test_a_codec_browsers_cannot_play_gets_a_warning_then_a_proxy(browser, sample_report, clips, tmp_path):
    mpeg2 = clips("mpeg2.ts", "-i", str(SAMPLE), "-c:v", "mpeg2video", "-q:v", "4", "-c:a", "mp2", "-f", "mpegts")
    report = {**sample_report, "media": probe(mpeg2).model_dump()}
    source = render(report, tmp_path / "source", "--video", mpeg2)
    assert "--html-video proxy" in source.stderr and "mpeg2video" in source.stderr
    page = Page(browser, tmp_path / "source" / "report.html")
    assert "--html-video proxy" in page.js("document.getElementById('player-note').textContent")
    page.wait("!document.getElementById('player-error').hidden")  # Chromium refused it, and the page says what to do
    page.close()

    render(report, tmp_path / "proxy", "--video", mpeg2, "--html-video", "proxy")
    [proxy] = list((tmp_path / "proxy").glob("media.proxy.*"))
    facts = probe(proxy)
    assert facts.video_codec in ("h264", "vp9") and facts.height <= 360 and facts.start_time_s == 0
    assert abs(facts.duration_s - report["media"]["duration_s"]) < 0.2
    page = Page(browser, tmp_path / "proxy" / "report.html")
    page.settled()
    assert page.js("document.getElementById('player').videoWidth") == facts.width
    page.page.click("#summary a.cite")
    assert 6.5 <= page.media()["t"] < 6.5 + SEEK_TOL_S  # the proxy starts at the report's zero
    assert files_requested(page) <= {(tmp_path / "proxy" / "report.html").resolve(), proxy.resolve()}
    page.close()


@slow
def test_no_player_shows_the_nearest_picture(browser, sample_report, tmp_path):
    render(sample_report, tmp_path / "none", "--html-video", "none")
    page = Page(browser, tmp_path / "none" / "report.html")
    assert page.js("document.getElementById('player')") is None
    page.page.click("#captions p[data-start]")
    assert page.js("document.querySelector('#moment-frame figure').dataset.t") == "4.0"  # the caption's own frame
    assert page.js("document.getElementById('playhead').dataset.t") == "4.00"
    assert not page.errors, page.errors
    page.close()


@slow
def test_audio_files_get_an_audio_player(browser, sample_report, clips, tmp_path, artifacts):
    m4a = clips("speech.m4a", "-i", str(SAMPLE), "-vn", "-c:a", "aac")
    media = probe(m4a)
    report = {**sample_report, "media": media.model_dump(), "detections": [], "tracks": [], "captions": [],
              "events": [], "object_counts": {}}
    render(report, tmp_path / "audio", "--video", m4a)
    page = Page(browser, tmp_path / "audio" / "report.html")
    assert page.js("document.getElementById('player').tagName") == "AUDIO"
    page.settled()
    second = report["transcript"]["segments"][1]
    page.page.click("#transcript p[data-start] >> nth=1", position={"x": 200, "y": 8})
    assert second["start"] <= page.media()["t"] < second["start"] + SEEK_TOL_S
    page.wait(f"document.getElementById('player').currentTime > {second['start'] + 0.2}")
    assert page.js("+document.querySelector('#transcript p.now').dataset.start") == second["start"]
    page.page.screenshot(path=str(artifacts / "report-audio.png"))
    assert not page.errors, page.errors
    page.close()


@slow
def test_search_page_plays_each_hit_in_the_same_player(browser, analysed_sample, sample_truth, tmp_path, artifacts):
    # A word of the truth that this machine's Whisper heard: another CPU may spell others differently.
    heard = " ".join(segment["text"] for segment in analysed_sample.report["transcript"]["segments"])
    word = heard_truth_word(heard, sample_truth["text"])
    index = analysed_sample.index_dir / "index.sqlite"
    page_path = tmp_path / "hits" / "found.html"
    made = vidagent("search", word, "--index", index, "--html", page_path)
    assert made.returncode == 0, made.stderr
    hit = json.loads(vidagent("search", word, "--index", index, "--json").stdout)["hits"][0]
    page = Page(browser, page_path)
    page.page.click("#hit-1 a.play")
    page.settled()
    assert hit["start"] <= page.media()["t"] < hit["start"] + SEEK_TOL_S
    assert page.js("document.getElementById('hit-1').classList.contains('now')")
    page.page.keyboard.press(" ")
    page.wait("document.getElementById('player').paused")
    page.page.keyboard.press("ArrowRight")
    assert page.media()["t"] > hit["start"] + 4.9
    page.settled()
    page.page.screenshot(path=str(artifacts / "search-page.png"))
    assert files_requested(page) <= {page_path.resolve(), Path(analysed_sample.report["media"]["path"]).resolve()}
    assert not page.errors, page.errors
    page.close()


# -- without a browser: what the page links, the proxy, the warning --------------------

PROXY_PIXEL_TOL = 8  # mean absolute difference per channel (of 255): H.264 at crf 28 on 320x240


def test_proxy_is_upright_and_matches_ffmpegs_picture(clips, tmp_path):
    from PIL import Image

    from vidagent.media.proxy import write_proxy

    rotated = clips("rot90.mp4", "-i", str(SAMPLE), "-c", "copy", "-metadata:s:v", "rotate=90")
    media = probe(rotated)
    assert media.rotation == 90 and (media.width, media.height) == (240, 320)
    proxy = write_proxy(rotated, media, tmp_path / "proxy.mp4")
    facts = probe(proxy)
    assert (facts.rotation, facts.width, facts.height, facts.start_time_s) == (0, 240, 320, 0.0)
    pictures = []
    for name, path in (("ffmpeg.png", rotated), ("proxy.png", proxy)):  # ffmpeg's autorotation is the reference
        subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-frames:v", "1", str(tmp_path / name)], check=True)
        pictures.append(np.asarray(Image.open(tmp_path / name).convert("RGB"), dtype=float))
    assert np.abs(pictures[0] - pictures[1]).mean() < PROXY_PIXEL_TOL


def test_audio_proxy_of_a_codec_browsers_cannot_play(clips, tmp_path):
    from vidagent.media.proxy import proxy_path, write_proxy
    from vidagent.report.player import playback_problem

    ac3 = clips("speech.mka", "-i", str(SAMPLE), "-vn", "-c:a", "ac3")
    media = probe(ac3)
    assert playback_problem(media) == "browsers cannot play ac3 audio"
    proxy = write_proxy(ac3, media, proxy_path(tmp_path, has_video=False))
    facts = probe(proxy)
    assert proxy.suffix in (".m4a", ".webm") and not facts.has_video
    assert facts.audio_streams[0].codec in ("aac", "opus") and playback_problem(facts) is None
    assert abs(facts.duration_s - media.duration_s) < 0.1


def test_links_are_relative_to_the_page_as_the_browser_sees_it(tmp_path, monkeypatch):
    from vidagent.report import player

    video = tmp_path / "media" / "a talk #1.mp4"
    assert player.media_href(video, tmp_path / "out" / "talk") == "../../media/a%20talk%20%231.mp4"
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")  # the page opened through a symlink: ../ is lexical
    assert player.media_href(tmp_path / "v.mp4", tmp_path / "link" / "out") == "../../v.mp4"

    def other_drive(*args):
        raise ValueError("path is on mount 'D:', start on mount 'C:'")  # what Windows' relpath raises
    monkeypatch.setattr(player.os.path, "relpath", other_drive)
    assert player.media_href(video, tmp_path / "out") == video.as_uri()


@slow
def test_analyze_warns_once_for_videos_browsers_cannot_play(clips, tmp_path):
    first = clips("mpeg2.ts", "-i", str(SAMPLE), "-c:v", "mpeg2video", "-q:v", "4", "-c:a", "mp2", "-f", "mpegts")
    second = tmp_path / "again.ts"
    second.write_bytes(first.read_bytes())
    done = subprocess.run(
        [sys.executable, "-m", "vidagent", "analyze", str(first), str(second), "--config", str(ROOT / "configs" / "offline.yaml"),
         "--no-transcribe", "--detect-fps", "1", "--format", "json,html", "--out", str(tmp_path / "out"), "--progress", "lines"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    warnings = [line for line in done.stderr.splitlines() if "--html-video proxy" in line]
    assert len(warnings) == 1 and "mpeg2video" in warnings[0], done.stderr
    for name in ("mpeg2", "again"):  # every page still says it, beside its player
        assert "--html-video proxy" in (tmp_path / "out" / name / "report.html").read_text()


def test_bench_proxy_runs_on_a_tiny_clip():
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "bench_proxy.py"), "--minutes", "0.05"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert re.search(r"vidagent +[\d.]+ s +x[\d.]+ of floor", done.stdout), done.stdout


def test_json_progress_has_a_warning_event(capsys):
    from vidagent.cli.progress import JsonProgress

    JsonProgress().warning("a.ts: browsers cannot play mpeg2video video")
    event = json.loads(capsys.readouterr().err)
    assert (event["event"], event["text"]) == ("warning", "a.ts: browsers cannot play mpeg2video video")
