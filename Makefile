# tintype — `make run` starts everything on embedded defaults; `make test` runs the suite.
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed

.PHONY: run test test-unit install system-deps clean lint

$(STAMP): pyproject.toml requirements/cpu.txt
	@command -v $(PYTHON) >/dev/null || { echo "needs $(PYTHON) (apt-get install python3.11 python3.11-venv)"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -r requirements/cpu.txt
	$(PIP) install -q -e '.[test,monitor]'
	touch $(STAMP)

install: system-deps $(STAMP)

# ffmpeg comes from the system.
system-deps:
	@if ! command -v ffmpeg >/dev/null; then \
	  echo "installing ffmpeg"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq ffmpeg; \
	fi

run: install
	$(VENV)/bin/tintype run

test: install
	$(PY) -m pytest -q -rs

test-unit: install
	$(PY) -m pytest -q -rs -m "not integration"

clean:
	rm -rf $(VENV) var build *.egg-info
