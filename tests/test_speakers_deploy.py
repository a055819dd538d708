"""The whisper image's speaker models: the Hugging Face token reaches `docker build` as a
build secret, by variable name only, and the Dockerfile mounts it in one RUN and bakes
pyannote's pipeline where the worker looks for it."""

import re

import pytest

from conftest import ROOT
from vidagent.deploy.docker import Docker, build_secrets
from vidagent.workers import diarize

WHISPER = ROOT / "endpoints" / "whisper" / "Dockerfile"


def dry_build(monkeypatch, token: str | None) -> str:
    if token is None:
        monkeypatch.delenv("HF_TOKEN", raising=False)
    else:
        monkeypatch.setenv("HF_TOKEN", token)
    shown: list[str] = []
    Docker(ROOT, lambda line: None, True, shown.append).build(WHISPER, "registry.example/vidagent-whisper:t")
    [command] = shown
    return command


def test_the_token_goes_to_docker_build_as_a_secret_by_name(monkeypatch):
    command = dry_build(monkeypatch, "hf_NOT_TO_BE_SEEN")
    assert "--secret=id=hf_token,env=HF_TOKEN" in command
    assert "hf_NOT_TO_BE_SEEN" not in command
    assert "--secret" not in dry_build(monkeypatch, None)  # no token: the offline model only


def test_the_dockerfile_mounts_the_secret_and_bakes_where_the_worker_reads(monkeypatch):
    text = WHISPER.read_text()
    assert text.startswith("# syntax=docker/dockerfile:1")  # BuildKit syntax: secret mounts
    assert build_secrets(WHISPER) == ["hf_token"]
    assert "ARG HF_TOKEN" not in text and "ENV HF_TOKEN" not in text  # never a layer's metadata
    baked = re.search(r"VIDAGENT_PYANNOTE_PIPELINE=(\S+)", text).group(1)
    assert f"local_dir='{baked}'" in text
    assert diarize.PYANNOTE_PIPELINE in text
    # Without the baked folder, `auto` falls back to the offline model.
    monkeypatch.setenv("VIDAGENT_PYANNOTE_PIPELINE", "/nonexistent")
    assert diarize.chosen_backend(diarize.DiarizeOptions()) == "offline"


def test_cost_estimate_adds_diarization_time_on_the_whisper_endpoint(run_cli):
    import json

    import yaml

    per_second = yaml.safe_load((ROOT / "configs" / "profile.yaml").read_text())["whisper"]["diarize_seconds_per_unit"]
    assert per_second > 0

    def whisper_gpu_s(*flags: str) -> float:
        run = run_cli("cost-estimate", "--duration", "1h", "--no-detect", "--json", *flags)
        assert run.code == 0, run
        return json.loads(run.stdout)["configured"]["endpoints"]["whisper"]["gpu_s"]

    assert whisper_gpu_s("--speakers") - whisper_gpu_s() == pytest.approx(3600 * per_second, abs=0.01)
