"""Many inputs, one run: find the videos, analyse each, write its reports, keep going.

A failure is confined to its video: the others still run and their reports are written
as soon as each finishes, so an interrupted run keeps everything it finished.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from .config import Settings
from .errors import ConfigError, VidagentError
from .media.audio import SAMPLE_RATE
from .pipeline import Progress, analyze_video
from .report.model import Report
from .report.writers import write_report
from .transports import make_transport

VIDEO_EXTENSIONS = frozenset(
    ".mp4 .m4v .mov .mkv .webm .avi .wmv .flv .mpg .mpeg .ts .mts .m2ts .3gp .ogv .mxf".split()
)


@dataclass
class Outcome:
    input: Path
    folder: Path | None = None
    report: Report | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


class BatchProgress(Progress, Protocol):
    def video_started(self, path: Path, position: int, total: int) -> None: ...

    def video_finished(self, outcome: Outcome) -> None: ...


def collect_inputs(paths: list[Path]) -> list[Outcome]:
    """Expand folders (recursively, hidden entries skipped); problems become failed outcomes."""
    found: list[Outcome] = []
    for path in paths:
        if path.is_dir():
            videos = sorted(
                p
                for p in path.rglob("*")
                if p.is_file()
                and p.suffix.lower() in VIDEO_EXTENSIONS
                and not any(part.startswith(".") for part in p.relative_to(path).parts)
            )
            if not videos:
                extensions = ", ".join(sorted(VIDEO_EXTENSIONS))
                found.append(Outcome(path, error=f"{path}: no video files found (looked for {extensions})"))
            found += [Outcome(video) for video in videos]
        elif not path.exists():
            found.append(Outcome(path, error=f"{path}: no such file or folder"))
        else:
            found.append(Outcome(path))
    return found


def output_folders(inputs: list[Path], out: Path) -> dict[Path, Path]:
    """`out/<file name without extension>`; a clash gets `-2`, `-3`, … in input order."""
    folders: dict[Path, Path] = {}
    taken: set[str] = set()
    for path in inputs:
        name = path.stem or path.name
        candidate, n = name, 1
        while candidate in taken:
            n += 1
            candidate = f"{name}-{n}"
        taken.add(candidate)
        folders[path] = out / candidate
    return folders


def needed_endpoints(settings: Settings) -> list[str]:
    stages = (("yolo", settings.detect), ("whisper", settings.transcribe),
              ("vlm", settings.caption or settings.summary))
    return [name for name, on in stages if on]


def check_payload_limits(settings: Settings, transport) -> None:
    if not settings.transcribe:
        return
    limit = transport.payload_limit("whisper")
    if limit is None:
        return
    # A chunk may run up to 20% past its target while the cut looks for a pause.
    wav_bytes = settings.audio_chunk_s * 1.2 * SAMPLE_RATE * 2
    if wav_bytes * 4 / 3 > limit:
        longest = int(limit * 3 / 4 / (1.2 * SAMPLE_RATE * 2))
        raise ConfigError(
            f"audio_chunk_s {settings.audio_chunk_s:g} makes jobs over the {transport.transport('whisper').name} "
            f"payload limit ({limit / 1e6:.0f} MB): use at most {longest}"
        )


async def run_batch(paths: list[Path], settings: Settings, progress: BatchProgress) -> list[Outcome]:
    outcomes = collect_inputs(paths)
    todo = [o for o in outcomes if o.ok]
    folders = output_folders([o.input for o in todo], settings.out)
    for outcome in outcomes:
        if not outcome.ok:
            progress.video_finished(outcome)
    transport = make_transport(settings, needed_endpoints(settings))
    check_payload_limits(settings, transport)
    try:
        for position, outcome in enumerate(todo, start=1):
            progress.video_started(outcome.input, position, len(todo))
            try:
                outcome.report = await analyze_video(outcome.input, settings, transport, progress)
                outcome.folder = folders[outcome.input]
                write_report(outcome.report, outcome.folder, settings.formats)
            except ConfigError:
                raise  # wrong for every video (a bad key, a missing endpoint id): stop the batch
            except VidagentError as exc:
                message = str(exc)
                if not message.startswith(str(outcome.input)):
                    message = f"{outcome.input}: {message}"
                outcome.error = message
            except OSError as exc:
                outcome.error = f"{outcome.input}: {exc.strerror or exc} ({exc.filename or 'output'})"
            progress.video_finished(outcome)
    finally:
        await transport.aclose()
    return outcomes
