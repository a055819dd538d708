"""Every script in scripts/ keeps working: `--help` prints its help and exits 0, and a run
on a tiny input (the options that make it small) finishes and prints its result.

Benchmarks rot when nothing runs them: bench_pipeline.py once stopped with an ImportError
of a function that had moved. The numbers of these runs measure nothing; the runs prove
that the scripts still run against today's code.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT

SCRIPTS = ROOT / "scripts"
# Imported by the scripts and tests, never run on their own.
LIBRARIES = {"benchlib.py", "bench_gpu_profile.py", "speech_timeline.py"}
# Smoke-run by a test of their own: the GPU benchmark's --smoke mode (tests/test_bench_gpu.py),
# and any script another tests/test_*.py runs by name.
OWN_TESTS = {p.name: p.read_text() for p in (ROOT / "tests").glob("test_*.py") if p.name != "test_scripts.py"}
# The transcript-times benchmark and the sentence maker are being reworked, with their own
# smoke tests, on another branch (issue 19, parts 4-5); they join the --help check there.
REWORKED: set[str] = set()  # scripts whose smoke runs are being reworked elsewhere


def covered_elsewhere(name: str) -> bool:
    return name in REWORKED or any(f'"{name}"' in text for text in OWN_TESTS.values())


def runnable() -> list[str]:
    return sorted(p.name for p in SCRIPTS.glob("*.py") if 'if __name__ == "__main__"' in p.read_text())


def script(name: str, *args, cwd: Path = ROOT, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPTS / name), *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=timeout)


def test_every_file_is_a_script_or_a_library():
    """A new file in scripts/ is either run (and then tested here) or imported by one."""
    files = {p.name for p in SCRIPTS.glob("*.py")}
    assert files - LIBRARIES == set(runnable()), "classify the new file: a script with a __main__ guard, or a library"
    assert LIBRARIES <= files


@pytest.mark.parametrize("name", sorted(set(runnable()) - REWORKED))
def test_help_prints_usage_and_exits_0(name, tmp_path):
    done = script(name, "--help", cwd=tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"usage: {name}") and "--help" in done.stdout, done.stdout
    assert list(tmp_path.iterdir()) == []  # help is all it did


def test_every_script_has_a_tiny_run():
    assert {n for n in runnable() if not covered_elsewhere(n)} == set(TINY)
    assert not any(covered_elsewhere(n) for n in TINY)


# name -> (arguments, given a scratch folder; what its output must hold). Slow ones load models.
TINY = {
    "bench_batch.py": (lambda d: ["--sizes", "1", "--jobs", "1"], r"^\s+1\s+[\d.]+\s+\d+$"),
    "bench_captions.py": (lambda d: ["--scene-seconds", "3"], r"^scenes with a caption: 6 of 6$"),
    "bench_client_costs.py": (lambda d: ["--mb", "4", "--urls", "20", "--repeat", "1"],
                              r"^sha256sum \(floor\): [\d.]+ MB/s; content_hash / floor = [\d.]+$"),
    "bench_extract.py": (lambda d: [d / "clip.mp4", "--repeat", "1"], r"^floor\s+[\d.]+\s+1\.00$"),
    "bench_frame_rates.py": (lambda d: ["--seconds", "6", "--repeat", "1", "--only", "c30"], r"^\s+c30\s+[\d.]+\s+1\.00"),
    "bench_pipeline.py": (lambda d: [d / "clip.mp4", "--repeat", "1"], r"^best of 1 rounds: wall ratio [\d.]+"),
    "bench_speaker_match.py": (lambda d: ["--pairs", "2", "--minutes", "0.3", "--work", d / "match"],
                               r"^true voices with one name across the batch: \d+ of 3"),
    "bench_search.py": (lambda d: ["--hours", "1", "--queries", "3", "--index", d / "bench.sqlite"],
                        r"^vidagent search / bare FTS5 query \(same queries\): p50 [\d.]+x"),
    "interrupt_drill.py": (lambda d: ["--runs", "1", "--", "-k", "test_during_start_up and SIGINT",
                                      f"--basetemp={d / 'drill'}"], r"^1/1 runs passed$"),
    "make_clips.py": (lambda d: [d / "clips", "--seconds", "6"], r"vfr\.mp4$"),
    "make_sample.py": (lambda d: [d / "made.mp4", "--seconds", "8", "--speech-at", "0.5"],
                       r'^\{"text": "The quick brown fox .*"speech_start_s": 0\.5, "speech_end_s": [0-7]\.\d+, "duration_s": 8\.0\}$'),
}
SLOW = {"bench_batch.py", "bench_frame_rates.py", "bench_pipeline.py", "bench_speaker_match.py", "interrupt_drill.py"}


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n for n in sorted(TINY)])
def test_a_tiny_run_finishes(name, tmp_path, clips):
    clips("six-seconds.mp4", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30:duration=6", "-f", "lavfi",
          "-i", "sine=frequency=440:duration=6", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
          "-c:a", "aac", "-shortest")
    (tmp_path / "clip.mp4").symlink_to(clips("six-seconds.mp4"))
    arguments, expected = TINY[name]
    done = script(name, *arguments(tmp_path))
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert re.search(expected, done.stdout, re.M), done.stdout
    assert "Traceback" not in done.stderr

