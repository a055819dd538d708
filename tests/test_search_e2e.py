"""From a folder of videos to search results and answers, as the issue's "done" says:
analyse with the offline models, index, `vidagent search "lighthouse"` finds the moment
the word is spoken (time and thumbnail), and `vidagent ask` answers through `vidagent
serve`'s OpenAI route with the tiny random-weight Qwen3-VL. Its words are noise, so the
test checks the plumbing: the evidence sent, the images, and that every citation left in
the answer resolves."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import yaml

from conftest import DATA, OFFLINE_CONFIG, ROOT
from test_serve import Serve
from text_match import heard_truth_word, spoken_at
from vidagent.citations import Span, check

pytestmark = pytest.mark.slow
KEY = "sk-ask-e2e-SECRET-51a2"
TINY = "offline:qwen3-vl-tiny"


def vidagent(cwd: Path, *args, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vidagent", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=600, env={**os.environ, **(env or {})})


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """`vidagent analyze videos/` (default output folder vidagent-out), then `vidagent index`."""
    work = tmp_path_factory.mktemp("e2e")
    (work / "videos").mkdir()
    for name in ("lighthouse.mp4", "sample.mp4"):
        shutil.copy(DATA / name, work / "videos" / name)
    done = vidagent(work, "analyze", "videos", "--config", OFFLINE_CONFIG, "--word-timestamps", "--detect-fps", "2",
                    "--format", "json,html", "--progress", "none")
    assert done.returncode == 0, done.stderr
    indexed = vidagent(work, "index", "vidagent-out")
    assert indexed.returncode == 0, indexed.stderr
    return work


def heard(report: Path) -> str:
    return " ".join(s["text"] for s in json.loads(report.read_text())["transcript"]["segments"])


def query_for(work: Path, name: str) -> str:
    """A word of the clip's truth that this machine's Whisper heard ("lighthouse", unless it
    wrote "light housekeeper"): what a user who heard the clip would search for."""
    return heard_truth_word(heard(work / "vidagent-out" / name / "report.json"),
                            json.loads((DATA / f"{name}.json").read_text())["text"])


def test_analyze_alone_writes_the_index(tmp_path):
    (tmp_path / "videos").mkdir()
    shutil.copy(DATA / "lighthouse.mp4", tmp_path / "videos")
    assert vidagent(tmp_path, "analyze", "videos", "--config", OFFLINE_CONFIG, "--no-detect",
                    "--progress", "none").returncode == 0
    found = vidagent(tmp_path, "search", query_for(tmp_path, "lighthouse"))
    assert found.returncode == 0 and "lighthouse.mp4" in found.stdout


def test_search_lists_the_moment_the_word_is_spoken(workdir):
    truth = json.loads((DATA / "lighthouse.json").read_text())
    word = query_for(workdir, "lighthouse")
    found = vidagent(workdir, "search", word, "--json", "--html", "lighthouse.html")
    assert found.returncode == 0, found.stderr
    hits = json.loads(found.stdout)["hits"]
    speech = [h for h in hits if h["kind"] == "speech"]
    assert [h["video"] for h in speech] == ["lighthouse.mp4"]
    [hit] = speech
    assert word in [hit["text"][a:b].lower() for a, b in hit["highlights"]]
    # The word's own time (word timestamps), not its segment's start: within a second of
    # when the truth has it spoken.
    assert hit["at"] == pytest.approx(spoken_at(truth, word), abs=1.0)
    assert hit["start"] <= hit["at"] <= hit["end"]
    page = (workdir / "lighthouse.html").read_text()
    assert page.count('src="data:image/jpeg;base64,') == len(hits)
    assert "vidagent-out/lighthouse/report.html#t=" in page

    plain = vidagent(workdir, "search", word, "--kind", "speech")
    assert plain.returncode == 0 and "lighthouse.mp4" in plain.stdout and f"«{word}»" in plain.stdout.lower()


@pytest.fixture(scope="module")
def serve(tmp_path_factory):
    folder = tmp_path_factory.mktemp("serve-ask")
    config = folder / "serve.yaml"
    config.write_text(yaml.safe_dump({"endpoints": {"vlm-ep": {
        "handler": str(ROOT / "endpoints/qwen3-vl/local_handler.py"), "env": {"VIDAGENT_VLM_MODEL": TINY}}}}))
    server = Serve(folder, "--config", config, "--api-key", KEY, timeout=300)
    yield server
    assert server.stop() == 0, server.stderr()[-3000:]
    assert KEY not in server.stderr()


def test_ask_answers_through_serve_with_citations_that_resolve(workdir, serve):
    env = {"RUNPOD_API_KEY": KEY, "RUNPOD_BASE_URL": serve.base_url, "RUNPOD_VLM_ENDPOINT_ID": "vlm-ep"}
    stats = f"{serve.root}/_vidagent/stats"
    before = httpx.get(stats, headers={"Authorization": KEY}).json()["endpoints"]["vlm-ep"]["openai"]["accepted"]
    question = f"What about the {query_for(workdir, 'lighthouse')} and the {query_for(workdir, 'sample')}?"
    done = vidagent(workdir, "ask", "vidagent-out", question, "--json", "--vlm-model", TINY, env=env)
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    after = httpx.get(stats, headers={"Authorization": KEY}).json()["endpoints"]["vlm-ep"]["openai"]["accepted"]
    assert after == before + 1

    assert answer["found"] is True and answer["model"] == TINY
    evidence = answer["evidence"]
    assert "[lighthouse 00:0" in evidence["text"] and "[sample 00:0" in evidence["text"]  # two videos: named
    assert {f["video"]["name"] for f in evidence["frames"]} == {"lighthouse.mp4", "sample.mp4"}
    # analyze was given videos/…: the index keeps the absolute path, good from any folder
    assert all(Path(f["video"]["path"]).is_absolute() for f in evidence["frames"])
    assert answer["usage"]["prompt_tokens"] > 0 and answer["usage"]["completion_tokens"] > 0
    # Whatever the model wrote, what is left cites only moments that were sent.
    spans = [Span(m["video"]["name"], m["start"], m["end"]) for m in evidence["moments"]]
    names = {Path(m["video"]["name"]).stem: m["video"]["name"] for m in evidence["moments"]}
    again = check(answer["answer"], spans + [Span(f["video"]["name"], f["t"], f["t"]) for f in evidence["frames"]],
                  names)
    assert again.unresolved == [] and len(again.citations) == len(answer["citations"])
    for citation in answer["citations"]:
        assert citation["video"]["name"] and (citation["moments"] or citation["t"] in [f["t"] for f in evidence["frames"]])
    assert KEY not in done.stdout + done.stderr
