"""What a run tells people (Rich bars with ETA), logs (plain lines) and CI (JSON lines).

All of it goes to stderr. stdout carries only results: the folder of each finished video,
one per line, so `vidagent analyze … | xargs …` works. Several videos may be in flight
(`--jobs`), so each video gets its own tracker from `video_started`.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from rich.console import Console

from ..batch import Outcome
from ..errors import ConfigError
from ..media.probe import MediaInfo
from ..plan import SamplingPlan
from ..speakers.match import match_lines

_STAGE_LABELS = {"detect": "detect frames", "transcribe": "audio chunks", "caption": "caption candidates",
                 "segment": "segments"}
_FAILED_WORDS = {"detect": "detection failed", "transcribe": "transcription failed",
                 "caption": "captions failed", "summary": "summary failed", "segment": "segments failed"}
MODES = ("auto", "bars", "lines", "json", "none")


def make_progress(mode: str):
    if mode not in MODES:
        raise ConfigError(f"option --progress: {mode!r} is not one of {', '.join(MODES)}")
    if mode == "auto":
        mode = "bars" if sys.stderr.isatty() else "lines"
    return {"bars": BarProgress, "lines": LineProgress, "json": JsonProgress, "none": QuietProgress}[mode]()


def backends_line(chosen: dict[str, str]) -> str:
    """`backends: yolo runpod, whisper local`: where each stage of the run goes."""
    return "backends: " + ", ".join(f"{endpoint} {backend}" for endpoint, backend in chosen.items())


def _totals(plan: SamplingPlan) -> dict[str, int]:
    totals = {"detect": plan.detect_frames, "transcribe": plan.audio_chunks, "caption": plan.caption_candidates}
    return {stage: n for stage, n in totals.items() if n}


class _Tracker:
    """Per-video counts; subclasses say what to show when they change."""

    def __init__(self, display: "QuietProgress", path: Path):
        self.display, self.path, self.name = display, path, path.name
        self.totals: dict[str, int] = {}
        self.done: dict[str, int] = {}

    def planned(self, media: MediaInfo, plan: SamplingPlan) -> None:
        self.totals = _totals(plan)
        self.done = {stage: 0 for stage in self.totals}
        self.display.on_planned(self, media)

    def advanced(self, stage: str, items: int) -> None:
        before = self.done.get(stage, 0)
        self.done[stage] = before + items
        self.display.on_advanced(self, stage, before)


class QuietProgress:
    """Results on stdout and one line per failure on stderr, nothing else."""

    def __init__(self) -> None:
        self.err = Console(stderr=True, highlight=False, soft_wrap=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        pass

    def backends(self, chosen: dict[str, str]) -> None:
        """Where each stage runs, once, when the run starts."""

    def video_started(self, path: Path, position: int, total: int) -> _Tracker:
        return _Tracker(self, path)

    def on_planned(self, tracker: _Tracker, media: MediaInfo) -> None:
        pass

    def on_advanced(self, tracker: _Tracker, stage: str, before: int) -> None:
        pass

    def video_finished(self, outcome: Outcome) -> None:
        if outcome.error is None:
            print(outcome.folder, flush=True)
            report = outcome.report
            failed = set(report.failed_stages)
            for warning in report.warnings:
                if not any(warning.startswith(_FAILED_WORDS[stage]) for stage in failed):
                    self.note(f"{outcome.input.name}: warning: {warning}")
            for line in match_lines(report, outcome.input.name):
                self.note(line)
            if outcome.partial:
                stages = "; ".join(f"{stage} failed: {reason}" for stage, reason in report.failed_stages.items())
                self.note(f"vidagent: error: {outcome.input}: partial report ({stages})", style="red")
        else:
            self.note(f"vidagent: error: {outcome.error}", style="red")

    def note(self, text: str, style: str | None = None) -> None:
        self.err.print(text, style=style, markup=False)

    def warning(self, text: str) -> None:
        """Something about the whole run (not one video's report), said once."""
        self.note(f"vidagent: warning: {text}", style="yellow")

    def summary(self, outcomes: list[Outcome], index: Path | None = None) -> None:
        failed = sum(o.status == "failed" for o in outcomes)
        partial = sum(o.status == "partial" for o in outcomes)
        if len(outcomes) > 1 or failed or partial:
            where = f"; index: {index}" if index else ""
            some = f", {partial} partial" if partial else ""
            self.note(f"{len(outcomes) - failed - partial} of {len(outcomes)} inputs analysed{some}, "
                      f"{failed} failed{where}")


class LineProgress(QuietProgress):
    """One line per event and per quarter of each stage: readable in CI logs."""

    def __init__(self) -> None:
        super().__init__()
        self.err = Console(stderr=True, highlight=False, soft_wrap=True, no_color=True, force_terminal=False)

    def backends(self, chosen: dict[str, str]) -> None:
        self.note(backends_line(chosen))

    def video_started(self, path: Path, position: int, total: int) -> _Tracker:
        self.note(f"[{position}/{total}] {path}")
        return _Tracker(self, path)

    def on_planned(self, tracker: _Tracker, media: MediaInfo) -> None:
        if media.has_video:
            what = f"{media.width}x{media.height} " + ("audio" if media.has_audio else "no audio")
        else:
            what = "audio only"
        self.note(f"{tracker.name}: {media.duration_s:.1f}s {what}")

    def on_advanced(self, tracker: _Tracker, stage: str, before: int) -> None:
        total = max(1, tracker.totals.get(stage, 1))
        after = tracker.done[stage]
        if after * 4 // total > before * 4 // total:
            self.note(f"{tracker.name}: {_STAGE_LABELS[stage]} {min(after, total)}/{total}")


class JsonProgress(QuietProgress):
    """One JSON object per line (--progress json): `event` is backends, video_started,
    planned, progress, video_done, video_partial, video_failed, speaker_matched, warning or totals; every
    event has `time` (Unix seconds) and, except backends, warning and totals, `video`
    (the input path)."""

    def emit(self, event: str, **fields) -> None:
        print(json.dumps({"event": event, "time": round(time.time(), 3), **fields}), file=sys.stderr, flush=True)

    def backends(self, chosen: dict[str, str]) -> None:
        self.emit("backends", backends=chosen)

    def warning(self, text: str) -> None:
        self.emit("warning", text=text)

    def video_started(self, path: Path, position: int, total: int) -> _Tracker:
        self.emit("video_started", video=str(path), position=position, total=total)
        return _Tracker(self, path)

    def on_planned(self, tracker: _Tracker, media: MediaInfo) -> None:
        self.emit("planned", video=str(tracker.path), duration_s=media.duration_s,
                  has_audio=media.has_audio, totals=tracker.totals)

    def on_advanced(self, tracker: _Tracker, stage: str, before: int) -> None:
        total = max(1, tracker.totals.get(stage, 1))
        after = tracker.done[stage]
        if after * 10 // total > before * 10 // total:  # every tenth
            self.emit("progress", video=str(tracker.path), stage=stage, done=min(after, total), total=total)

    def video_finished(self, outcome: Outcome) -> None:
        if outcome.error is None:
            print(outcome.folder, flush=True)
            report = outcome.report
            self.emit("video_partial" if outcome.partial else "video_done", video=str(outcome.input),
                      folder=str(outcome.folder), warnings=report.warnings, failed_stages=report.failed_stages,
                      seconds=report.timings.get("total_s"))
            for speaker in report.speakers:
                if speaker.matched:
                    self.emit("speaker_matched", video=str(outcome.input), speaker=speaker.id, name=speaker.name,
                              matched_video=speaker.matched.video, matched_speaker=speaker.matched.speaker,
                              similarity=speaker.matched.similarity)
        else:
            self.emit("video_failed", video=str(outcome.input), reason=outcome.error)

    def summary(self, outcomes: list[Outcome], index: Path | None = None) -> None:
        failed = sum(o.status == "failed" for o in outcomes)
        partial = sum(o.status == "partial" for o in outcomes)
        self.emit("totals", inputs=len(outcomes), analysed=len(outcomes) - failed - partial, partial=partial,
                  failed=failed, index=str(index) if index else None)


class BarProgress(QuietProgress):
    """Rich bars per stage and video, with ETA, on a terminal."""

    def __init__(self) -> None:
        super().__init__()
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.bars = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
            console=self.err, transient=True,
        )
        self.tasks: dict[tuple[Path, str], int] = {}

    def __enter__(self):
        self.bars.start()
        return self

    def __exit__(self, *exc) -> None:
        self.bars.stop()

    def backends(self, chosen: dict[str, str]) -> None:
        self.note(backends_line(chosen))

    def video_started(self, path: Path, position: int, total: int) -> _Tracker:
        self.note(f"[{position}/{total}] {path}", style="bold")
        return _Tracker(self, path)

    def on_planned(self, tracker: _Tracker, media: MediaInfo) -> None:
        for stage, total in tracker.totals.items():
            label = f"  {tracker.name[:24]:<24} {_STAGE_LABELS[stage]:<18}"
            self.tasks[(tracker.path, stage)] = self.bars.add_task(label, total=total)

    def on_advanced(self, tracker: _Tracker, stage: str, before: int) -> None:
        task = self.tasks.get((tracker.path, stage))
        if task is not None:
            self.bars.update(task, completed=tracker.done[stage])

    def video_finished(self, outcome: Outcome) -> None:
        for key in [k for k in self.tasks if k[0] == outcome.input]:
            self.bars.remove_task(self.tasks.pop(key))
        if outcome.error is None:
            report = outcome.report
            frames, segments = len(report.detections), len(report.transcript.segments)
            self.note(
                f"  done {outcome.input.name}: {frames} frame{'s' * (frames != 1)}, {segments} "
                f"segment{'s' * (segments != 1)}, {len(report.captions)} caption(s), "
                f"{report.timings.get('total_s', 0):.1f}s -> {outcome.folder}",
                style="green",
            )
        super().video_finished(outcome)
