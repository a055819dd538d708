"""No silent backend: each endpoint's backend is decided explicitly, shown, and recorded."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import OFFLINE_CONFIG
from vidagent.config import Settings, load_settings
from vidagent.errors import ConfigError
from vidagent.transports import decide_backends, make_transport

IDS = {"runpod_yolo_endpoint_id": "ep-y", "runpod_whisper_endpoint_id": "ep-w", "runpod_vlm_endpoint_id": "ep-v"}
ALL = ["yolo", "whisper", "vlm"]


def decide(endpoints=ALL, **settings):
    return decide_backends(Settings(**settings), endpoints)


def test_auto_is_local_with_no_ids_and_runpod_with_all():
    assert decide() == {"yolo": "local", "whisper": "local", "vlm": "local"}
    assert decide(**IDS) == {"yolo": "runpod", "whisper": "runpod", "vlm": "runpod"}
    assert decide(["yolo"], runpod_yolo_endpoint_id="ep-y") == {"yolo": "runpod"}
    assert decide(backend="local", **IDS) == dict.fromkeys(ALL, "local")


def test_a_partial_set_of_ids_is_one_line_naming_what_is_missing():
    with pytest.raises(ConfigError) as err:
        decide(runpod_yolo_endpoint_id="ep-y")
    message = str(err.value)
    assert message == ("RUNPOD_WHISPER_ENDPOINT_ID, RUNPOD_VLM_ENDPOINT_ID not set but yolo runs on RunPod: set it, "
                       "or run whisper,vlm here with --local-endpoints whisper,vlm (everything: --backend local)")
    with pytest.raises(ConfigError, match=r"^RUNPOD_YOLO_ENDPOINT_ID not set \(--backend runpod\)"):
        decide(["yolo"], backend="runpod")


def test_local_execution_of_the_rest_is_asked_for_explicitly():
    chosen = decide(runpod_yolo_endpoint_id="ep-y", local_endpoints=["whisper", "vlm"])
    assert chosen == {"yolo": "runpod", "whisper": "local", "vlm": "local"}
    assert decide(backend="runpod", local_endpoints=["yolo"], **IDS)["yolo"] == "local"  # local wins


def test_a_vlm_base_url_serves_the_vlm_whatever_the_ids():
    assert decide(vlm_base_url="http://localhost:8000/v1") == {"yolo": "local", "whisper": "local", "vlm": "openai"}
    with pytest.raises(ConfigError, match="RUNPOD_WHISPER_ENDPOINT_ID not set but yolo runs on RunPod"):
        decide(vlm_base_url="http://localhost:8000/v1", runpod_yolo_endpoint_id="ep-y")


def test_the_setting_has_a_flag_a_variable_and_a_yaml_key(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("local_endpoints: [vlm]\n")
    assert load_settings(config, environ={}).local_endpoints == ["vlm"]
    assert load_settings(environ={"VIDAGENT_LOCAL_ENDPOINTS": "yolo,whisper"}).local_endpoints == ["yolo", "whisper"]
    assert load_settings(environ={"VIDAGENT_LOCAL_ENDPOINTS": "whisper"}).local_endpoints == ["whisper"]
    assert load_settings(overrides={"local_endpoints": ["yolo"]}, environ={}).local_endpoints == ["yolo"]
    with pytest.raises(ConfigError, match="VIDAGENT_LOCAL_ENDPOINTS"):
        load_settings(environ={"VIDAGENT_LOCAL_ENDPOINTS": "yolo,gpu"})


def test_routes_are_labelled_for_the_display_and_the_report():
    settings = Settings(runpod_api_key="rp_k", runpod_yolo_endpoint_id="ep-y", local_endpoints=["whisper"],
                        vlm_base_url="http://localhost:8000/v1")
    assert make_transport(settings, ALL).backends == {"yolo": "runpod", "whisper": "local", "vlm": "openai:localhost:8000"}
    settings = Settings(runpod_api_key="rp_k", **IDS)
    assert make_transport(settings, ALL).backends == dict.fromkeys(ALL, "runpod")


def test_the_display_shows_the_backends_once(capsys):
    from vidagent.cli.progress import make_progress

    chosen = {"yolo": "runpod", "whisper": "local"}
    make_progress("lines").backends(chosen)
    assert capsys.readouterr().err == "backends: yolo runpod, whisper local\n"
    make_progress("json").backends(chosen)
    event = json.loads(capsys.readouterr().err)
    assert event["event"] == "backends" and event["backends"] == chosen
    make_progress("none").backends(chosen)
    assert capsys.readouterr().err == ""


def test_a_partial_set_of_ids_stops_analyze_before_anything_runs(run_cli, sample, tmp_path):
    result = run_cli("analyze", sample, "--out", tmp_path, "--config", OFFLINE_CONFIG, "--backend", "auto",
                     env={"RUNPOD_API_KEY": "rp_secret_x", "RUNPOD_YOLO_ENDPOINT_ID": "ep-y"})
    assert result.code == 2, result
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("vidagent: error: RUNPOD_WHISPER_ENDPOINT_ID not set but yolo runs on RunPod")
    assert "rp_secret_x" not in result.stderr and not (Path(tmp_path) / "sample").exists()


def test_a_local_run_records_its_backends_and_is_not_priced(analysed_sample):
    report = analysed_sample.report  # --no-cache: every stage ran here
    assert report["backends"] == {"yolo": "local", "whisper": "local"}
    assert report["usage"]["yolo"]["execution_s"] > 0 and report["usage"]["yolo"]["usd"] is None


def test_analyze_shows_the_backends_when_the_run_starts(analysed_sample):
    assert analysed_sample.result.stderr.splitlines()[0] == "backends: whisper local, yolo local"


def test_a_vlm_base_url_is_used_even_with_backend_local_unless_the_vlm_is_named_local():
    assert decide(backend="local", vlm_base_url="http://localhost:8000/v1")["vlm"] == "openai"
    assert decide(backend="local", vlm_base_url="http://localhost:8000/v1", local_endpoints=["vlm"])["vlm"] == "local"
