"""Command line: the only package that imports typer and rich.

`main()` is the one error boundary: a VidagentError becomes one line on stderr and its
exit code (usage errors are Typer's, exit 2), and so does a missing library that an extra
installs (vidagent/extras.py says which); Ctrl-C or SIGTERM at any moment is exit
130 (cli/signals.py). Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import sys


def main() -> None:
    from . import signals

    try:
        signals.install()  # first: SIGTERM at any later moment exits 130 (cli/signals.py)
        if sys.argv[1:2] == ["analyze"]:
            # The frame extraction process starts while this one imports (~0.3 s each).
            from ..media.child import prestart

            prestart()
        from ..errors import Interrupted, VidagentError
        from .app import app

        try:
            try:
                app()
            except ModuleNotFoundError as exc:  # a library an extra installs, imported where no check was
                from ..extras import from_import_error

                raise from_import_error(exc) or exc
        except VidagentError as exc:
            print(f"vidagent: error: {exc}", file=sys.stderr)
            if isinstance(exc, Interrupted):
                signals.exit_now(exc.exit_code)
            sys.exit(exc.exit_code)
    except KeyboardInterrupt:  # before a command took charge of it (start-up, imports)
        signals.leaving()
        print("vidagent: error: interrupted", file=sys.stderr)
        signals.exit_now(130)
