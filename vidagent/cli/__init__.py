"""Command line: the only package that imports typer and rich.

`main()` is the one error boundary: a VidagentError becomes one line on stderr and its
exit code (usage errors are Typer's, exit 2). Anything else is a bug and keeps its
traceback.
"""

from __future__ import annotations

import sys


def main() -> None:
    if sys.argv[1:2] == ["analyze"]:
        # The frame extraction process starts while this one imports (~0.3 s each).
        from ..media.child import prestart

        prestart()
    from ..errors import VidagentError
    from .app import app

    try:
        app()
    except VidagentError as exc:
        print(f"vidagent: error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
