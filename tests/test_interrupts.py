"""Ctrl-C (SIGINT) and SIGTERM in every phase of a run: exit 130 within 5 s, one line on
stderr, every job in flight cancelled on its endpoint, finished reports kept whole.

Each test waits for something it can observe before it sends the signal: the signal
handler installed (/proc), a progress line, a job seen by the server, a report on disk.
`python scripts/interrupt_drill.py` runs this file 20 times in a row.
"""

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import httpx
import pytest

from conftest import OFFLINE_CONFIG, ROOT
from test_runpod_e2e import KEY, Server

pytestmark = pytest.mark.slow

SIGNALS = [pytest.param(signal.SIGINT, id="SIGINT"), pytest.param(signal.SIGTERM, id="SIGTERM")]
EXIT_S = 5.0  # the promise: interrupted runs end this soon
WAIT_S = 120.0  # for the phase to be reached at all (a guard, never the thing tested)


class Analyze:
    """`vidagent analyze` in a process of its own, its stderr lines collected as they come."""

    def __init__(self, *args, env=None):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "vidagent", "analyze", *map(str, args), "--progress", "lines"],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, **(env or {})},
            # As a terminal starts it: a test runner started in the background (nohup, `&`)
            # hands SIGINT down ignored, and Python keeps an inherited SIG_IGN.
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stderr:
            self.lines.append(line.rstrip("\n"))

    def wait_until(self, ready, what: str) -> None:
        deadline = time.monotonic() + WAIT_S
        while not ready():
            assert self.proc.poll() is None, f"ended before {what}: {self.lines[-20:]}"
            assert time.monotonic() < deadline, f"never reached {what}: {self.lines[-20:]}"
            time.sleep(0.02)

    def wait_for_line(self, pattern: str) -> None:
        self.wait_until(lambda: any(re.search(pattern, line) for line in self.lines), f"a line like {pattern!r}")

    def handles_sigterm(self) -> bool:
        """vidagent's own handler is installed (its first act): SigCgt has SIGTERM's bit."""
        try:
            status = Path(f"/proc/{self.proc.pid}/status").read_text()
        except OSError:
            return False
        caught = int(re.search(r"^SigCgt:\s*([0-9a-f]+)", status, re.M).group(1), 16)
        return bool(caught & (1 << (signal.SIGTERM - 1)))

    def interrupt(self, signum) -> float:
        """Send the signal; the seconds until the process ended."""
        sent = time.monotonic()
        self.proc.send_signal(signum)
        try:
            self.proc.wait(timeout=EXIT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise AssertionError(f"still running {EXIT_S} s after the signal: {self.lines[-20:]}")
        self._reader.join(timeout=5)
        return time.monotonic() - sent

    def assert_interrupted(self) -> None:
        assert self.proc.returncode == 130, self.lines[-20:]
        assert not any("Traceback" in line for line in self.lines), self.lines
        assert self.lines[-1].startswith("vidagent: error: interrupted"), self.lines[-5:]


@pytest.fixture(scope="module")
def long_clip(clips):
    return clips("interrupt-long.mp4", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:duration=120",
                 "-f", "lavfi", "-i", "sine=duration=120", "-c:v", "libx264", "-preset", "ultrafast",
                 "-pix_fmt", "yuv420p", "-c:a", "aac")


@pytest.fixture(scope="module")
def server():
    srv = Server(workers=1, concurrency=1)  # one job in each worker at a time: the most left to cancel
    yield srv
    srv.stop()


def jobs_left(srv: Server) -> list[dict]:
    jobs = [httpx.get(f"{srv.base_url}/{ep}/health", headers={"Authorization": KEY}, timeout=10).json()["jobs"]
            for ep in ("yolo-ep", "whisper-ep")]
    return [j for j in jobs if j["inQueue"] or j["inProgress"]]


def assert_no_job_left(srv: Server) -> None:
    """RunPod's view after the client exited: nothing queued, nothing running."""
    deadline = time.monotonic() + EXIT_S
    while jobs_left(srv):
        assert time.monotonic() < deadline, jobs_left(srv)
        time.sleep(0.05)


LOCAL = ("--config", OFFLINE_CONFIG, "--no-cache", "--detect-fps", "2")


@pytest.mark.parametrize("signum", SIGNALS)
def test_during_start_up(signum, long_clip, tmp_path):
    run = Analyze(long_clip, "--out", tmp_path, *LOCAL)
    run.wait_until(run.handles_sigterm, "start-up")
    run.interrupt(signum)
    run.assert_interrupted()


@pytest.mark.parametrize("signum", SIGNALS)
def test_during_extraction(signum, long_clip, tmp_path):
    run = Analyze(long_clip, "--out", tmp_path, *LOCAL, "--no-transcribe")
    run.wait_for_line(r"detect frames \d+/")
    run.interrupt(signum)
    run.assert_interrupted()
    assert list(tmp_path.rglob("*.tmp")) == []


@pytest.mark.parametrize("signum", SIGNALS)
def test_while_jobs_are_sent_and_waited_for(signum, server, long_clip, tmp_path):
    run = Analyze(long_clip, "--out", tmp_path, *LOCAL, "--detect-fps", "10", "--backend", "runpod",
                  env=server.env(RUNPOD_CONCURRENCY="4"))
    run.wait_until(lambda: len(jobs_left(server)) == 2, "jobs queued or running on both endpoints")
    run.interrupt(signum)
    run.assert_interrupted()
    assert_no_job_left(server)
    assert KEY not in "\n".join(run.lines)


@pytest.mark.parametrize("signum", SIGNALS)
def test_between_videos_keeps_the_finished_report_whole(signum, sample, long_clip, tmp_path):
    run = Analyze(sample, long_clip, "--out", tmp_path, *LOCAL)
    run.wait_until(lambda: (tmp_path / "sample" / "report.json").exists(), "the first report")
    run.interrupt(signum)
    run.assert_interrupted()
    report = json.loads((tmp_path / "sample" / "report.json").read_text())
    assert report["status"] == "complete" and report["transcript"]["segments"]
    assert not (tmp_path / "interrupt-long" / "report.json").exists()
    index = json.loads((tmp_path / "index.json").read_text())
    assert [row["status"] for row in index["videos"]] == ["done"]
    assert list(tmp_path.rglob("*.tmp")) == []


def test_a_sigterm_python_drops_is_delivered_again():
    """A SIGTERM whose KeyboardInterrupt is raised inside a weakref callback (as an import
    runs them) is printed as "Exception ignored" and lost; the run must still end as
    interrupted (it once ran on past the signal in `test_during_start_up`)."""
    script = textwrap.dedent("""
        import os, signal, sys, time, weakref
        from vidagent.cli import signals

        signals.install()

        class Thing:
            pass

        def dropped(_):  # the signal lands here, where Python cannot let it propagate
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.2)

        thing = Thing()
        ref = weakref.ref(thing, dropped)
        del thing
        print("dropped", flush=True)
        try:
            time.sleep(60)
        except KeyboardInterrupt:
            sys.exit(130)
        sys.exit(0)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert "dropped" in done.stdout and "Exception ignored" in done.stderr, done  # it was lost once
    assert done.returncode == 130, done  # and then delivered again
