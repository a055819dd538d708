"""The docker CLI (build, push) and the images' tags, which carry the git revision."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import tomllib
from collections import deque
from pathlib import Path
from typing import Callable

from .. import __version__
from ..errors import ConfigError, DeployError

DOCKER = "docker"  # resolved on PATH with shutil.which when deploy runs
PLATFORM = "linux/amd64"  # RunPod's GPU hosts

_DAEMON_DOWN = ("cannot connect to the docker daemon", "is the docker daemon running", "error during connect")
_PUSH_REFUSED = ("denied", "unauthorized", "no basic auth credentials", "authentication required")


def build_secrets(dockerfile: Path) -> list[str]:
    """Ids of the build secrets a Dockerfile mounts."""
    try:
        text = dockerfile.read_text(encoding="utf-8")
    except OSError:
        return []
    return list(dict.fromkeys(re.findall(r"--mount=type=secret,id=([A-Za-z0-9_]+)", text)))


class Docker:
    """The docker CLI in a subprocess; its output goes to `say` as it comes. In a dry run
    every command is shown instead of run."""

    def __init__(self, context: Path, say: Callable[[str], None], dry_run: bool, show: Callable[[str], None]):
        self.context = context
        self.say = say
        self.dry_run = dry_run
        self.show = show
        self.binary = shutil.which(DOCKER)

    def check(self) -> None:
        """Fail before anything changes: no docker, or no daemon behind it."""
        if self.dry_run:
            return
        if self.binary is None:
            raise ConfigError(f"docker is not installed (no {DOCKER!r} on PATH): install Docker to build the "
                              "images, or deploy only the VLM with --only vlm")
        self._run(["info", "--format", "{{.ServerVersion}}"], echo=False)

    def build(self, dockerfile: Path, image: str) -> None:
        """Build secrets the Dockerfile mounts (`--mount=type=secret,id=hf_token`) are passed
        from the environment variable of the same name in capitals (HF_TOKEN), by name only:
        the value never appears in a command, a log or the image."""
        secrets = [f"--secret=id={sid},env={sid.upper()}" for sid in build_secrets(dockerfile)
                   if os.environ.get(sid.upper())]
        self._run(["build", "--platform", PLATFORM, *secrets, "-f", str(dockerfile), "-t", image, str(self.context)])

    def push(self, image: str) -> None:
        self._run(["push", image], image=image)

    def _run(self, args: list[str], echo: bool = True, image: str | None = None) -> None:
        if self.dry_run:
            self.show(shlex.join([DOCKER, *args]))
            return
        tail: deque[str] = deque(maxlen=40)
        # BuildKit: the only builder that mounts build secrets (`RUN --mount=type=secret`).
        proc = subprocess.Popen([self.binary, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, errors="replace", cwd=self.context,
                                env={**os.environ, "DOCKER_BUILDKIT": "1"})
        assert proc.stdout is not None
        for line in proc.stdout:
            line = line.rstrip("\n")
            tail.append(line)
            if echo:
                self.say(line)
        code = proc.wait()
        if code != 0:
            raise _docker_failure(args, code, list(tail), image)


def _docker_failure(args: list[str], code: int, lines: list[str], image: str | None) -> DeployError:
    """One line that says what to do, from what docker printed."""
    daemon = _line_with(lines, _DAEMON_DOWN)
    if daemon:
        return DeployError(f"the Docker daemon is not running ({daemon}): start it (sudo systemctl start docker, "
                           "or open Docker Desktop) and run deploy again")
    refused = _line_with(lines, _PUSH_REFUSED) if args[0] == "push" else None
    if refused and image:
        host = registry_host(image)
        return DeployError(f"the registry refused the push of {image} ({refused}): run `docker login {host}` "
                           "as an account that may push there, then run deploy again")
    command = shlex.join([DOCKER, *args])
    return DeployError(f"`{command}` failed with exit code {code}: {last_line(lines) or 'no output'}")


def _line_with(lines: list[str], needles: tuple[str, ...]) -> str | None:
    for line in lines:
        if any(needle in line.lower() for needle in needles):
            return line.strip()[:300]
    return None


def last_line(lines: list[str]) -> str:
    for line in reversed(lines):
        if line.strip():
            return line.strip()[:300]
    return ""


def registry_host(image: str) -> str:
    """docker login's argument: the first component when it names a host, else Docker Hub."""
    first = image.split("/", 1)[0]
    return first if ("." in first or ":" in first or first == "localhost") and "/" in image else "docker.io"


def image_tag(context: Path) -> str:
    """VERSION-SHORTSHA, plus -dirty when the checkout has changes (untracked files count:
    they may be in the build context)."""
    revision = _git(context, "rev-parse", "--short", "HEAD")
    dirty = _git(context, "status", "--porcelain")
    return f"{_package_version(context)}-{revision}" + ("-dirty" if dirty else "")


def _package_version(context: Path) -> str:
    """The version of the package being built, which need not be the one running."""
    try:
        return tomllib.loads((context / "pyproject.toml").read_text())["project"]["version"]
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        return __version__


def _git(context: Path, *args: str) -> str:
    try:
        proc = subprocess.run(["git", "-C", str(context), *args], capture_output=True, text=True)
    except FileNotFoundError:
        raise DeployError("git is not installed: image tags carry the git revision") from None
    if proc.returncode != 0:
        reason = last_line(proc.stderr.splitlines()) or f"exit code {proc.returncode}"
        raise DeployError(f"cannot tag the images: {context} is not a git checkout ({reason})")
    return proc.stdout.strip()
