"""A throwaway PostgreSQL server for tests, from Debian's `postgresql` package.

initdb + pg_ctl in a fresh folder, listening on a Unix socket only (no TCP port to
collide with), trust authentication, fsync off. PostgreSQL refuses to run as root, so
as root the server runs as the `postgres` user the package creates."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest


def bin_dir() -> Path | None:
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: int(p.parent.parent.name))
    return versions[-1].parent if versions else None


class PostgresServer:
    def __init__(self):
        binaries = bin_dir()
        if binaries is None:
            pytest.skip("no PostgreSQL server binaries (apt-get install postgresql)")
        self.bin = binaries
        # Not under pytest's tmp folder: that one is private to root, and the server may not be.
        self.folder = Path(tempfile.mkdtemp(prefix="vidagent-pg-"))
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            try:
                pwd.getpwnam("postgres")
            except KeyError:
                pytest.skip("running as root and there is no postgres user to run the server as")
            shutil.chown(self.folder, "postgres", "postgres")
            self.as_user = ["runuser", "-u", "postgres", "--"]
        data, self.socket = self.folder / "data", self.folder
        self._run("initdb", "-D", str(data), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--locale=C", "--no-sync")
        self.data = data
        options = f"-p 5432 -k {self.socket} -c listen_addresses='' -c fsync=off -c max_connections=40"
        self._run("pg_ctl", "-D", str(data), "-l", str(self.folder / "server.log"), "-o", options, "-w", "start")
        self.url = f"postgresql://postgres@/postgres?host={self.socket}&port=5432"

    def _run(self, tool: str, *args: str) -> None:
        done = subprocess.run([*self.as_user, str(self.bin / tool), *args], capture_output=True, text=True,
                              timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"{tool} failed: {done.stderr or done.stdout}")

    def database(self, name: str) -> str:
        """A new empty database on this server, as a URL."""
        self._run("createdb", "-h", str(self.socket), "-p", "5432", "-U", "postgres", name)
        return f"postgresql://postgres@/{name}?host={self.socket}&port=5432"

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)
