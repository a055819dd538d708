"""Command line: the only package that imports typer and rich.

`main()` is the one error boundary: a VidagentError becomes one line on stderr and its
exit code; Ctrl-C becomes exit 130. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import sys


def main() -> None:
    from ..errors import VidagentError
    from .app import app

    try:
        code = app(standalone_mode=False)
    except VidagentError as exc:
        print(f"vidagent: error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        print("vidagent: interrupted", file=sys.stderr)
        sys.exit(130)
    except SystemExit:
        raise
    except Exception as exc:  # click's usage errors arrive here with standalone_mode=False
        import click

        if isinstance(exc, click.exceptions.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        if isinstance(exc, click.exceptions.Abort):
            print("vidagent: interrupted", file=sys.stderr)
            sys.exit(130)
        raise
    sys.exit(code if isinstance(code, int) else 0)
