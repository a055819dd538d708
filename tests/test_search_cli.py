"""`vidagent index` and `vidagent search` as a user runs them: output, exit codes, the HTML
page in Chromium (thumbnails, a link that plays the moment) and clips cut with ffmpeg."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from urllib.parse import unquote

import pytest

from index_fixtures import report, write_reports

CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture
def reports(tmp_path):
    write_reports(tmp_path / "out")
    return tmp_path / "out"


def test_index_then_search(run_cli, reports):
    built = run_cli("index", reports)
    assert built.code == 0, built
    assert built.stdout.startswith(f"{reports / 'index.sqlite'}: 3 reports (3 added, 0 updated, 0 unchanged, 0 removed)")
    again = run_cli("index", reports)
    assert "(0 added, 0 updated, 3 unchanged, 0 removed), 0 moments written" in again.stdout

    found = run_cli("search", "lighthouse", "--index", reports / "index.sqlite")
    assert found.code == 0, found
    assert re.fullmatch(r" 1  harbour\.mp4  00:10–00:14  speech   The «lighthouse» keeper opened the door\.\n", found.stdout)

    as_json = json.loads(run_cli("search", "contract", "--index", reports / "index.sqlite", "--json").stdout)
    assert [(h["video"], h["start"]) for h in as_json["hits"]][0] == ("office.mp4", 12.0)
    first = as_json["hits"][0]
    assert [first["text"][a:b] for a, b in first["highlights"]] == ["contract", "Contract"]
    assert first["report"] == str((reports / "office" / "report.json").resolve())

    crowd = run_cli("search", "--label", "person", "--min-count", "3", "--index", reports / "index.sqlite")
    assert crowd.stdout == " 1  harbour.mp4  00:30–00:40  object   3 or more person in frame\n"


def test_index_option_takes_a_reports_folder(run_cli, reports, tmp_path):
    """`--index DIR` means DIR/index.sqlite, for index, search and ask alike; a path ending
    in a slash is a folder even before it exists."""
    assert run_cli("index", reports, "--index", reports).stdout.startswith(f"{reports / 'index.sqlite'}: 3 reports")
    assert sorted(p.name for p in reports.iterdir() if p.is_file()) == ["index.sqlite"]
    for given in (reports, f"{reports}/"):
        found = run_cli("search", "lighthouse", "--index", given)
        assert found.code == 0 and "harbour.mp4" in found.stdout, found
    (reports / "harbour.mp4").write_bytes(b"")  # the video the report describes, looked up in the index
    asked = run_cli("ask", reports / "harbour.mp4", "Where is the zebra?", "--index", reports)
    assert asked.code == 0 and "Nothing relevant found" in asked.stdout, asked

    shared = tmp_path / "shared"
    built = run_cli("index", reports, "--index", f"{shared}/")
    assert built.code == 0 and (shared / "index.sqlite").is_file(), built
    assert run_cli("search", "lighthouse", "--index", shared).code == 0
    none = run_cli("search", "lighthouse", "--index", f"{tmp_path}/empty/")
    assert none.code == 1 and f"{tmp_path}/empty/index.sqlite: no index here" in none.stderr, none


@pytest.mark.slow
def test_analyze_adds_each_report_to_an_index_given_as_a_folder(run_cli, analysed_sample):
    """The shared run was given `--index DIR/` for a DIR that did not exist yet."""
    assert (analysed_sample.index_dir / "index.sqlite").is_file()
    assert not (analysed_sample.out / "index.sqlite").exists()
    found = run_cli("search", "--kind", "speech", "--index", analysed_sample.index_dir, "--json")
    assert found.code == 0, found
    assert {h["video"] for h in json.loads(found.stdout)["hits"]} == {"my clip #1 – été.mp4"}


def test_default_index_is_in_the_output_folder(run_cli, reports):
    assert run_cli("index", reports).code == 0
    found = run_cli("search", "lighthouse", env={"VIDAGENT_OUT": str(reports)})
    assert found.code == 0 and "harbour.mp4" in found.stdout, found


def test_no_match_and_bad_input(run_cli, reports, tmp_path):
    assert run_cli("index", reports).code == 0
    index = reports / "index.sqlite"
    none = run_cli("search", "zebra", "--index", index)
    assert (none.code, none.stdout) == (1, "") and "no moment matches" in none.stderr
    for args, message in [
        (("--kind", "sound"), "option --kind: unknown kind 'sound'"),
        (("--min-count", "2"), "option --min-count needs --label"),
        (("--from", "1::2"), "is not a time"),
    ]:
        bad = run_cli("search", "x", "--index", index, *args)
        assert bad.code == 2 and message in bad.stderr and "Traceback" not in bad.stderr, bad
    missing = run_cli("search", "x", "--index", tmp_path / "nope.sqlite")
    assert missing.code == 1 and "no index here" in missing.stderr and "Traceback" not in missing.stderr
    (reports / "broken").mkdir()
    (reports / "broken" / "report.json").write_text("[]")
    partly = run_cli("index", reports, "--index", tmp_path / "other.sqlite")
    assert partly.code == 1 and f"{reports / 'broken' / 'report.json'}: not a vidagent report" in partly.stderr
    assert "3 reports" not in partly.stdout and "4 reports (3 added" in partly.stdout


# -- pictures, links, clips from real video ------------------------------------------------


@pytest.fixture
def videos(clips, tmp_path):
    """Two ffmpeg-made videos (a keyframe every second / only at the start), reports of
    speech in them, and a third report whose video is gone."""
    source = ["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:duration=10", "-f", "lavfi",
              "-i", "sine=frequency=440:sample_rate=44100:duration=10", "-pix_fmt", "yuv420p", "-c:v", "libx264",
              "-preset", "veryfast", "-c:a", "aac", "-sc_threshold", "0"]
    every_second = clips("gop25.mp4", *source, "-g", "25", "-keyint_min", "25")
    one_keyframe = clips("gop250.mp4", *source, "-g", "250", "-keyint_min", "250")
    out = tmp_path / "out"
    made = {
        "gop25": report(every_second, 10.0, segments=[(4.3, 5.0, "The lighthouse beam sweeps the bay.")]),
        "gop250": report(one_keyframe, 10.0, segments=[(6.0, 6.5, "A second lighthouse, far away.")]),
        "gone": report(tmp_path / "moved-away.mp4", 10.0, segments=[(2.0, 3.0, "The old lighthouse is gone.")]),
    }
    for name, r in made.items():
        (out / name).mkdir(parents=True)
        (out / name / "report.json").write_text(r.model_dump_json())
    return out, every_second, one_keyframe


def frame_at(path: Path, t: float):
    import av

    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            if frame.time >= t - 0.02:
                return frame.to_ndarray(format="gray").astype(float)
    raise AssertionError(f"no frame at {t} in {path}")


def packets(path: Path) -> tuple[list[bytes], float]:
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        found = [(p.pts, bytes(p)) for p in container.demux(stream) if p.size]
        return [data for _, data in sorted(found)], float(stream.duration * stream.time_base)


@pytest.mark.slow
def test_clips_are_stream_copied_when_a_keyframe_allows(run_cli, videos, tmp_path):
    out, every_second, one_keyframe = videos
    assert run_cli("index", out).code == 0
    cut = run_cli("search", "lighthouse", "--index", out / "index.sqlite", "--clips", tmp_path / "clips", "--json")
    assert cut.code == 0, cut
    clips = {re.sub(r"^\d+-", "", Path(c["path"]).name) if c["path"] else None: c
             for c in json.loads(cut.stdout)["clips"]}
    copied, encoded, skipped = clips["gop25-00m03s.mp4"], clips["gop250-00m05s.mp4"], clips[None]

    # gop25: the clip wants 3.3-6.3 (a second around the moment, at least 3 s); the keyframe at
    # 3.0 is 0.3 s early, so it is copied from there.
    assert (copied["method"], copied["start"], copied["end"]) == ("copy", 3.0, 6.3)
    assert "0.3 s early" in copied["note"]
    clip_packets, clip_s = packets(Path(copied["path"]))
    source_packets, _ = packets(every_second)
    assert clip_packets[0] == source_packets[75]  # the keyframe at 3.0 s, byte for byte
    assert 3.3 - 0.01 <= clip_s <= 3.3 + 0.12  # a copy ends on a packet: up to 3 frames more

    # gop250: the only keyframe is 5 s before 5.0, so it is re-encoded to start on time.
    assert (encoded["method"], encoded["start"]) == ("re-encode", 5.0) and "5.0 s early" in encoded["note"]
    first = frame_at(Path(encoded["path"]), 0.0)
    assert abs(first - frame_at(one_keyframe, 5.0)).mean() < abs(first - frame_at(one_keyframe, 4.0)).mean() / 4

    assert skipped["method"] == "skipped" and "not found" in skipped["note"]
    plain = run_cli("search", "lighthouse", "--index", out / "index.sqlite", "--clips", tmp_path / "again")
    assert "stream copy, starts 0.3 s early at a keyframe" in plain.stdout and "re-encoded:" in plain.stdout


def chromium_dom(page: str, profile: Path) -> str:
    if not CHROMIUM.exists():
        pytest.skip("no /usr/bin/chromium (apt-get install chromium)")
    done = subprocess.run(
        [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", f"--user-data-dir={profile}",
         "--autoplay-policy=no-user-gesture-required", "--virtual-time-budget=8000", "--dump-dom", page],
        capture_output=True, text=True, timeout=90,
    )
    return done.stdout


@pytest.mark.slow
def test_search_page_has_thumbnails_and_plays_each_moment(run_cli, videos, tmp_path):
    out, every_second, _ = videos
    assert run_cli("index", out).code == 0
    page = tmp_path / "pages" / "lighthouse.html"
    made = run_cli("search", "lighthouse", "--index", out / "index.sqlite", "--html", page)
    assert made.code == 0, made
    assert f"search page: {page}" in made.stderr and "source video not found" in made.stderr
    html = page.read_text()
    assert html.count('src="data:image/jpeg;base64,') == 2  # the third video is gone: no picture
    assert "no picture: source video not found" in html
    assert "<mark>lighthouse</mark>" in html
    plays = dict((href, int(n)) for href, n in re.findall(r'class="play" href="([^"]+)" data-play="(\d+)"', html))
    [(href, number)] = [(h, n) for h, n in plays.items() if "gop25.mp4" in h]
    assert not href.startswith("/") and href.endswith("#t=4.30,5.00")  # relative, with a media fragment
    assert (page.parent / unquote(href.split("#")[0])).resolve() == every_second.resolve()

    dom = chromium_dom(page.as_uri() + f"#play={number}", tmp_path / "profile")
    body = re.search(r"<body[^>]*>", dom).group(0)
    assert 'data-ready="1"' in body
    assert abs(float(re.search(r'data-seeked-to="([0-9.]+)"', body).group(1)) - 4.3) < 0.05
