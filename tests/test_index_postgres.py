"""The PostgreSQL backend behind the same interface, against a real server the tests start
(Debian's `postgresql` package, tests/pg_server.py): the fixture reports' known answers,
the same answers as SQLite, refreshing, concurrent writer processes, the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from index_fixtures import write_reports
from pg_server import PostgresServer
from test_index import ROOT, WRITER
from vidagent.errors import IndexStoreError
from vidagent.index import Query, open_index, report_moments
from vidagent.index.refresh import refresh
from vidagent.report.reader import read_report

pytest.importorskip("psycopg", reason="pip install 'vidagent[postgres]'")
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server():
    running = PostgresServer()
    yield running
    running.stop()


@pytest.fixture
def database(server, request):
    return server.database(request.node.name.lower().replace("[", "_").replace("]", "").replace("-", "_")[:60])


@pytest.fixture
def both(database, tmp_path):
    write_reports(tmp_path)
    stores = {"sqlite": open_index(tmp_path / "index.sqlite"), "postgres": open_index(database)}
    for store in stores.values():
        refresh(store, [tmp_path])
    yield stores
    for store in stores.values():
        store.close()


QUERIES = [
    Query("lighthouse"), Query("contract"), Query("contract penalty"), Query("forklift"), Query("light*"),
    Query("forklift", label="person"), Query("forklift", label="person", min_count=3), Query(label="person"),
    Query(label="person", min_count=3), Query("forklift", video_glob="str*"), Query("contract", start=17.0),
    Query("forklift", kinds=("caption",)), Query(kinds=("caption",)), Query("zebra"),
    Query("when was the contract signed", mode="any"), Query("what is the", mode="any"),
]


def test_same_answers_as_sqlite(both):
    for q in QUERIES:
        got = {name: [(h.video.name, h.moment.kind, h.moment.start, h.moment.end) for h in store.search(q)]
               for name, store in both.items()}
        assert set(got["postgres"]) == set(got["sqlite"]), q
        if q.text and got["sqlite"]:
            assert got["postgres"][0] == got["sqlite"][0], q  # the same best moment


def test_highlights_and_word_times(both):
    [hit] = both["postgres"].search(Query("lighthouse"))
    assert hit.moment.at == 10.8 and [hit.moment.text[a:b] for a, b in hit.highlights] == ["lighthouse"]
    first = both["postgres"].search(Query("contract"))[0]
    assert [first.moment.text[a:b] for a, b in first.highlights] == ["contract", "Contract"]


def test_refresh_replaces_and_removes(database, tmp_path):
    paths = write_reports(tmp_path)
    store = open_index(database)
    assert refresh(store, [tmp_path]).added == 3
    assert refresh(store, [tmp_path]).unchanged == 3
    count = len(report_moments(read_report(paths["harbour"])))
    assert store.add(paths["harbour"], read_report(paths["harbour"])) == count
    assert len(store.search(Query("lighthouse"))) == 1
    paths["street"].unlink()
    assert refresh(store, [tmp_path]).removed == 1
    assert {v.name for v in store.videos()} == {"harbour.mp4", "office.mp4"}
    store.close()


def test_concurrent_writer_processes(database, tmp_path):
    shared = write_reports(tmp_path / "shared")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, database, "10", *map(str, shared.values()),
                                 *map(str, write_reports(tmp_path / f"w{i}").values())],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=env) for i in range(3)]
    for writer in writers:
        assert writer.stdout.readline() == "ready\n"
    for writer in writers:
        writer.stdin.write("go\n")
        writer.stdin.flush()
    for writer in writers:
        _, stderr = writer.communicate(timeout=600)
        assert writer.returncode == 0, stderr
    store = open_index(database)
    assert len(store.videos()) == 12
    assert len(store.search(Query("lighthouse"))) == 4
    store.close()


def test_cli_and_bad_urls(database, run_cli, tmp_path):
    write_reports(tmp_path / "out")
    assert run_cli("index", tmp_path / "out", "--index", database).code == 0
    found = run_cli("search", "lighthouse", "--index", database)
    assert found.code == 0 and "«lighthouse»" in found.stdout, found
    with pytest.raises(IndexStoreError, match="holds a password: put it in PGPASSWORD"):
        open_index("postgresql://user:hunter2@localhost/db")
    refused = run_cli("search", "x", "--index", "postgresql://user:hunter2@localhost/db")
    assert refused.code == 1 and "hunter2" not in refused.stderr + refused.stdout
    gone = run_cli("search", "x", "--index", f"postgresql://postgres@/nope?host={tmp_path}&port=1")
    assert gone.code == 1 and "cannot connect to the server" in gone.stderr and "Traceback" not in gone.stderr
