"""--match-speakers: one voice, one name across a batch. Two generated conversations that
share one voice (tests/data/conversation.opus: en-us+f5 and pt+klatt, see test_speakers.py;
tests/data/conversation_b.opus: pt+klatt and en-gb+f2, made by `scripts/make_conversation.py
--voices pt+klatt,en-gb+f2 --minutes 0.4 --seed 21 --format opus --out
tests/data/conversation_b`) analysed as one batch through the real CLI, offline models,
two videos at once. Which speaker is which voice is read from the truth files, never from
the order vidagent numbers them."""

import json
import sys

import numpy as np
import pytest
import srt

from conftest import DATA, OFFLINE_CONFIG, ROOT
from vidagent.speakers.match import pair_voices

sys.path.insert(0, str(ROOT / "scripts"))
from score_diarization import true_voice  # noqa: E402

FIRST, SECOND = DATA / "conversation.opus", DATA / "conversation_b.opus"
SHARED, ONLY_SECOND = "pt+klatt", "en-gb+f2"


@pytest.fixture(scope="module")
def batch(run_cli_module, tmp_path_factory):
    out = tmp_path_factory.mktemp("match")
    # The second input is shorter, so with --jobs 2 it finishes first and must wait its turn.
    run = run_cli_module("analyze", FIRST, SECOND, "--config", OFFLINE_CONFIG, "--match-speakers", "--jobs", "2",
                         "--no-detect", "--no-cache", "--format", "json,srt", "--progress", "lines", "--out", out)
    assert run.code == 0, run
    reports = {name: json.loads((out / name / "report.json").read_text()) for name in ("conversation", "conversation_b")}
    return run, out, reports


def speaker_with_voice(report: dict, voice: str, truth_file) -> dict:
    truth = json.loads(truth_file.read_text())
    found = [s for s in report["speakers"] if true_voice(report, s["id"], truth) == voice]
    assert len(found) == 1, (voice, report["speakers"])
    return found[0]


def test_the_shared_voice_takes_the_earlier_name_and_says_where_from(batch):
    run, _, reports = batch
    first, second = reports["conversation"], reports["conversation_b"]
    assert len(first["speakers"]) == 2 and len(second["speakers"]) == 2
    earlier = speaker_with_voice(first, SHARED, DATA / "conversation.json")
    later = speaker_with_voice(second, SHARED, DATA / "conversation_b.json")
    assert later["name"] == earlier["name"]
    assert later["matched"]["video"].endswith("conversation.opus")
    assert later["matched"]["speaker"] == earlier["id"]
    assert 0.90 <= later["matched"]["similarity"] <= 1.0  # the default match_threshold
    assert all(s["matched"] is None for s in first["speakers"])  # the first input matches nothing
    assert f"conversation_b.opus: speaker {later['id']} is {earlier['name']} of" in run.stderr


def test_a_new_voice_gets_a_name_no_earlier_video_used(batch):
    _, _, reports = batch
    new = speaker_with_voice(reports["conversation_b"], ONLY_SECOND, DATA / "conversation_b.json")
    assert new["matched"] is None
    assert new["name"] not in {s["name"] for s in reports["conversation"]["speakers"]}
    assert new["name"] == "Speaker 3"  # the batch's third voice


def test_names_reach_the_subtitles_and_no_voiceprint_is_written(batch):
    _, out, reports = batch
    later = speaker_with_voice(reports["conversation_b"], SHARED, DATA / "conversation_b.json")
    cues = list(srt.parse((out / "conversation_b" / "transcript.srt").read_text()))
    assert any(c.content.startswith(f"{later['name'].upper()}:") for c in cues), cues
    for name in ("conversation", "conversation_b"):
        written = json.loads((out / name / "report.json").read_text())
        assert all("voice" not in s for s in written["speakers"])


def test_match_speakers_with_speakers_off_is_one_line(run_cli, tmp_path):
    run = run_cli("analyze", FIRST, "--config", OFFLINE_CONFIG, "--match-speakers", "--no-speakers", "--out", tmp_path)
    assert run.code == 2, run
    assert run.stderr.strip().count("\n") == 0 and "match_speakers needs speakers" in run.stderr, run
    assert "Traceback" not in run.stderr


def test_two_speakers_of_one_video_never_take_one_voice():
    known = [np.array([1.0, 0.0, 0.0])]
    close, closer = np.array([0.95, 0.3, 0.0]), np.array([0.99, 0.0, 0.1])
    assert pair_voices([close, closer], known, 0.85) == {1: (0, pytest.approx(0.995, abs=0.01))}
    assert pair_voices([np.array([0.0, 1.0, 0.0])], known, 0.85) == {}


def test_json_progress_says_each_match_as_an_event(batch, capsys):
    from vidagent.batch import Outcome
    from vidagent.cli.progress import JsonProgress
    from vidagent.report.model import Report

    _, out, reports = batch
    report = Report.model_validate_json((out / "conversation_b" / "report.json").read_text())
    JsonProgress().video_finished(Outcome(input=SECOND, folder=out / "conversation_b", report=report))
    events = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    matched = [e for e in events if e["event"] == "speaker_matched"]
    later = speaker_with_voice(reports["conversation_b"], SHARED, DATA / "conversation_b.json")
    assert [(e["video"], e["speaker"], e["name"], e["matched_speaker"]) for e in matched] == [
        (str(SECOND), later["id"], later["name"], later["matched"]["speaker"])]
    assert matched[0]["matched_video"].endswith("conversation.opus") and matched[0]["similarity"] >= 0.9
