#!/usr/bin/env python3
"""Run the interruption tests many times in a row and say how many runs passed.

    python scripts/interrupt_drill.py [--runs 20] [-- extra pytest args]

A flaky interruption test is a red CI waiting to happen: this is how we know they are not.
Each run is the whole of tests/test_interrupts.py (SIGINT and SIGTERM in every phase).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    args, extra = parser.parse_known_args()
    passed = 0
    for run in range(1, args.runs + 1):
        started = time.monotonic()
        proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                               "tests/test_interrupts.py", *[a for a in extra if a != "--"]],
                              cwd=ROOT, capture_output=True, text=True)
        ok = proc.returncode == 0
        passed += ok
        tail = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else proc.stderr.strip()[-200:]
        print(f"run {run}/{args.runs}: {'pass' if ok else 'FAIL'} ({time.monotonic() - started:.0f} s) {tail}",
              flush=True)
        if not ok:
            print("\n".join(proc.stdout.splitlines()[-40:]), flush=True)
    print(f"{passed}/{args.runs} runs passed")
    sys.exit(0 if passed == args.runs else 1)


if __name__ == "__main__":
    main()
