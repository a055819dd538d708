# Two commands that work on a fresh machine:  make demo   and   make test
# (both run `setup` first; it is quick once everything is installed).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# The torch pair that works with ultralytics here (see ../shared/DESIGN.md).
TORCH  := torch==2.14.1 torchvision==0.29.1
OUT    ?= out/demo

.PHONY: setup system-deps demo test test-fast bench clean

setup: system-deps $(STAMP)

# ffmpeg (test clips, benchmarks), the shared libraries OpenCV needs, chromium (the
# HTML report's browser test loads the page headless), PostgreSQL's server (the search
# index's second backend is tested against a real one the tests start), espeak-ng, sox and
# GNU time for the scripts' smoke runs (make_sample.py speaks, bench_batch.py measures, the
# conversation generator mixes; the suite's conversation is committed).
system-deps:
	@missing=""; \
	command -v ffmpeg >/dev/null 2>&1 || missing="$$missing ffmpeg"; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	command -v espeak-ng >/dev/null 2>&1 || missing="$$missing espeak-ng"; \
	test -x /usr/bin/time || missing="$$missing time"; \
	command -v sox >/dev/null 2>&1 || missing="$$missing sox"; \
	ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || missing="$$missing postgresql"; \
	ldconfig -p 2>/dev/null | grep -q 'libGL.so.1 ' || missing="$$missing libgl1"; \
	ldconfig -p 2>/dev/null | grep -q 'libgthread-2.0.so.0 ' || missing="$$missing libglib2.0-0"; \
	if [ -n "$$missing" ]; then \
	  if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	    echo "setup: installing$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else \
	    echo "setup: please install$$missing (e.g. sudo apt-get install$$missing)"; exit 1; \
	  fi; \
	fi

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q $(TORCH)
	$(BIN)/pip install -q -e '.[local,serve,dev]'
	# The offline speaker encoder's weights ship in this wheel; --no-deps: its librosa and
	# webrtcvad (an sdist needing a compiler) are never imported (docs/decisions.md).
	$(BIN)/pip install -q --no-deps 'resemblyzer==0.1.4'
	touch $@

# Every stage on (detection, transcript, captions, summary), offline models, every report file.
demo: setup
	$(BIN)/vidagent analyze tests/data/sample.mp4 --config configs/offline.yaml --caption --summary \
	  --caption-trigger person --format json,srt,vtt,html,captions_srt,captions_vtt --out $(OUT)
	@echo "demo: open $(OUT)/sample/report.html in a browser (report.json, subtitles beside it)"

# Three test processes, each taking whole files (module fixtures stay shared): most tests wait
# on subprocesses, servers and browsers, so three keep two cores busy (docs/decisions.md).
PYTEST := $(BIN)/python -m pytest -n 3 --dist loadfile

test: setup
	$(PYTEST)

test-fast: setup
	$(PYTEST) -m "not slow"

bench: setup
	$(BIN)/python scripts/bench_extract.py

clean:
	rm -rf $(VENV) out .pytest_cache
