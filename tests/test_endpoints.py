"""The endpoint images: the shims as RunPod's SDK runs them (its local `test_input.json`
mode), and, without a Docker engine, what each Dockerfile's build depends on: its Python
layer rebuilt from exactly the files its COPY lines name (dockerfile_replay.py), and its
base image's Python held to pyproject's requires-python (endpoints/base_images.yaml)."""

import ast
import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.specifiers import SpecifierSet

from dockerfile_replay import BuildFailed, instructions, provided_extras, replay
from text_match import TINY_EN_MAX_WER, assert_words

ROOT = Path(__file__).resolve().parent.parent
ENV = {"RUNPOD_LOG_LEVEL": "INFO", "VIDAGENT_YOLO_MODEL": "offline:yolo11n-random",
       "VIDAGENT_WHISPER_MODEL": "offline:tiny.en"}
IMAGES = ("yolo", "whisper", "segment")
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def run_handler(name: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "handler.py", *args], cwd=ROOT / "endpoints" / name,
        capture_output=True, text=True, timeout=300, env={**os.environ, **ENV},
    )


@pytest.mark.slow
@pytest.mark.parametrize("name", IMAGES)
def test_handler_runs_its_test_input(name, sample_truth):
    if name == "segment":  # its clip is made at build time, as the Dockerfile does
        made = subprocess.run([sys.executable, "make_test_clip.py", "test_clip.mp4"], cwd=ROOT / "endpoints" / name,
                              capture_output=True, text=True, timeout=120)
        assert made.returncode == 0, made.stderr
    proc = run_handler(name)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-3000:]
    assert "completed successfully" in log
    if name == "yolo":
        assert "'results': [{'width': 160" in log
    elif name == "segment":  # 4 s of a moving bar and a tone: frames of both kinds, no words
        kinds = set(re.findall(r"\{'kind': '(detect|caption)', 'pts': \d+, 't': [\d.]+, 'width': 320", log))
        assert kinds == {"detect", "caption"}, log[-3000:]
    else:  # the test input is the sample's speech: its words, however this machine spells them
        heard = re.search(r"'transcription': (['\"])(.*?)\1", log)
        assert heard, log[-3000:]
        assert_words(heard.group(2), sample_truth["text"], max_wer=TINY_EN_MAX_WER)


@pytest.mark.slow
def test_bad_input_is_a_clean_job_error():
    proc = run_handler("yolo", "--test_input", json.dumps({"input": {"images": ["%%%"]}}))
    log = proc.stdout + proc.stderr
    assert proc.returncode == 1
    assert "failed with error: image 0: not valid base64" in log
    assert "Traceback" not in log


@pytest.mark.slow
@pytest.mark.parametrize("name", ["yolo", "whisper", "segment"])
def test_test_input_matches_the_worker_contract(name):
    from vidagent.workers import segment, whisper, yolo

    model = {"yolo": yolo.YoloInput, "whisper": whisper.WhisperInput, "segment": segment.SegmentJob}[name]
    job = json.loads((ROOT / "endpoints" / name / "test_input.json").read_text())
    model.model_validate(job["input"])


# -- the images' builds, without Docker ------------------------------------------------------


def handler_imports(handler: Path) -> list[str]:
    """The vidagent modules the handler imports (`from vidagent.workers import a, b` → both)."""
    modules = []
    for node in ast.walk(ast.parse(handler.read_text())):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("vidagent"):
            modules += [f"{node.module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            modules += [alias.name for alias in node.names if alias.name.startswith("vidagent")]
    return modules


@pytest.mark.parametrize("name", IMAGES)
def test_the_python_layer_builds_from_exactly_what_the_dockerfile_copies(name, tmp_path):
    image = replay(ROOT / "endpoints" / name / "Dockerfile", ROOT, tmp_path)
    assert image.wheels, "the Dockerfile never pip-installs the package"
    for wheel, extras in image.wheels:
        assert extras <= provided_extras(wheel), f"extras the package does not have: {extras - provided_extras(wheel)}"
    site = tmp_path / "site-packages"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--target", str(site),
                    str(image.wheels[-1][0])], check=True)
    for forced in PYPROJECT["tool"]["hatch"]["build"]["targets"]["wheel"]["force-include"].values():
        assert (site / forced).exists(), f"the wheel lacks {forced}"

    # The handler as CMD starts it: its folder (WORKDIR) first on sys.path, then site-packages.
    app = tmp_path / "fs" / image.workdir.lstrip("/")
    script = image.cmd[-1]
    assert image.cmd[0] == "python" and (app / script).is_file(), image.cmd
    modules = handler_imports(app / script)
    assert modules
    if name == "segment" and not (ROOT / "vidagent" / "workers" / "segment.py").exists():
        pytest.skip("the handler imports vidagent/workers/segment.py, which the segment worker's branch adds")
    probe = (f"import sys, importlib; sys.path[:0] = [{str(app)!r}, {str(site)!r}]\n"
             f"for m in {modules!r}: importlib.import_module(m)\n"
             "import vidagent; print(vidagent.__file__)")
    proc = subprocess.run([sys.executable, "-I", "-c", probe], capture_output=True, text=True, cwd=tmp_path,
                          env={**os.environ, **ENV, "PYTHONPATH": ""})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert Path(proc.stdout.strip()).is_relative_to(tmp_path)  # the image's copy, not this checkout's


