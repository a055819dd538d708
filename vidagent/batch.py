"""Many inputs, one run: find the videos, analyse them (several at once), write reports
and an index, keep going past failures.

A failure is confined to its video; reports and the index are written as soon as each
video finishes, so an interrupted run keeps everything it finished, and the job cache
lets a rerun skip every job that had finished.
"""

from __future__ import annotations

import asyncio
import csv
import glob
import hashlib
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from pydantic import ValidationError

from .config import SECRET_FIELDS, Settings
from .errors import ConfigError, Interrupted, JobsLeftRunning, VidagentError
from .media.audio import SAMPLE_RATE
from .media.child import prestart as prestart_extraction
from .budget import Budget, BudgetExceeded
from .cost import load_pricing
from .pipeline import VideoProgress, analyze_video, endpoint_limits
from .pipeline.segmented import analyze_segmented, uses_segments
from .report.model import Report
from .batch_index import IndexWriter, index_row
from .index import add_report, default_location
from .media.sampler import usable_cpus
from .report.player import playback_problem, proxy_advice
from .report.writers import write_report
from .speakers.match import VoiceBook
from .transports import make_transport

VIDEO_EXTENSIONS = frozenset(
    ".mp4 .m4v .mov .mkv .webm .avi .wmv .flv .mpg .mpeg .ts .mts .m2ts .3gp .ogv .mxf".split()
)
AUDIO_EXTENSIONS = frozenset(".m4a .mp3 .wav .flac .ogg .opus .oga .aac .wma".split())
MEDIA_EXTENSIONS = VIDEO_EXTENSIONS | AUDIO_EXTENSIONS


@dataclass
class Outcome:
    input: Path
    overrides: dict[str, Any] = field(default_factory=dict)  # per-video settings (manifest)
    folder: Path | None = None
    # Held only until the video's index row is made: a batch of thousands keeps rows, not reports.
    report: Report | None = None
    error: str | None = None
    partial: bool = False  # the report was written, but a stage failed (report.failed_stages)
    done: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None and not self.partial

    @property
    def status(self) -> str:
        return "failed" if self.error is not None else "partial" if self.partial else "done"


class BatchProgress(Protocol):
    def backends(self, chosen: dict[str, str]) -> None: ...

    def video_started(self, path: Path, position: int, total: int) -> VideoProgress: ...

    def video_finished(self, outcome: Outcome) -> None: ...

    def warning(self, text: str) -> None: ...


# -- inputs -----------------------------------------------------------------------------


def collect_inputs(paths: list[Path], manifest: Path | None = None) -> list[Outcome]:
    """Files, folders (recursive, hidden entries skipped), globs and a manifest's entries,
    in that order; problems become failed outcomes. A file named twice is analysed once,
    with the settings of every entry that names it (later entries win)."""
    found: list[Outcome] = []
    for path in paths:
        found += _expand(path)
    if manifest is not None:
        found += read_manifest(manifest)
    unique: dict[Path, Outcome] = {}
    for outcome in found:
        key = outcome.input.resolve() if outcome.ok else outcome.input
        if key in unique:
            unique[key].overrides.update(outcome.overrides)
        else:
            unique[key] = outcome
    return list(unique.values())


def _expand(path: Path) -> list[Outcome]:
    text = str(path)
    if not path.exists() and glob.has_magic(text):
        matches = sorted(Path(p) for p in glob.glob(text, recursive=True))
        if not matches:
            return [Outcome(path, error=f"{path}: the pattern matches no file")]
        return [o for match in matches for o in _expand(match)]
    if path.is_dir():
        videos = sorted(
            p for p in path.rglob("*")
            if p.is_file() and p.suffix.lower() in MEDIA_EXTENSIONS
            and not any(part.startswith(".") for part in p.relative_to(path).parts)
        )
        if not videos:
            extensions = ", ".join(sorted(MEDIA_EXTENSIONS))
            return [Outcome(path, error=f"{path}: no video or audio files found (looked for {extensions})")]
        return [Outcome(video) for video in videos]
    if not path.exists():
        return [Outcome(path, error=f"{path}: no such file or folder")]
    return [Outcome(path)]


def read_manifest(manifest: Path) -> list[Outcome]:
    """A plain list of paths, a CSV with a `path` column, or JSON lines with a `path` key;
    other columns or keys are per-video settings (language, detect_fps, caption_prompt…).
    Relative paths are relative to the manifest's folder."""
    try:
        text = manifest.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{manifest}: cannot read manifest ({exc.strerror})") from None
    rows = _manifest_rows(manifest, text)
    outcomes = []
    for line, row in rows:
        where = f"{manifest}:{line}"
        raw_path = row.pop("path", None)
        if not raw_path:
            raise ConfigError(f"{where}: no path")
        overrides = {k: v for k, v in row.items() if v not in (None, "")}
        for key in overrides:
            if key not in Settings.model_fields or key in SECRET_FIELDS or key == "out":
                raise ConfigError(f"{where}: '{key}' is not a per-video setting")
        path = Path(raw_path).expanduser()
        if not path.is_absolute():
            path = manifest.parent / path
        for outcome in _expand(path):
            outcome.overrides = overrides
            outcomes.append(outcome)
    return outcomes


