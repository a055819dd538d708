"""The Python layer of an endpoint image, rebuilt without Docker (there is no engine here).

`replay(dockerfile, context, scratch)` walks the Dockerfile's WORKDIR, COPY and RUN lines
with `scratch` standing for the image's file system: COPY takes exactly the files it names
from the build context (less what .dockerignore drops), `mkdir`/`touch`/`cd` in a RUN act
on the scratch tree, and each `pip install` of a local folder builds that folder's wheel
there with the project's own build backend (pip wheel --no-deps, as pip install would
first do). Other commands (apt-get, model downloads) are not Python-layer steps and are
skipped. What would fail the build's install fails here, with pip's own last line.
"""

from __future__ import annotations

import fnmatch
import json
import posixpath
import re
import shlex
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Image:
    base: str
    env: dict[str, str] = field(default_factory=dict)
    workdir: str = "/"
    wheels: list[tuple[Path, set[str]]] = field(default_factory=list)  # (wheel, extras asked for), in order
    cmd: list[str] = field(default_factory=list)


class BuildFailed(AssertionError):
    pass


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments), continuation lines joined, comments dropped."""
    result, pending = [], ""
    for line in text.splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        if line.lstrip().startswith("#"):  # a comment inside a continued instruction
            continue
        full = (pending + line).strip()
        pending = ""
        name, _, args = full.partition(" ")
        result.append((name.upper(), args.strip()))
    return result


def env_pairs(args: str) -> dict[str, str]:
    return dict(part.split("=", 1) for part in shlex.split(args))


def replay(dockerfile: Path, context: Path, scratch: Path) -> Image:
    root = scratch / "fs"
    root.mkdir(parents=True)
    wheelhouse = scratch / "wheels"
    ignore = _dockerignore(context)
    image: Image | None = None
    for name, args in instructions(dockerfile.read_text()):
        if name == "FROM":
            image = Image(base=args.split()[0])
            continue
        assert image is not None, f"{dockerfile}: {name} before FROM"
        if name == "ENV":
            image.env.update(env_pairs(args))
        elif name == "WORKDIR":
            image.workdir = posixpath.join(image.workdir, args)
            _inside(root, image.workdir).mkdir(parents=True, exist_ok=True)
        elif name == "COPY":
            _copy(shlex.split(args), context, ignore, root, image.workdir, dockerfile)
        elif name == "RUN":
            _run(args, root, image, wheelhouse, dockerfile)
        elif name == "CMD":
            image.cmd = _json_or_shell(args)
    assert image is not None, f"{dockerfile}: no FROM"
    return image


def _inside(root: Path, path: str) -> Path:
    return root / posixpath.normpath(path).lstrip("/")


def _dockerignore(context: Path) -> list[str]:
    path = context / ".dockerignore"
    patterns = [line.strip() for line in path.read_text().splitlines()] if path.exists() else []
    patterns = [p.rstrip("/") for p in patterns if p and not p.startswith("#")]
    assert not any(p.startswith("!") for p in patterns), "exceptions (!) in .dockerignore: teach dockerfile_replay.py them"
    return patterns


def ignored(rel: str, patterns: list[str]) -> bool:
    """Docker's rule: a path is left out when a pattern matches it or a folder above it."""
    parts = rel.split("/")
    for i in range(1, len(parts) + 1):
        prefix = "/".join(parts[:i])
        for pattern in patterns:
            if pattern.startswith("**/") and fnmatch.fnmatchcase(parts[i - 1], pattern[3:]):
                return True
            if fnmatch.fnmatchcase(prefix, pattern):
                return True
    return False


def _copy(words: list[str], context: Path, ignore: list[str], root: Path, workdir: str, dockerfile: Path) -> None:
    words = [w for w in words if not w.startswith("--")]
    assert not any(w.startswith("--from") for w in words)
    *sources, dest = words
    dest_path = _inside(root, posixpath.join(workdir, dest))
    into_folder = dest.endswith("/") or len(sources) > 1
    for source in sources:
        matches = sorted(context.glob(source)) if any(c in source for c in "*?[") else [context / source]
        matches = [m for m in matches if m.exists() and not ignored(m.relative_to(context).as_posix(), ignore)]
        if not matches:
            raise BuildFailed(f"{dockerfile.name}: COPY {source}: not in the build context (missing, or left out by .dockerignore)")
        for match in matches:
            if match.is_dir():
                _copy_tree(match, dest_path, context, ignore)
            else:
                target = dest_path / match.name if into_folder or dest_path.is_dir() else dest_path
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(match, target)


def _copy_tree(folder: Path, dest: Path, context: Path, ignore: list[str]) -> None:
    for path in folder.rglob("*"):
        if path.is_file() and not ignored(path.relative_to(context).as_posix(), ignore):
            target = dest / path.relative_to(folder)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)


def _run(command: str, root: Path, image: Image, wheelhouse: Path, dockerfile: Path) -> None:
    cwd = image.workdir
    for words in _commands(command):
        while words and "=" in words[0] and not words[0].startswith("-"):  # VAR=value command
            words = words[1:]
        if not words:
            continue
        program, args = words[0], words[1:]
        if program == "mkdir":
            for arg in (a for a in args if not a.startswith("-")):
                _inside(root, posixpath.join(cwd, arg)).mkdir(parents=True, exist_ok=True)
        elif program == "touch":
            for arg in args:
                _inside(root, posixpath.join(cwd, arg)).touch()
        elif program == "cd":
            cwd = posixpath.join(cwd, args[0])
        elif program in ("pip", "pip3") and args[:1] == ["install"]:
            _pip_install(args[1:], _inside(root, cwd), image, wheelhouse, dockerfile)


def _commands(command: str) -> list[list[str]]:
    lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    commands, current = [], []
    for token in lexer:
        if token in ("&&", ";", "||", "|"):
            commands.append(current)
            current = []
        else:
            current.append(token)
    commands.append(current)
    return commands


def _pip_install(args: list[str], cwd: Path, image: Image, wheelhouse: Path, dockerfile: Path) -> None:
    for arg in args:
        if arg.startswith("-"):
            continue
        folder, _, extras = arg.partition("[")
        if not (folder.startswith((".", "/"))):
            continue  # a package from the index: not this layer's concern
        out = wheelhouse / str(len(image.wheels))  # each build its own: the stub's wheel has the real one's name
        out.mkdir(parents=True)
        proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                               "--no-index", "-q", "-w", str(out), folder],
                              cwd=cwd, capture_output=True, text=True)
        if proc.returncode != 0:
            # The backend's exception (`FileNotFoundError: Forced include not found: …`), else pip's summary.
            lines = [line.strip() for line in proc.stderr.splitlines() if re.match(r"\s*\w+(Error|Exception): ", line)]
            lines = lines or [line.strip() for line in proc.stderr.splitlines() if "error" in line.lower()]
            raise BuildFailed(f"{dockerfile.name}: RUN pip install {arg}: {lines[-1] if lines else proc.stderr[-500:]}")
        (wheel,) = out.glob("*.whl")
        image.wheels.append((wheel, {e.strip() for e in extras.rstrip("]").split(",") if e.strip()}))


def provided_extras(wheel: Path) -> set[str]:
    with zipfile.ZipFile(wheel) as archive:
        metadata = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        lines = archive.read(metadata).decode().splitlines()
    return {line.split(":", 1)[1].strip() for line in lines if line.startswith("Provides-Extra:")}


def _json_or_shell(args: str) -> list[str]:
    return json.loads(args) if args.startswith("[") else ["/bin/sh", "-c", args]