def test_the_replay_fails_where_the_build_would(tmp_path):
    """The Dockerfiles' old mistake: the package built from pyproject.toml, README.md and
    vidagent/ alone, while pyproject force-includes files from configs/."""
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text("FROM python:3.11-slim\nWORKDIR /app\nCOPY pyproject.toml README.md ./\n"
                          "COPY vidagent ./vidagent\nRUN pip install --no-deps .\n")
    with pytest.raises(BuildFailed, match="Forced include not found"):
        replay(dockerfile, ROOT, tmp_path / "scratch")
    dockerfile.write_text("FROM python:3.11-slim\nCOPY endpoints/nowhere.py ./\n")
    with pytest.raises(BuildFailed, match="COPY endpoints/nowhere.py: not in the build context"):
        replay(dockerfile, ROOT, tmp_path / "scratch2")
    dockerfile.write_text("FROM python:3.11-slim\nCOPY tests/conftest.py ./\n")  # .dockerignore leaves tests/ out
    with pytest.raises(BuildFailed, match="left out by .dockerignore"):
        replay(dockerfile, ROOT, tmp_path / "scratch3")


def base_images() -> dict:
    return yaml.safe_load((ROOT / "endpoints" / "base_images.yaml").read_text())


@pytest.mark.parametrize("name", IMAGES)
def test_the_base_images_python_satisfies_requires_python(name):
    steps = instructions((ROOT / "endpoints" / name / "Dockerfile").read_text())
    base = next(args.split()[0] for step, args in steps if step == "FROM")
    table = base_images()
    assert base in table, f"{base}: add it to endpoints/base_images.yaml, with its Python and where that was read"
    entry = table[base]
    assert entry["source"].strip()
    requires = PYPROJECT["project"]["requires-python"]
    assert SpecifierSet(requires).contains(entry["python"]), f"{base} runs Python {entry['python']}: not {requires}"
    if entry["from"].startswith("apt "):  # the Python the table speaks of is the one the Dockerfile installs
        package = entry["from"].split()[1]
        runs = " ".join(args for step, args in steps if step == "RUN")
        assert f" {package} " in f" {runs} ", f"{name}'s Dockerfile does not apt-get install {package}"


def test_every_base_image_entry_says_where_its_python_was_read():
    for base, entry in base_images().items():
        assert {"python", "from", "source"} <= entry.keys(), base
        assert SpecifierSet(f"=={entry['python']}.*")  # a version, e.g. "3.12"


def test_ultralytics_offline_switch_is_spelled_the_way_every_version_reads_it(tmp_path):
    """Older ultralytics (ultralytics/utils/__init__.py at commit 002217d: is_online()) skips
    the network only when YOLO_OFFLINE is 'true', case aside, so '1' did nothing; newer ones
    (8.4.190, installed here) read it with env_bool, which takes 'true' too."""
    env = {}
    for step, args in instructions((ROOT / "endpoints" / "yolo" / "Dockerfile").read_text()):
        if step == "ENV":
            env.update(dict(part.split("=", 1) for part in args.split()))
    assert env["YOLO_OFFLINE"].lower() == "true"
    assert env["YOLO_VERBOSE"].lower() in ("true", "false")


def test_the_segment_image_can_decode_on_nvdec():
    """PyAV's wheel (the one the image installs, as here) carries FFmpeg's NVDEC decoders
    and the cuda hwaccel; they need the driver's libnvcuvid, which the NVIDIA container
    runtime mounts only for the `video` capability. (Decoding on a GPU is not tried here:
    this machine has none.)"""
    import av
    from av.codec.hwaccel import hwdevices_available

    assert {"h264_cuvid", "hevc_cuvid"} <= set(av.codecs_available)
    assert "cuda" in hwdevices_available()
    env = {}
    for step, args in instructions((ROOT / "endpoints" / "segment" / "Dockerfile").read_text()):
        if step == "ENV":
            env.update(dict(part.split("=", 1) for part in args.split()))
    assert "video" in env["NVIDIA_DRIVER_CAPABILITIES"].split(",")
    assert {"VIDAGENT_YOLO_MODEL", "VIDAGENT_WHISPER_MODEL"} <= env.keys()  # both models baked and named


def test_the_segment_test_clip_is_what_its_test_input_says(tmp_path):
    """The image writes its test clip at build time (make_test_clip.py, PyAV only); the
    facts test_input.json gives the worker are that clip's, as probe reads them."""
    from vidagent.media.probe import probe

    folder = ROOT / "endpoints" / "segment"
    clip = tmp_path / "test_clip.mp4"
    subprocess.run([sys.executable, str(folder / "make_test_clip.py"), str(clip)], check=True, timeout=120)
    job = json.loads((folder / "test_input.json").read_text())["input"]
    facts = probe(clip)
    assert job["url"] == clip.name and job["end"] <= facts.duration_s + 0.1
    given = job["media"]
    for field in ("width", "height", "has_audio", "has_video", "video_codec"):
        assert given[field] == getattr(facts, field), field
    assert abs(given["fps"] - facts.fps) < 1e-3 and abs(given["duration_s"] - facts.duration_s) < 0.05
