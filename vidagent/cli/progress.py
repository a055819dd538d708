"""Progress for people (Rich bars with ETA) and for logs (plain lines, no control codes).

Both go to stderr. stdout carries only results: the folder of each finished video, one
per line, so `vidagent analyze … | xargs …` works.
"""

from __future__ import annotations

import sys
from pathlib import Path

from rich.console import Console

from ..batch import Outcome
from ..media.probe import MediaInfo
from ..plan import SamplingPlan

_STAGE_LABELS = {"detect": "detect frames", "transcribe": "audio chunks", "caption": "caption candidates"}


def make_progress(mode: str):
    if mode not in ("auto", "bars", "lines", "none"):
        from ..errors import ConfigError

        raise ConfigError(f"option --progress: {mode!r} is not one of auto, bars, lines, none")
    if mode == "auto":
        mode = "bars" if sys.stderr.isatty() else "lines"
    return {"bars": BarProgress, "lines": LineProgress, "none": QuietProgress}[mode]()


class QuietProgress:
    """Results on stdout and failures on stderr, nothing else."""

    def __init__(self) -> None:
        self.err = Console(stderr=True, highlight=False, soft_wrap=True)
        self.name = ""

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        pass

    def video_started(self, path: Path, position: int, total: int) -> None:
        self.name = path.name

    def planned(self, media: MediaInfo, plan: SamplingPlan) -> None:
        pass

    def advanced(self, stage: str, items: int) -> None:
        pass

    def video_finished(self, outcome: Outcome) -> None:
        if outcome.ok:
            print(outcome.folder, flush=True)
            for warning in outcome.report.warnings:
                self.note(f"{outcome.input.name}: warning: {warning}")
        else:
            self.note(f"vidagent: error: {outcome.error}", style="red")

    def note(self, text: str, style: str | None = None) -> None:
        self.err.print(text, style=style, markup=False)

    def summary(self, outcomes: list[Outcome]) -> None:
        failed = sum(not o.ok for o in outcomes)
        if len(outcomes) > 1 or failed:
            self.note(f"{len(outcomes) - failed} of {len(outcomes)} inputs analysed, {failed} failed")


class LineProgress(QuietProgress):
    """One line per event and per quarter of each stage: readable in CI logs."""

    def __init__(self) -> None:
        super().__init__()
        self.err = Console(stderr=True, highlight=False, soft_wrap=True, no_color=True, force_terminal=False)
        self.totals: dict[str, int] = {}
        self.done: dict[str, int] = {}

    def video_started(self, path: Path, position: int, total: int) -> None:
        super().video_started(path, position, total)
        self.note(f"[{position}/{total}] {path}")

    def planned(self, media: MediaInfo, plan: SamplingPlan) -> None:
        audio = "audio" if media.has_audio else "no audio"
        self.note(f"{self.name}: {media.duration_s:.1f}s {media.width}x{media.height} {audio}")
        self.totals = {"detect": plan.detect_frames, "transcribe": plan.audio_chunks,
                       "caption": plan.caption_candidates}
        self.done = {stage: 0 for stage in self.totals}

    def advanced(self, stage: str, items: int) -> None:
        total = max(1, self.totals.get(stage, 1))
        before = self.done.get(stage, 0)
        after = before + items
        self.done[stage] = after
        if after * 4 // total > before * 4 // total:
            self.note(f"{self.name}: {_STAGE_LABELS[stage]} {min(after, total)}/{total}")


class BarProgress(QuietProgress):
    """Rich bars per stage with ETA, on a terminal."""

    def __init__(self) -> None:
        super().__init__()
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.bars = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=self.err,
            transient=True,
        )
        self.tasks: dict[str, int] = {}

    def __enter__(self):
        self.bars.start()
        return self

    def __exit__(self, *exc) -> None:
        self.bars.stop()

    def video_started(self, path: Path, position: int, total: int) -> None:
        super().video_started(path, position, total)
        for task in self.tasks.values():
            self.bars.remove_task(task)
        self.tasks = {}
        self.note(f"[{position}/{total}] {path}", style="bold")

    def planned(self, media: MediaInfo, plan: SamplingPlan) -> None:
        totals = {"detect": plan.detect_frames, "transcribe": plan.audio_chunks,
                  "caption": plan.caption_candidates}
        for stage, total in totals.items():
            if total:
                self.tasks[stage] = self.bars.add_task(f"  {_STAGE_LABELS[stage]:<14}", total=total)

    def advanced(self, stage: str, items: int) -> None:
        if stage in self.tasks:
            self.bars.advance(self.tasks[stage], items)

    def video_finished(self, outcome: Outcome) -> None:
        if outcome.ok:
            report = outcome.report
            frames, segments = len(report.detections), len(report.transcript.segments)
            self.note(
                f"  done: {frames} frame{'s' * (frames != 1)}, {segments} "
                f"segment{'s' * (segments != 1)}, {len(report.captions)} caption(s), "
                f"{report.timings.get('total_s', 0):.1f}s "
                f"-> {outcome.folder}",
                style="green",
            )
        super().video_finished(outcome)
