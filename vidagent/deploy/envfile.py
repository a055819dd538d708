"""The endpoint ids into `.env`, every other line kept."""

from __future__ import annotations

import re
from pathlib import Path

from ..files import atomic_write

_ASSIGNMENT = re.compile(r"^(\s*)(export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=")


def update_env_file(path: Path, values: dict[str, str]) -> None:
    """Set KEY=VALUE lines: existing keys replaced where they stand (every occurrence, `export`
    kept), other lines and comments untouched, new keys appended. Atomic: a reader sees the
    old file or the new one; its permissions are kept (a new file is private: it holds keys)."""
    target = path.resolve()  # write through a symlink, not over it
    try:
        text = target.read_text(encoding="utf-8")
        mode = target.stat().st_mode & 0o777
    except FileNotFoundError:
        text, mode = "", 0o600
    lines = text.splitlines(keepends=True)
    seen = set()
    for i, line in enumerate(lines):
        match = _ASSIGNMENT.match(line)
        if match and match.group(3) in values:
            key = match.group(3)
            ending = "\n" if line.endswith("\n") else ""
            lines[i] = f"{match.group(1)}{match.group(2) or ''}{key}={values[key]}{ending}"
            seen.add(key)
    new = [f"{key}={value}\n" for key, value in values.items() if key not in seen]
    if new and lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    atomic_write(target, "".join(lines + new), mode)