def _manifest_rows(manifest: Path, text: str) -> list[tuple[int, dict[str, Any]]]:
    lines = text.splitlines()
    if manifest.suffix.lower() in (".jsonl", ".ndjson"):
        rows = []
        for number, line in enumerate(lines, start=1):
            if line.strip():
                try:
                    row = json.loads(line)
                except ValueError:
                    raise ConfigError(f"{manifest}:{number}: not valid JSON") from None
                if not isinstance(row, dict):
                    raise ConfigError(f"{manifest}:{number}: expected an object with a 'path'")
                rows.append((number, row))
        return rows
    if manifest.suffix.lower() == ".csv":
        reader = csv.DictReader(io.StringIO(text))
        if "path" not in (reader.fieldnames or []):
            raise ConfigError(f"{manifest}: the CSV needs a 'path' column")
        return [(number, dict(row)) for number, row in enumerate(reader, start=2)]
    return [(number, {"path": line.strip()}) for number, line in enumerate(lines, start=1)
            if line.strip() and not line.lstrip().startswith("#")]


def parse_shard(text: str) -> tuple[int, int]:
    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError:
        raise ConfigError(f"option --shard: {text!r} is not I/N (for example 2/4)") from None
    if not 1 <= index <= count:
        raise ConfigError(f"option --shard: {text!r} needs 1 <= I <= N")
    return index, count


def in_shard(path: Path, shard: tuple[int, int]) -> bool:
    """Stable across machines and input order: a hash of the path as given."""
    index, count = shard
    digest = hashlib.sha1(str(path).encode()).digest()
    return int.from_bytes(digest[:8], "big") % count == index - 1


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


# -- checks -----------------------------------------------------------------------------


def needed_endpoints(settings: Settings, segmented: bool = False) -> list[str]:
    """`segmented`: the segment worker detects and transcribes (pipeline/segmented.py)."""
    stages = (("yolo", settings.detect and not segmented), ("whisper", settings.transcribe and not segmented),
              ("segment", segmented), ("vlm", settings.caption or settings.summary))
    return [name for name, on in stages if on]


def check_payload_limits(settings: Settings, transport) -> None:
    if not settings.transcribe or "whisper" not in transport.routes:
        return
    limit = transport.payload_limit("whisper")
    if limit is None:
        return
    # A chunk may run up to 20% past its target while the cut looks for a pause.
    wav_bytes = settings.audio_chunk_s * 1.2 * SAMPLE_RATE * 2
    if wav_bytes * 4 / 3 > limit:
        longest = int(limit * 3 / 4 / (1.2 * SAMPLE_RATE * 2))
        raise ConfigError(
            f"audio_chunk_s {settings.audio_chunk_s:g} makes jobs over the "
            f"{transport.transport('whisper').name} payload limit ({limit / 1e6:.0f} MB): use at most {longest}"
        )


def video_settings(base: Settings, overrides: dict[str, Any], where: Path) -> Settings:
    if not overrides:
        return base
    try:
        return Settings.model_validate({**base.model_dump(), **overrides})
    except ValidationError as exc:
        err = exc.errors()[0]
        raise ConfigError(f"{where}: manifest setting '{err['loc'][0]}': {err['msg']}") from None


# -- the run ----------------------------------------------------------------------------


