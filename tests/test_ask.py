"""`vidagent ask` against a local OpenAI-compatible stand-in with scripted answers (a real
server process, over HTTP, through the openai SDK): the evidence it is sent, good and bad
citations, "nothing relevant found", frames as images, and each kind of TARGET."""

from __future__ import annotations

import base64
import io
import json

import pytest

from index_fixtures import report, write_reports
from openai_standin import StandIn

SCRIPTED = ("The contract was signed in the morning [harbour 00:20]. It has a penalty clause [office 00:12]. "
            "The keeper left at dawn [harbour 00:59]. The deal was made in Paris [paris 00:20].")


@pytest.fixture
def standin(tmp_path):
    servers = []

    def start(rules: list[dict]) -> StandIn:
        server = StandIn(tmp_path / f"standin{len(servers)}", rules)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def reports(tmp_path, run_cli):
    out = tmp_path / "out"
    write_reports(out)
    assert run_cli("index", out).code == 0
    return out


def ask(run_cli, server: StandIn, *args: str):
    return run_cli("ask", *args, "--vlm-base-url", server.base_url, "--vlm-model", "standin", "--backend", "local")


def test_citations_that_resolve_are_kept_with_their_moments_and_the_rest_removed(run_cli, standin, reports):
    server = standin([{"contains": "Question: Who signed the contract?", "answer": SCRIPTED}])
    done = ask(run_cli, server, reports, "Who signed the contract?", "--json")
    assert done.code == 0, done
    answer = json.loads(done.stdout)

    assert answer["found"] is True
    assert answer["answer"] == ("The contract was signed in the morning [harbour 00:20]. It has a penalty clause "
                                "[office 00:12]. The keeper left at dawn. The deal was made in Paris.")
    cited = {(c["video"]["name"], c["t"]): [(m["kind"], m["start"], m["text"]) for m in c["moments"]]
             for c in answer["citations"]}
    assert set(cited) == {("harbour.mp4", 20.0), ("office.mp4", 12.0)}
    assert ("speech", 20.0, "We signed the contract this morning.") in cited[("harbour.mp4", 20.0)]
    office = cited[("office.mp4", 12.0)]  # the segment, and the two people in frame then (sent as context)
    assert ("speech", 12.0, "The contract has a penalty clause. Contract terms matter.") in office
    assert ("event", 0.0, "2 persons visible 00:00–00:20") in office
    assert answer["removed_citations"] == 2
    assert {u["text"] for u in answer["unresolved"]} == {"harbour 00:59", "paris 00:20"}

    # What the model was sent: the question, the evidence lines named as they can be cited.
    [sent] = server.requests()
    assert sent["model"] == "standin"
    texts = [p["text"] for p in sent["messages"][0]["content"] if p["type"] == "text"]
    assert texts[-1] == "Question: Who signed the contract?"
    evidence = answer["evidence"]["text"]
    assert evidence in texts[0]
    assert "[harbour 00:20-00:24] speech: We signed the contract this morning." in evidence.splitlines()
    assert "[office 00:12-00:16] speech: The contract has a penalty clause. Contract terms matter." in evidence
    assert "[name 00:12]" in texts[0]  # across videos the model is told to name the file
    # The fixture videos do not exist: text-only evidence, and the user is told.
    assert not [p for p in sent["messages"][0]["content"] if p["type"] == "image_url"]
    assert "source video not found" in done.stderr and answer["evidence"]["frames"] == []


def test_plain_output_lists_citations_and_what_was_removed(run_cli, standin, reports):
    server = standin([{"contains": "", "answer": SCRIPTED}])
    done = ask(run_cli, server, reports, "Who signed the contract?")
    assert done.code == 0, done
    lines = done.stdout.splitlines()
    assert lines[0].startswith("The contract was signed in the morning [harbour 00:20].")
    assert "  [harbour 00:20]  harbour.mp4 00:20–00:24  speech: We signed the contract this morning." in lines
    assert "Removed 2 citation(s) that point to no moment shown to the model:" in lines
    assert any(line.startswith("  [paris 00:20]  names no video") for line in lines)


