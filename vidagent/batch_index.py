"""The batch's index files beside the video folders: index.csv, index.json, index.html.

One row per input. index.csv grows by one appended row as each video finishes, so it is
always current; index.json and index.html are rewritten in full only after 1, 2, 4, 8, …
videos and at the end, so a batch of n videos costs O(n) writes in all, not O(n²), and
neither is ever more than half a batch behind.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from .files import atomic_write

FIELDS = ["input", "status", "folder", "report", "duration_s", "detection_frames", "segments",
          "captions", "warnings", "gpu_seconds", "usd", "cached_jobs", "error"]


class IndexWriter:
    def __init__(self, out: Path):
        self.out = out
        self.rows: list[dict[str, Any]] = []
        self._next_full = 1
        out.mkdir(parents=True, exist_ok=True)
        atomic_write(out / "index.csv", _csv_lines([], header=True))

    def add(self, row: dict[str, Any]) -> None:
        self.rows.append(row)
        with open(self.out / "index.csv", "a", encoding="utf-8", newline="") as handle:
            handle.write(_csv_lines([row]))
        if len(self.rows) >= self._next_full:
            self._next_full *= 2
            self.write_full()

    def write_full(self) -> Path:
        atomic_write(self.out / "index.json", json.dumps({"videos": self.rows}, indent=2) + "\n")
        from .report.html import write_index_html

        write_index_html(self.rows, self.out)
        return self.out / "index.json"


def _csv_lines(rows: list[dict[str, Any]], header: bool = False) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=FIELDS)
    if header:
        writer.writeheader()
    for row in rows:
        flat = dict(row)
        flat["warnings"] = " | ".join(row["warnings"])
        flat["gpu_seconds"] = round(sum(row["gpu_seconds"].values()), 3)
        writer.writerow(flat)
    return buffer.getvalue()


def index_row(o) -> dict[str, Any]:
    """One input's line in the batch index, from its batch.Outcome."""
    report = o.report
    usage = report.usage if report else {}
    return {
        "input": str(o.input),
        "status": o.status,
        "folder": str(o.folder) if o.folder else None,
        "report": str(o.folder / "report.json") if o.folder and report else None,
        "duration_s": report.media.duration_s if report else None,
        "detection_frames": len(report.detections) if report else None,
        "segments": len(report.transcript.segments) if report else None,
        "captions": len(report.captions) if report else None,
        "warnings": report.warnings if report else [],
        "gpu_seconds": {name: u.execution_s for name, u in usage.items()},
        "usd": round(sum(u.usd or 0.0 for u in usage.values()), 6) if report else None,
        "cached_jobs": sum(u.cached_jobs for u in usage.values()),
        "error": o.error or ("; ".join(f"{k} failed: {v}" for k, v in report.failed_stages.items())
                             if report and report.failed_stages else None),
    }
