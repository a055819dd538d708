"""A light install: the client without any extra, as `pip install -e .` in a clone gives it.

The interpreter is a fresh venv (no system site-packages) whose only packages are links to
the distributions installed here that vidagent's core dependencies need, found from their
own metadata, recursively; vidagent itself is this checkout, with its editable install's
record. So what it can import is what a light install has: no torch, ultralytics,
faster-whisper, transformers, runpod, aiohttp or psycopg. Each command that needs one of
them says in one line which extra to install, and nothing runs.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
import sysconfig
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from conftest import ROOT, SAMPLE
from index_fixtures import write_reports
from vidagent.extras import FEATURES, from_import_error

EXTRA_LIBRARIES = {m for _, _, modules in FEATURES.values() for m in modules}


def core_distributions() -> dict[str, metadata.Distribution]:
    """vidagent and every distribution its dependencies (no extras) pull in."""
    found: dict[str, metadata.Distribution] = {}
    todo = [(Requirement("vidagent"), ())]
    while todo:
        requirement, extras = todo.pop()
        name = canonicalize_name(requirement.name)
        if name in found:
            continue
        found[name] = dist = metadata.distribution(requirement.name)
        for line in dist.requires or []:
            needed = Requirement(line)
            wanted = [""] + list(extras)  # a dependency's own extras only when it was asked for with them
            if needed.marker is None or any(needed.marker.evaluate({"extra": e}) for e in wanted):
                todo.append((needed, tuple(needed.extras)))
    return found


@pytest.fixture(scope="module")
def light(tmp_path_factory):
    """The light venv's python."""
    folder = tmp_path_factory.mktemp("light")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder / "venv")], check=True)
    packages = folder / "site"
    packages.mkdir()
    for dist in core_distributions().values():
        for file in dist.files or []:
            top = file.parts[0]
            if top == ".." or top.endswith(".pth") or (packages / top).exists():
                continue  # scripts in bin/, and the editable install's path hook (this checkout is added below)
            source = Path(dist.locate_file(top))
            if source.exists():
                (packages / top).symlink_to(source)
    python = folder / "venv" / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    Path(purelib, "light.pth").write_text(f"{packages}\n{ROOT}\n")
    return python


def vidagent(python: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(python), "-m", "vidagent", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=120)


def test_the_light_venv_has_the_client_and_no_extra(light):
    probe = ("import importlib.util as u, json, vidagent, av, typer, openai;"
             f"print(json.dumps([m for m in {sorted(EXTRA_LIBRARIES)!r} if u.find_spec(m)]), vidagent.__file__)")
    seen = subprocess.run([str(light), "-c", probe], capture_output=True, text=True, timeout=60)
    assert seen.returncode == 0, seen.stderr
    assert seen.stdout.split() == ["[]", str(ROOT / "vidagent" / "__init__.py")]
    assert sysconfig.get_paths()["purelib"] not in subprocess.run(
        [str(light), "-c", "import sys; print(sys.path)"], capture_output=True, text=True).stdout


@pytest.mark.parametrize("args, line", [
    (("analyze", SAMPLE, "--backend", "local", "--no-transcribe"), "YOLO needs the local extra"),
    (("analyze", SAMPLE, "--backend", "local", "--no-detect"), "Whisper needs the local extra"),
    (("ask", "REPORT", "Who opened the door?"), "The local VLM needs the local extra"),
    (("serve",), "vidagent serve needs the serve extra"),
    (("search", "fox", "--index", "postgresql://localhost/vidagent"), "A postgresql:// index needs the postgres extra"),
])
def test_a_command_that_needs_an_extra_names_it_in_one_line(light, tmp_path_factory, tmp_path, args, line):
    if "REPORT" in args:  # a question that the report's moments answer, so a model would be asked
        report = write_reports(tmp_path_factory.mktemp("reports"))["harbour"]
        args = tuple(report if a == "REPORT" else a for a in args)
    done = vidagent(light, tmp_path, *args)
    assert done.returncode == 2, done.stderr
    extra = line.split(" needs the ")[1].split()[0]
    # The command that adds the extra to this install: the checkout it was installed from, editable.
    said = re.fullmatch(rf"vidagent: error: {re.escape(line)}: pip install -e '{re.escape(str(ROOT))}\[{extra}\]' "
                        r"\((\w+) is not installed\)\n", done.stderr)
    assert said and said.group(1) in EXTRA_LIBRARIES, done.stderr
    assert list(tmp_path.iterdir()) == []  # nothing ran, nothing was written


def test_what_needs_no_extra_still_works(light, tmp_path):
    estimate = vidagent(light, tmp_path, "cost-estimate", SAMPLE)
    assert estimate.returncode == 0, estimate.stderr
    assert vidagent(light, tmp_path, "schema").returncode == 0


def test_an_import_no_check_caught_is_mapped_too():
    mapped = from_import_error(ModuleNotFoundError("No module named 'ultralytics.engine'", name="ultralytics.engine"))
    assert mapped is not None and str(mapped).startswith("YOLO needs the local extra: pip install ")
    assert from_import_error(ModuleNotFoundError("No module named 'nothing_we_know'", name="nothing_we_know")) is None


def readme_install_lines() -> list[str]:
    install = (ROOT / "README.md").read_text().split("\n## Install\n", 1)[1].split("\n## ", 1)[0]
    block = install.split("```sh\n", 1)[1].split("```", 1)[0]
    return [line.split("#")[0].strip() for line in block.splitlines() if line.startswith("pip install")]


@pytest.mark.parametrize("line", readme_install_lines())
def test_the_readme_install_lines_work_in_a_clone(line):
    """As written, in the repository's root: pip builds the package from the clone and every
    extra named exists (pip itself only warns about an unknown one). --dry-run, no index
    and no build isolation keep it offline; the dependencies are the light venv's business."""
    args = shlex.split(line)[2:]
    extras = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"])
    for spec in (a for a in args if a.startswith(".")):
        named = re.fullmatch(r"\.(?:\[([\w,]+)\])?", spec)
        assert named, spec
        assert set(filter(None, (named.group(1) or "").split(","))) <= extras, spec
    done = subprocess.run([sys.executable, "-m", "pip", "install", "--dry-run", "--no-index", "--no-build-isolation",
                           "--no-deps", *args], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert done.returncode == 0 and "Would install vidagent-" in done.stdout, done.stdout + done.stderr