def test_nothing_relevant_asks_no_model(run_cli, standin, reports):
    server = standin([{"contains": "", "answer": "A guess [harbour 00:10]."}])
    for question in ("Where is the zebra?", "What is it?"):
        done = ask(run_cli, server, reports, question, "--json")
        assert done.code == 0, done
        answer = json.loads(done.stdout)
        assert answer["found"] is False and answer["answer"].startswith("Nothing relevant found")
        assert answer["citations"] == [] and answer["evidence"] is None
    assert "'zebra'" in json.loads(ask(run_cli, server, reports, "Where is the zebra?", "--json").stdout)["answer"]
    assert server.requests() == []


@pytest.fixture
def filmed(clips, tmp_path):
    """A real ffmpeg-made video, its report (speech at 3-5 s), not indexed anywhere."""
    video = clips("ask.mp4", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:duration=8",
                  "-pix_fmt", "yuv420p", "-c:v", "libx264", "-preset", "veryfast")
    folder = tmp_path / "filmed" / "ask"
    folder.mkdir(parents=True)
    made = report(video, 8.0, segments=[(3.0, 5.0, "The lighthouse beam sweeps the bay.")],
                  captions=[(6.0, "A striped test pattern with a moving dot")])
    (folder / "report.json").write_text(made.model_dump_json())
    return video, folder / "report.json"


def test_frames_of_the_moments_go_as_images(run_cli, standin, filmed):
    from PIL import Image

    video, report_json = filmed
    server = standin([{"contains": "", "answer": "The beam sweeps the bay [00:03]. It is dark [00:09]."}])
    done = ask(run_cli, server, report_json, "What does the lighthouse beam do?", "--json")
    assert done.code == 0, done
    answer = json.loads(done.stdout)
    assert [c["t"] for c in answer["citations"]] == [3.0] and answer["removed_citations"] == 1
    assert [f["t"] for f in answer["evidence"]["frames"]] == [3.0]
    [sent] = server.requests()
    parts = sent["messages"][0]["content"]
    [image] = [i for i, p in enumerate(parts) if p["type"] == "image_url"]
    assert parts[image - 1] == {"type": "text", "text": "Frame at [00:03]:"}  # one video: no name needed
    url = parts[image]["image_url"]["url"]
    assert url.startswith("data:image/jpeg;base64,")
    picture = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
    assert picture.format == "JPEG" and picture.size == (320, 240)
    # The caption at 6 s is the beam's neighbour, so it was sent too.
    assert "[00:06] caption: A striped test pattern with a moving dot" in answer["evidence"]["text"]


def test_a_video_is_looked_up_in_the_index(run_cli, standin, filmed, tmp_path):
    video, report_json = filmed
    index = tmp_path / "shared.sqlite"
    server = standin([{"contains": "", "answer": "It sweeps [00:04]."}])
    missing = ask(run_cli, server, video, "What does the beam do?", "--index", index)
    assert missing.code == 1 and "no index here" in missing.stderr
    assert run_cli("index", report_json.parent, "--index", index).code == 0
    done = ask(run_cli, server, video, "What does the beam do?", "--index", index, "--json")
    assert done.code == 0, done
    assert [c["t"] for c in json.loads(done.stdout)["citations"]] == [4.0]
    other = tmp_path / "other.mp4"
    other.write_bytes(b"")
    unknown = ask(run_cli, server, other, "What does the beam do?", "--index", index)
    assert unknown.code == 2 and f"{other}: not in the index" in unknown.stderr
    gone = ask(run_cli, server, tmp_path / "nothing-here", "What?")
    assert gone.code == 2 and "no such file or folder" in gone.stderr and "Traceback" not in gone.stderr
