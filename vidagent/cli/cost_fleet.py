"""`cost-estimate --workers N`: the segment path and the single-client path side by side."""

from __future__ import annotations

from .cost import _usd


def print_fleet(fleet, duration_s: float) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if not console.is_terminal:
        console = Console(width=140)
    work = fleet.work
    title = (f"Segment path on {fleet.workers} worker(s) ({fleet.pool}): {work.segments} segment(s) of "
             f"{work.segment_s:g} s in {work.waves} wave(s), against the single-client path")
    table = Table(title=title, title_justify="left")
    for heading in ("path", "wall s", "client CPU s", "uploaded", "upload s", "worker s", "cold starts", "$ flex"):
        table.add_column(heading, justify="left" if heading == "path" else "right")
    for name, path in (("segment", fleet.segment), ("single client", fleet.single)):
        table.add_row(name, f"{path.wall_s:,.1f}", f"{path.client_cpu_s:,.1f}", _bytes(path.uploaded_bytes),
                      f"{path.upload_s:,.1f}", f"{path.worker_s:,.1f}", str(path.cold_starts), _usd(path.usd_flex))
    console.print(table)
    console.print(f"One segment on a worker: decode {work.decode_s:.1f} s, YOLO and Whisper {work.inference_s:.1f} s, "
                  f"overhead {work.overhead_s:.1f} s.", markup=False, highlight=False)
    console.print(f"Faster: {_verdict(fleet.faster)}"
                  + (f" ({fleet.speedup:g}x)" if fleet.speedup and fleet.faster == "segment" else "")
                  + f". Cheaper: {_verdict(fleet.cheaper)}.", markup=False, highlight=False)
    for name, source in fleet.figures.items():
        console.print(f"- {name}: {source}", style="dim", markup=False, highlight=False)
    for note in fleet.notes:
        console.print(f"- {note}", style="dim", markup=False, highlight=False)


def _verdict(which: str) -> str:
    return {"segment": "the segment path", "single": "the single-client path", "same": "neither (within 2%)"}[which]


def _bytes(count: int) -> str:
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if count >= size:
            return f"{count / size:,.1f} {unit}"
    return f"{count} B"