async def run_batch(
    paths: list[Path],
    settings: Settings,
    progress: BatchProgress,
    manifest: Path | None = None,
    shard: tuple[int, int] | None = None,
    jobs: int = 1,
    fail_fast: bool = False,
) -> list[Outcome]:
    outcomes = collect_inputs(paths, manifest)
    if shard is not None:
        outcomes = [o for o in outcomes if in_shard(o.input, shard)]
    todo = [o for o in outcomes if o.ok]
    if todo:
        prestart_extraction()  # its start-up overlaps ours
    folders = output_folders([o.input for o in todo], settings.out)
    per_video = {id(o): video_settings(settings, o.overrides, o.input) for o in todo}  # checked up front
    segmented = {id(o) for o in todo if uses_segments(per_video[id(o)], o.input)}
    endpoints = sorted({e for o in todo for e in needed_endpoints(per_video[id(o)], id(o) in segmented)}
                       or needed_endpoints(settings))
    transport = make_transport(settings, endpoints)  # a backend that cannot run stops it before anything is written
    index = IndexWriter(settings.out) if outcomes else None
    for outcome in outcomes:
        if not outcome.ok:
            outcome.done = True
            progress.video_finished(outcome)
            index.add(index_row(outcome))
    progress.backends(transport.backends)
    if settings.cache:
        from .cache import CachingTransport, JobCache
        from .workers.catalog import cache_dir

        transport = CachingTransport(transport, JobCache(settings.cache_dir or cache_dir()))
    check_payload_limits(settings, transport)
    budget = _budget(settings, todo)
    limits = endpoint_limits(transport)
    slots = asyncio.Semaphore(max(1, jobs))
    cpus = max(1, usable_cpus() // max(1, min(jobs, len(todo) or 1)))
    index_path = default_location(settings.index, settings.out)
    voices = VoiceBook(settings.match_threshold) if settings.match_speakers else None

    warned: set[str] = set()

    def advise(report, video: Settings) -> None:
        """Once per batch and kind of problem: a page will link a video browsers may not play."""
        problem = playback_problem(report.media) if "html" in video.formats and video.html_video == "source" else None
        if problem and problem not in warned:
            warned.add(problem)
            progress.warning(proxy_advice(report.media))

    def finished(outcome: Outcome) -> None:
        outcome.done = True
        progress.video_finished(outcome)
        index.add(index_row(outcome))
        outcome.report = None  # the row says what the index needs; the file holds the rest

    async def one(position: int, outcome: Outcome) -> None:
        async with slots:
            if position < len(todo):
                prestart_extraction(2)  # this video's and the next one's, which starts while this runs
            tracker = progress.video_started(outcome.input, position, len(todo))
            try:
                video = per_video[id(outcome)]
                if id(outcome) in segmented:
                    outcome.report = await analyze_segmented(outcome.input, video, transport, tracker, limits, budget)
                else:
                    outcome.report = await analyze_video(outcome.input, video, transport, tracker, limits, budget, cpus)
                if voices is not None:  # named in input order, whichever video finishes first
                    await voices.wait_turn(position - 1)
                    voices.match(outcome.report, str(outcome.input))
                outcome.folder = folders[outcome.input]
                outcome.partial = outcome.report.status == "partial"
                advise(outcome.report, video)
                await _write_whole(outcome, video.formats, index_path, finished)
            except (ConfigError, BudgetExceeded):
                raise  # wrong for every video (a bad key, the budget spent): stop the batch
            except VidagentError as exc:
                message = str(exc)
                outcome.error = message if message.startswith(str(outcome.input)) else f"{outcome.input}: {message}"
            except OSError as exc:
                outcome.error = f"{outcome.input}: {exc.strerror or exc} ({exc.filename or 'output'})"
            finally:
                if voices is not None:
                    await voices.done(position - 1)
            if not outcome.done:
                finished(outcome)
            if fail_fast and not outcome.ok:
                raise _FailFast()

    interrupted = False
    try:
        async with asyncio.TaskGroup() as group:
            for position, outcome in enumerate(todo, start=1):
                group.create_task(one(position, outcome))
    except BaseExceptionGroup as group:
        errors = [e for e in group.exceptions if not isinstance(e, _FailFast)]
        if errors:
            raise errors[0] from None
    except asyncio.CancelledError:
        interrupted = True
        raise
    finally:
        try:
            await transport.aclose()
        except JobsLeftRunning as left:
            if interrupted:  # still exit 130, naming the jobs whose cancel RunPod did not confirm
                raise Interrupted(f"interrupted; reports of the videos that finished are kept; {left}") from None
            raise
        finally:
            if index is not None:
                index.write_full()
    return [o for o in outcomes if o.done]


async def _write_whole(outcome: Outcome, formats: list[str], index_path: str, finished) -> None:
    """Write the video's report files and add it to the search index, off the event loop
    (HTML thumbnails decode the video again). Once begun this is finished even if the run
    is cancelled meanwhile, and the batch index records the video, so an interrupt never
    leaves a report on disk that the indexes lack."""
    def write() -> None:
        write_report(outcome.report, outcome.folder, formats)
        add_report(index_path, outcome.folder / "report.json", outcome.report)

    writing = asyncio.ensure_future(asyncio.to_thread(write))
    try:
        await asyncio.shield(writing)
    except asyncio.CancelledError:
        try:
            await writing
        except OSError as exc:
            outcome.error = f"{outcome.input}: {exc.strerror or exc} ({exc.filename or 'output'})"
        finished(outcome)
        raise
    finished(outcome)


def _budget(settings: Settings, todo: list[Outcome]) -> Budget:
    """Prices for the reports' cost lines; with --max-cost, the estimate checked up front."""
    try:
        prices, profile = load_pricing(settings)
    except ConfigError:
        if settings.max_cost_usd is not None:
            raise  # a budget needs prices
        return Budget(None)
    budget = Budget(settings.max_cost_usd, prices, profile)
    if settings.max_cost_usd is not None:
        from .media.probe import probe

        media = []
        for outcome in todo:
            try:
                media.append(probe(outcome.input))
            except VidagentError:
                pass  # it will fail on its own, at no cost
        budget.check_estimate(media, settings, profile)
    return budget


class _FailFast(Exception):
    """--fail-fast: one video failed, so the others are stopped (their jobs cancelled)."""
