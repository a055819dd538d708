"""Time profiles measured from real runs: `vidagent cost-estimate --profile-from REPORT...`.
Reads report files; otherwise pure.

Each report's `usage` holds, per endpoint, the jobs it sent, the items in them and the
execution seconds RunPod reported for them. Summed over reports, seconds per unit is

    yolo     execution_s / frames sent
    whisper  execution_s / seconds of audio of the videos with audio
    vlm      execution_s / requests (captions and summaries alike)

with each job's fixed cost inside that figure (seconds_per_request 0), at the batch size
and caption policy of those runs. Cold starts and idle time are not in executionTime: they
come from the usage where a report has them (`cold_starts`, `cold_start_s`), else from the
base profile, and the basis says which. An endpoint that ran locally, or whose jobs came
partly from the cache, measured something else; it keeps the base profile's figure.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import yaml

from ..errors import ConfigError
from ..report.reader import find_reports
from .tables import ENDPOINTS, PriceTable, TimeProfile


@dataclass
class _Sum:
    reports: int = 0
    jobs: int = 0
    items: int = 0
    execution_s: float = 0.0
    units: float = 0.0
    cold_starts: int = 0
    cold_start_s: float = 0.0
    cold_seen: bool = False
    hosts: set[str] = field(default_factory=set)
    dates: list[str] = field(default_factory=list)


@dataclass
class FromReports:
    profile: TimeProfile
    notes: list[str]


def profile_from_reports(reports: Sequence[tuple[str, dict[str, Any]]], base: TimeProfile,
                         prices: PriceTable) -> FromReports:
    """A profile whose endpoints are measured where `reports` ((name, report JSON) pairs)
    ran them on RunPod; the others keep `base`'s figures. ConfigError when none did."""
    sums = {endpoint: _Sum() for endpoint in ENDPOINTS}
    notes: list[str] = []
    for name, report in reports:
        for endpoint, used in (report.get("usage") or {}).items():
            if endpoint not in sums or not used.get("jobs"):
                continue
            reason = _unusable(report, endpoint, used)
            if reason:
                notes.append(f"{name}: {endpoint} left out: {reason}")
                continue
            _add(sums[endpoint], endpoint, report, used)
    measured = {e: s for e, s in sums.items() if s.reports and s.units > 0 and s.execution_s > 0}
    if not measured:
        raise ConfigError(
            "no report has usage measured on RunPod (runs on the runpod backend, not from the "
            "cache); nothing to make a profile from" + (f" ({'; '.join(notes)})" if notes else "")
        )
    data = base.model_dump(exclude={"measurement"})
    for endpoint, s in measured.items():
        data[endpoint].update(_figures(endpoint, s, base, prices))
    for endpoint in ENDPOINTS:
        if endpoint not in measured:
            notes.append(f"{endpoint}: no usable usage in these reports; the base profile's figure is kept")
    return FromReports(TimeProfile.model_validate(data), notes)


def _unusable(report: dict[str, Any], endpoint: str, used: dict[str, Any]) -> str | None:
    settings = report.get("settings") or {}
    backend = (report.get("backends") or {}).get(endpoint) or settings.get("backend")
    if backend == "auto":
        backend = "runpod" if settings.get(f"runpod_{endpoint}_endpoint_id") else "local"
    if backend != "runpod":
        return f"ran on the {backend} backend, whose seconds are this machine's, not a RunPod worker's"
    if used.get("cached_jobs"):
        return f"{used['cached_jobs']} of its {used['jobs']} jobs came from the cache (rerun with --no-cache)"
    if endpoint == "whisper" and not (report.get("media") or {}).get("has_audio"):
        return "the video has no audio"
    return None


def _add(s: _Sum, endpoint: str, report: dict[str, Any], used: dict[str, Any]) -> None:
    s.reports += 1
    s.jobs += int(used.get("jobs", 0))
    s.items += int(used.get("items", 0))
    s.execution_s += float(used.get("execution_s", 0.0))
    if endpoint == "whisper":
        s.units += float((report.get("media") or {}).get("duration_s", 0.0))
    else:
        s.units += int(used.get("items", 0))
    if "cold_starts" in used:
        s.cold_seen = True
        s.cold_starts += int(used["cold_starts"])
        s.cold_start_s += float(used.get("cold_start_s", 0.0))
    base_url = (report.get("settings") or {}).get("runpod_base_url") or "https://api.runpod.ai/v2"
    s.hosts.add(urlparse(base_url).netloc or base_url)
    if report.get("created_at"):
        s.dates.append(str(report["created_at"])[:10])


def _figures(endpoint: str, s: _Sum, base: TimeProfile, prices: PriceTable) -> dict[str, Any]:
    pool_name = prices.endpoints[endpoint]
    per_unit = s.execution_s / s.units
    unit = {"yolo": "frame", "whisper": "second of audio", "vlm": "request"}[endpoint]
    where = ", ".join(sorted(s.hosts))
    basis = [
        f"{s.execution_s:.3f} s of executionTime over {s.units:g} {unit}s in {s.jobs} jobs "
        f"({s.reports} report{'s' if s.reports != 1 else ''}); each job's fixed cost is inside "
        "the per-unit figure. An upper bound where a worker ran several jobs at once."
    ]
    figures: dict[str, Any] = {
        "gpu": f"RunPod pool {pool_name} ({prices.pools[pool_name].gpus})",
        "seconds_per_unit": round(per_unit, 6),
        "seconds_per_request": 0.0,
        "provenance": "measured",
        "source": f"vidagent reports of runs on {where}",
        "date": max(s.dates) if s.dates else base.of(endpoint).date,
    }
    if endpoint == "vlm":
        figures["seconds_per_summary"] = round(per_unit, 6)
        basis.append("A summary counts as one request.")
    if s.cold_seen and s.cold_starts:
        figures["cold_start_s"] = round(s.cold_start_s / s.cold_starts, 3)
        figures["cold_starts_per_run"] = max(1, round(s.cold_starts / s.reports))
        basis.append(f"Cold starts as the reports counted them: {s.cold_starts}.")
    else:
        basis.append("Cold start, idle and cold starts per run are the base profile's (published).")
    figures["basis"] = " ".join(basis)
    return figures


def read_reports(paths: Sequence[Path]) -> list[tuple[str, dict[str, Any]]]:
    """(name, JSON) of each report file, and of each report.json under a folder."""
    if not paths:
        raise ConfigError("--profile-from needs REPORT files or folders (report.json files of finished runs)")
    reports = []
    for path in paths:
        if not path.exists():
            raise ConfigError(f"{path}: report not found")
        files = find_reports([path]) if path.is_dir() else [path]
        if not files:
            raise ConfigError(f"{path}: folder holds no report.json")
        for file in files:
            try:
                data = json.loads(file.read_text(encoding="utf-8"))
            except FileNotFoundError:
                raise ConfigError(f"{file}: report not found") from None
            except (OSError, UnicodeDecodeError, ValueError):
                raise ConfigError(f"{file}: not a vidagent report (JSON expected)") from None
            if not isinstance(data, dict) or "usage" not in data or "media" not in data:
                raise ConfigError(f"{file}: not a vidagent report (no 'usage' and 'media')")
            reports.append((str(file), data))
    return reports


def profile_yaml(profile: TimeProfile, header: Sequence[str]) -> str:
    """The profile as a YAML file `--profile` reads, with `header` as its opening comment."""
    body = yaml.safe_dump(profile.model_dump(exclude_none=True), sort_keys=False, allow_unicode=True, width=100)
    return "".join(f"# {line}\n" if line else "#\n" for line in header) + "\n" + body
