"""Measured against published: each endpoint's figure says where it comes from, and
`cost-estimate --profile-from REPORT...` turns real runs' usage into a profile."""

import json

import pytest
import typer
from typer.testing import CliRunner

from conftest import ROOT
from vidagent.cli.cost import cost_estimate_command
from vidagent.config import SECRET_FIELDS, Settings
from vidagent.cost import Figure, MediaFacts, estimate, load_prices, load_profile, parse_prices, parse_profile
from vidagent.cost.measured import profile_from_reports, profile_yaml
from vidagent.errors import ConfigError
from vidagent.media.probe import probe
from vidagent.report.model import EndpointUsage, Report

PRICES = load_prices(ROOT / "configs" / "prices.yaml")
PUBLISHED = load_profile(ROOT / "configs" / "profile.yaml")


def invoke(*args):
    app = typer.Typer()
    app.command()(cost_estimate_command)
    return CliRunner().invoke(app, [str(a) for a in args], terminal_width=200)


@pytest.fixture(autouse=True)
def no_dotenv(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


@pytest.mark.parametrize("gpu, pool, expected", [
    ("NVIDIA H200", "AMPERE_24", False),
    ("NVIDIA GeForce RTX 3090", "AMPERE_24", True),
    ("NVIDIA RTX A5000", "AMPERE_24", True),
    ("NVIDIA L40S", "ADA_48_PRO", True),
    ("NVIDIA A100-SXM4-80GB", "AMPERE_80", True),
    ("NVIDIA H100 80GB HBM3", "AMPERE_80", False),
    ("NVIDIA H100 80GB HBM3", "ADA_80_PRO", True),
    ("A5000 / 3090 / L4 (AMPERE_24)", "AMPERE_24", True),
])
def test_a_gpu_name_is_matched_to_the_pool_s_cards(gpu, pool, expected):
    assert PRICES.pools[pool].has_gpu(gpu) is expected


def measured_profile(gpu="NVIDIA H200"):
    """The shipped profile with YOLO's figure measured on `gpu`."""
    yolo = PUBLISHED.yolo.model_copy(update=dict(provenance="measured", gpu=gpu, date="2026-12-10"))
    return PUBLISHED.model_copy(update={"yolo": yolo})


def test_each_endpoint_says_whether_its_seconds_are_measured_or_published():
    profile = measured_profile()
    result = estimate(MediaFacts.assumed(600), Settings(caption=True), PRICES, profile)

    yolo, whisper = result.figures["yolo"], result.figures["whisper"]
    assert (yolo.provenance, yolo.gpu, yolo.date, yolo.on_pool_gpu) == ("measured", "NVIDIA H200", "2026-12-10", False)
    assert yolo.short() == "measured H200 2026-12-10"
    assert whisper.provenance == "published" and whisper.short() == "published 2026-11-27"
    notes = "\n".join(result.notes)
    assert "yolo: measured on NVIDIA H200, 2026-12-10" in notes
    assert "priced as AMPERE_24 (L4, A5000, 3090), other cards than it was measured on" in notes
    assert "whisper: published figure (github.com, huggingface.co), scaled to A5000 / 3090 / L4 (AMPERE_24)" in notes
    assert "vlm: published figure (github.com, dev.to)" in notes


def test_measured_on_the_pool_s_own_card_needs_no_warning():
    profile = measured_profile("NVIDIA RTX A5000")
    figure = Figure.of("yolo", profile, PRICES)
    assert figure.on_pool_gpu and "priced as" not in figure.line("yolo", PRICES)


def test_the_table_shows_where_each_figure_comes_from(tmp_path):
    path = tmp_path / "measured.yaml"
    path.write_text(profile_yaml(measured_profile(), ["test"]))
    result = invoke("--duration", "10m", "--profile", path)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert any("yolo" in line and "measured H200 2026-12-10" in line for line in lines)
    assert any("whisper" in line and "published 2026-11-27" in line for line in lines)


# -- profiles from reports ---------------------------------------------------------------


def report(sample, tmp_path, name, usage, backend="runpod", created="2026-12-11T10:00:00Z", **settings):
    defaults = dict(backend=backend, runpod_yolo_endpoint_id="y1", runpod_whisper_endpoint_id="w1",
                    runpod_vlm_endpoint_id="v1")
    effective = Settings(**{**defaults, **settings}).model_dump(mode="json", exclude={"out", *SECRET_FIELDS})
    made = Report(vidagent_version="test", created_at=created, media=probe(sample), settings=effective,
                  usage={e: EndpointUsage(**u) for e, u in usage.items()})
    path = tmp_path / name / "report.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(made.model_dump_json())
    return path


def test_profile_from_reports_measures_seconds_per_unit(sample, tmp_path):
    # The sample: 10 s with audio. Two runs on RunPod, no VLM.
    report(sample, tmp_path / "out", "a", {"yolo": dict(jobs=4, items=100, execution_s=2.0),
                                           "whisper": dict(jobs=1, items=1, execution_s=1.5)})
    report(sample, tmp_path / "out", "b", {"yolo": dict(jobs=4, items=100, execution_s=3.0),
                                           "whisper": dict(jobs=1, items=1, execution_s=0.5)},
           created="2026-12-12T09:00:00Z")
    written = tmp_path / "from-reports.yaml"
    result = invoke("--profile-from", tmp_path / "out", "--output", written)
    assert result.exit_code == 0, result.output
    profile = parse_profile(written.read_text(), str(written))

    # yolo: 5 s over 200 frames; whisper: 2 s over 20 s of audio.
    assert profile.yolo.seconds_per_unit == pytest.approx(0.025)
    assert profile.whisper.seconds_per_unit == pytest.approx(0.1)
    for endpoint in ("yolo", "whisper"):
        measured = profile.of(endpoint)
        assert measured.provenance == "measured" and measured.seconds_per_request == 0
        assert measured.date == "2026-12-12" and "api.runpod.ai" in measured.source
        assert measured.gpu == "RunPod pool AMPERE_24 (L4, A5000, 3090)"
        assert measured.cold_start_s == PUBLISHED.of(endpoint).cold_start_s  # not in executionTime
    assert profile.vlm == PUBLISHED.vlm  # no VLM usage: the published figure stays
    assert "vlm: no usable usage" in written.read_text()

    # The profile it wrote prices the next estimate, and says which figures are whose.
    data = json.loads(invoke("--duration", "1h", "--json", "--profile", written).output)
    assert data["figures"]["yolo"]["provenance"] == "measured"
    assert data["figures"]["yolo"]["on_pool_gpu"] is True
    assert data["figures"]["vlm"]["provenance"] == "published"
    # 36,000 frames in 1,125 jobs at 0.025 s a frame, no per-request seconds.
    assert data["configured"]["endpoints"]["yolo"]["gpu_s"] == pytest.approx(900.0)


def test_local_and_cached_usage_measure_something_else(sample, tmp_path):
    local = report(sample, tmp_path, "local", {"yolo": dict(jobs=4, items=100, execution_s=9.0)}, backend="local")
    auto = report(sample, tmp_path, "auto", {"yolo": dict(jobs=4, items=100, execution_s=9.0)},
                  backend="auto", runpod_yolo_endpoint_id=None)
    cached = report(sample, tmp_path, "cached", {"yolo": dict(jobs=4, cached_jobs=1, items=100, execution_s=1.0)})
    good = report(sample, tmp_path, "good", {"vlm": dict(jobs=3, items=3, execution_s=6.0)})
    reports = [(str(p), json.loads(p.read_text())) for p in (local, auto, cached, good)]

    made = profile_from_reports(reports, PUBLISHED, PRICES)
    assert made.profile.yolo == PUBLISHED.yolo
    assert made.profile.vlm.seconds_per_unit == pytest.approx(2.0)
    assert made.profile.vlm.seconds_per_summary == pytest.approx(2.0)
    notes = "\n".join(made.notes)
    assert f"{local}: yolo left out: ran on the local backend" in notes
    assert f"{auto}: yolo left out: ran on the local backend" in notes
    assert f"{cached}: yolo left out: 1 of its 4 jobs came from the cache" in notes

    with pytest.raises(ConfigError, match="no report has usage measured on RunPod"):
        profile_from_reports(reports[:3], PUBLISHED, PRICES)


def test_cold_starts_a_report_counts_replace_the_assumed_ones(sample, tmp_path):
    path = report(sample, tmp_path, "r", {"yolo": dict(jobs=4, items=100, execution_s=2.0)})
    data = json.loads(path.read_text())
    data["usage"]["yolo"].update(cold_starts=2, cold_start_s=30.0)  # a report that counts them
    made = profile_from_reports([("r", data)], PUBLISHED, PRICES)
    assert (made.profile.yolo.cold_start_s, made.profile.yolo.cold_starts_per_run) == (15.0, 2)


@pytest.mark.parametrize("args, message", [
    (("--profile-from",), "--profile-from needs REPORT files or folders"),
    (("--profile-from", "missing.json"), "missing.json: report not found"),
    (("--duration", "1h", "--output", "x.yaml"), "--output writes a profile: it goes with --profile-from"),
])
def test_profile_from_errors_are_one_line(args, message):
    result = invoke(*args)
    assert isinstance(result.exception, ConfigError), result.output
    assert str(result.exception).startswith(message) and "\n" not in str(result.exception)


def test_a_file_that_is_not_a_report_is_named(tmp_path):
    notes = tmp_path / "notes.json"
    notes.write_text('{"hello": 1}')
    empty = tmp_path / "empty"
    empty.mkdir()
    for target, message in ((notes, f"{notes}: not a vidagent report"), (empty, f"{empty}: folder holds no report.json")):
        result = invoke("--profile-from", target)
        assert isinstance(result.exception, ConfigError) and str(result.exception).startswith(message)


def test_a_run_prices_with_the_shipped_table_by_default():
    from vidagent.config import Settings
    from vidagent.cost import load_pricing

    prices, _ = load_pricing(Settings())  # what analyze's budget and usd use
    assert prices == PRICES
    assert parse_prices((ROOT / "configs" / "prices.yaml").read_text(), "p") == PRICES
