"""The profile scripts/bench_gpu.py writes, and what it prints: which run stands for each
endpoint, the machine's facts, ratios to the published profile and the floor."""

from __future__ import annotations

import platform
from dataclasses import asdict
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def machine(smoke: bool) -> dict:
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else f"CPU ({platform.machine()})"
    versions = {p: _version(p) for p in ("torch", "ultralytics", "faster-whisper", "ctranslate2",
                                         "transformers", "vllm")}
    versions.update(python=platform.python_version(), cuda=str(torch.version.cuda))
    return {"gpu": gpu + (" SMOKE" if smoke else ""), "date": f"{datetime.now(timezone.utc):%Y-%m-%d}",
            "versions": versions}


def chosen(runs: list, endpoint: str, cuda: bool) -> dict:
    """The profile's figures for one endpoint, from the configurations the pipeline uses."""
    mine = [r for r in runs if r.endpoint == endpoint and not r.extra.get("floor")]
    if endpoint == "yolo":  # t(batch) = request + batch x unit, from the two largest batches
        precision = "fp16" if cuda else "fp32"
        by_batch = {r.extra["batch"]: r for r in mine if r.extra["precision"] == precision}
        small, large = sorted(by_batch)[-2:]
        per_call = {b: by_batch[b].wall_s / by_batch[b].calls for b in (small, large)}
        unit = (per_call[large] - per_call[small]) / (large - small)
        if unit <= 0:  # the larger job was no slower: noise on a busy machine, or fixed costs only
            return {"seconds_per_unit": round(per_call[large] / large, 6), "seconds_per_request": 0.0,
                    "basis": f"{precision}: jobs of {large} images took no longer than jobs of {small}, so no "
                             f"line fits: the {large}-image job's time per image, with no request cost."}
        return {"seconds_per_unit": round(unit, 6), "seconds_per_request": round(max(0.0, per_call[small] - small * unit), 6),
                "basis": f"{precision}: t(batch) = request + batch x unit through jobs of {small} and {large} "
                         "images; request is the worker's share only (RunPod's job fetch is not in it)."}
    if endpoint == "whisper":
        run = max(mine, key=lambda r: r.extra["batch_size"])
        return {"seconds_per_unit": round(run.per_unit, 6), "basis": f"{run.config}: {run.how}. seconds_per_request, "
                "cold start and idle are the published profile's."}
    run = max(mine, key=lambda r: int(r.config.rsplit(" ", 1)[1]))
    return {"seconds_per_unit": round(run.per_unit, 6), "basis": f"{run.config}: {run.how}. The summary, cold "
            "start and idle are the published profile's."}


def write_profile(runs: list, skipped: dict[str, str], facts: dict, out: Path, smoke: bool,
                  cuda: bool, command: str) -> object:
    from vidagent.cost import load_profile
    from vidagent.cost.measured import profile_yaml
    from vidagent.cost.tables import Measurement, TimeProfile

    base = load_profile()
    data = base.model_dump(exclude={"measurement"})
    for endpoint in ("yolo", "whisper", "vlm"):
        if endpoint in skipped:
            continue
        data[endpoint].update(chosen(runs, endpoint, cuda), gpu=facts["gpu"], provenance="measured",
                              source="scripts/bench_gpu.py" + (" --smoke: tiny models, not a measurement" if smoke else ""),
                              date=facts["date"])
    figures = [dict(asdict(r), per_unit=round(r.per_unit, 6)) for r in runs]
    figures += [{"endpoint": e, "skipped": why} for e, why in skipped.items()]
    data["measurement"] = Measurement(tool="scripts/bench_gpu.py", command=command, figures=figures, **facts)
    profile = TimeProfile.model_validate(data)
    header = [f"Measured by scripts/bench_gpu.py on {facts['gpu']}, {facts['date']}.",
              "Endpoints with `provenance: published` were not measured here (see measurement.figures)."]
    out.write_text(profile_yaml(profile, header), encoding="utf-8")
    return profile


def report(runs: list, skipped: dict[str, str], profile, facts: dict) -> None:
    from vidagent.config import Settings
    from vidagent.cost import MediaFacts, estimate, load_prices, load_profile

    published = load_profile()
    print(f"\n{facts['gpu']}, {facts['date']}; " + ", ".join(f"{k} {v}" for k, v in facts["versions"].items()))
    print(f"{'endpoint':8} {'configuration':34} {'items':>7} {'s per item':>11} {'x published':>12}")
    for r in runs:
        ratio = r.per_unit / published.of(r.endpoint).seconds_per_unit
        print(f"{r.endpoint:8} {r.config:34} {r.units:7g} {r.per_unit:11.5f} {ratio:12.2f}")
    for floor in (r for r in runs if r.extra.get("floor")):
        for ours in runs:
            same = (ours.extra.get("batch"), ours.extra.get("asked")) == (floor.extra["batch"], floor.extra["asked"])
            if same and not ours.extra.get("floor"):
                print(f"yolo {ours.config}: {ours.per_unit / floor.per_unit:.2f} x the floor ({floor.config})")
    for endpoint, why in skipped.items():
        print(f"{endpoint:8} not measured: {why}")
    prices, settings = load_prices(), Settings(caption=True)
    hour = MediaFacts.assumed(3600)
    measured = estimate(hour, settings, prices, profile).configured_usd_flex_per_hour
    pools = ", ".join(f"{e} {p}" for e, p in prices.endpoints.items())
    print(f"Cost per hour of video, captions on, at flex prices ({pools}): ${measured:.4f} with these figures, "
          f"${estimate(hour, settings, prices, published).configured_usd_flex_per_hour:.4f} with the published "
          "ones. The seconds are this machine's, the prices the pools'.")
