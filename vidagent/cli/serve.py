"""`vidagent serve`: placeholder until the emulator lands (being written now)."""

from __future__ import annotations


def serve_command() -> None:
    """Run RunPod-compatible serverless endpoints on this machine (local emulator)."""
    raise SystemExit("vidagent serve: not implemented yet")
