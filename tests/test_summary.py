"""Summaries with evidence: parts then the whole, every sentence with checked times, the
report's fields, and citation links in the HTML report.

The VLM is a stand-in OpenAI-compatible server with scripted answers (a real process over
HTTP, through the openai SDK), so the tests can say which citations are good and bad."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
from pathlib import Path

import pytest

from conftest import OFFLINE_CONFIG, SAMPLE
from index_fixtures import harbour
from openai_standin import StandIn
from text_match import TINY_EN_MAX_WER, assert_words
from vidagent.config import Settings
from vidagent.report.model import EvidencedSummary, Report
from vidagent.tasks.summary import material, split, summarise
from vidagent.transports.openai_chat import OpenAIChatTransport

CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture
def standin(tmp_path):
    servers = []

    def start(rules):
        servers.append(StandIn(tmp_path / f"standin{len(servers)}", rules))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


def test_material_is_in_time_order_and_parts_keep_whole_lines(tmp_path):
    r = harbour(tmp_path)
    lines, spans = material(r.captions, r.transcript.segments)
    assert [text.split("]")[0] + "]" for _, _, text in lines] == [
        "[00:10]", "[00:20]", "[00:30]", "[00:40]", "[00:46]", "[00:50]"]
    assert lines[2][2].startswith("[00:30] caption: A forklift drives past")
    assert [(s.start, s.end) for s in spans][:2] == [(10.0, 14.0), (20.0, 24.0)]
    groups = split(lines, 100)
    assert [line for group in groups for line in group] == lines
    assert all(sum(len(t) + 1 for _, _, t in g) <= 100 or len(g) == 1 for g in groups) and len(groups) > 1
    # Lines each longer than the limit are paired, so a level always shrinks.
    assert [len(g) for g in split(lines, 10)] == [2, 2, 2]


def run(coro):
    return asyncio.run(coro)


async def summarise_with(server: StandIn, report: Report, **settings) -> EvidencedSummary:
    transport = OpenAIChatTransport(Settings(vlm_base_url=server.base_url, vlm_model="standin", **settings))
    try:
        async def submit(payload):
            return (await transport.submit("vlm", payload)).output

        return await summarise(report.captions, report.transcript.segments, transport.settings, submit)
    finally:
        await transport.aclose()


def test_a_long_video_is_summarised_in_parts_then_as_a_whole(standin, tmp_path):
    """130 characters a request: the six lines make three parts, their summaries two, then one."""
    server = standin([
        {"contains": "This is part 1 of 3", "answer": "A keeper opens a door [00:10]. A contract is signed [00:20]."},
        {"contains": "This is part 2 of 3", "answer": "A forklift passes [00:30]. Invented [05:00]."},
        {"contains": "This is part 3 of 3", "answer": "The lights go out [00:40] and people wait [00:50]."},
        {"contains": "This is part 1 of 2", "answer": "A keeper opens a door, a contract is signed [00:10, 00:20]."},
        {"contains": "This is part 2 of 2", "answer": "A forklift passes [00:30] and the lights go out [00:40]."},
        {"contains": "summaries of consecutive parts",
         "answer": "A keeper opens a door and a contract is signed [00:10, 00:20]. A forklift passes [00:30]. "
                   "The lights go out [00:40]. Then nothing happens [09:00]. Everyone is calm."},
    ])
    result = run(summarise_with(server, harbour(tmp_path), summary_part_chars=130))
    sent = [r["messages"][0]["content"] for r in server.requests()]
    first = [p for p in sent if re.search(r"part \d of 3", p)]
    second = [p for p in sent if re.search(r"part \d of 2", p)]
    assert (len(first), len(second), len(sent)) == (3, 2, 6)
    for line in ("[00:10] speech", "[00:20] speech", "[00:30] caption", "[00:40] speech", "[00:46] caption",
                 "[00:50] speech"):
        assert "\n".join(first).count(line) == 1  # every line in exactly one part
    assert not any("speech:" in p for p in second + sent[-1:])  # later levels see summaries only
    assert re.search(r"Part 2 \(from 00:\d\d to 00:\d\d\): A forklift passes. \[00:30\] Invented.$", "\n".join(second), re.M)
    assert "[05:00]" not in "\n".join(second)  # removed before the next level saw it
    assert "This is part" not in sent[-1] and "Part 2 (from" in sent[-1]

    assert [(s.text, s.times) for s in result.sentences] == [
        ("A keeper opens a door and a contract is signed.", [10.0, 20.0]),
        ("A forklift passes.", [30.0]),
        ("The lights go out.", [40.0]),
        ("Then nothing happens.", []),
        ("Everyone is calm.", []),
    ]
    assert result.warnings == ["summary: 2 citation(s) pointed to no caption or speech and were removed",
                               "summary: 2 of 5 sentence(s) cite no moment"]
    assert result.text.startswith("A keeper opens a door and a contract is signed. [00:10] [00:20] A forklift")


def test_a_short_video_is_one_request(standin, tmp_path):
    server = standin([{"contains": "", "answer": "The keeper speaks [00:10]."}])
    result = run(summarise_with(server, harbour(tmp_path)))
    assert len(server.requests()) == 1 and "This is part" not in server.requests()[0]["messages"][0]["content"]
    assert [(s.text, s.times) for s in result.sentences] == [("The keeper speaks.", [10.0])]
    assert result.warnings == []


def test_the_report_carries_text_sentences_and_warnings(tmp_path):
    r = harbour(tmp_path)
    summary = EvidencedSummary(sentences=[{"text": "A door opens.", "times": [10.0]}], warnings=["summary: x"])
    made = Report.model_validate({**r.model_dump(), "summary": summary, "warnings": ["earlier"]})
    assert made.summary == "A door opens. [00:10]"
    assert [(s.text, s.times) for s in made.summary_sentences] == [("A door opens.", [10.0])]
    assert made.warnings == ["earlier", "summary: x"]
    assert Report.model_validate_json(made.model_dump_json()) == made


@pytest.mark.slow
def test_analyze_summary_cites_the_transcript(standin, run_cli, tmp_path, sample_truth):
    """The pipeline's summary stage end to end: the speech starts at 1.5 s (tests/data/sample.json)."""
    server = standin([{"contains": "", "answer": "A fox jumps over a dog [00:01]. Elephants fly [08:00]."}])
    out = tmp_path / "out"
    done = run_cli("analyze", SAMPLE, "--config", OFFLINE_CONFIG, "--no-detect", "--summary", "--out", out,
                   "--vlm-base-url", server.base_url, "--vlm-model", "standin", "--format", "json,html",
                   "--progress", "none")
    assert done.code == 0, done
    report = json.loads((out / "sample" / "report.json").read_text())
    assert int(sample_truth["speech_start_s"]) == 1
    assert report["summary_sentences"] == [{"text": "A fox jumps over a dog.", "times": [1.0]},
                                           {"text": "Elephants fly.", "times": []}]
    assert report["summary"] == "A fox jumps over a dog. [00:01] Elephants fly."
    assert "summary: 1 citation(s) pointed to no caption or speech and were removed" in report["warnings"]
    assert report["usage"]["vlm"]["jobs"] == 1
    [sent] = server.requests()
    # The prompt holds what Whisper heard, as material lines: its words, not this machine's spelling of them.
    heard = re.findall(r"^\[\d\d:\d\d\] speech: (.*)$", sent["messages"][0]["content"], re.M)
    assert heard, sent["messages"][0]["content"]
    assert_words(" ".join(heard), sample_truth["text"], max_wer=TINY_EN_MAX_WER)

    html = (out / "sample" / "report.html").read_text()
    assert '<a class="t cite" href="#t=1.0" data-t="1.0">[00:01]</a>' in html
    if not CHROMIUM.exists():
        pytest.skip("no /usr/bin/chromium")
    dom = subprocess.run(
        [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=3000", "--dump-dom",
         (out / "sample" / "report.html").as_uri() + "#t=1.0"],
        capture_output=True, text=True, timeout=90,
    ).stdout
    assert 'data-ready="1"' in dom
    assert re.search(r'id="moment-time"[^>]*>00:01 \(1\.00 s\)<', dom)  # the page opened at the cited moment
