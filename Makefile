# tintype — `make run` starts everything on embedded defaults; `make test` runs the suite.
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed

.PHONY: run test test-browser test-chaos test-unit install system-deps clean lint translations bench-colorize weights bench-temporal bench-inpaint \
	bench-keyframes bench-likeness bench-damage bench-scale bench-e2e bench-precision bench-archival

$(STAMP): pyproject.toml requirements/cpu.txt requirements/gpu.txt requirements/install-torch.sh
	@command -v $(PYTHON) >/dev/null || { echo "needs $(PYTHON) (apt-get install python3.11 python3.11-venv)"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	sh requirements/install-torch.sh $(PY)
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

# --durations: the slowest tests at the end of the log, to keep the suite inside CI's time.
test: install lint
	$(PY) -m pytest -q -rs --durations=20 -m "not chaos and not browser"

# The pages in headless Chromium (Playwright; Debian's chromium package, which .ci/run
# installs): upload, paint, compare, languages, a phone-sized screen; writes docs/screenshots.
test-browser: install
	$(PY) -m pytest -q -rs -m browser

# ruff: pyflakes, pycodestyle, import order and bugbear (settings in pyproject.toml).
lint: install
	$(PY) -m ruff check .

# Faults injected into private deployments (workers, Redis, S3, PostgreSQL killed or
# misbehaving mid-job) plus the hostile-input and access tests; writes docs/reliability.md.
test-chaos: install
	RELIABILITY_REPORT=docs/reliability.md $(PY) -m pytest -q -rs --durations=10 -m "chaos or reliability"

# The pages' message catalogues: extract every string (babel.cfg) into build/messages.pot,
# merge it into each language's messages.po (translate the new entries there), compile the .mo
# the server reads. tests/test_translations.py fails while a string is untranslated or a .mo stale.
translations: install
	mkdir -p build
	$(VENV)/bin/pybabel extract -F babel.cfg --no-location --sort-output --project tintype -o build/messages.pot .
	$(VENV)/bin/pybabel update -i build/messages.pot -d tintype/web/translations --no-fuzzy-matching --ignore-obsolete
	$(VENV)/bin/pybabel compile -d tintype/web/translations

test-unit: install
	$(PY) -m pytest -q -rs -m "not integration"

# Video inpainting benchmark on ../shared/data/clips (+ damage detection on historical): JSON, markdown, PNGs.
bench-inpaint: install
	$(PY) -m bench.inpaint --out bench-results/inpaint

# Scratch and crack detection on prints: the scratch net against the morphological filters on
# held-out synthetic damage (precision, recall, IoU) and on the four real scratched prints of
# ../shared/data/historical (prints.png; how many of the cracks traced on them by hand, in
# bench/print_cracks.json, each detector finds), and its false alarms on 48 uncracked historical photos
# (false_alarms.png); writes bench-results/damage (git-ignored).
bench-damage: install
	$(PY) -m bench.damage --out bench-results/damage

# Keyframe colour (media.propagate) on ../shared/data/clips from greyscale: PSNR, SSIM, CDC,
# chroma warping error against the per-frame model and a naive flow chain; speed at 854x480.
bench-keyframes: install
	$(PY) -m bench.keyframes --out bench-results/keyframes

# Temporal smoothing benchmark on ../shared/data/clips (not a timed test): JSON, markdown, plot.
bench-temporal: install
	$(PY) -m bench.temporal --out bench-results/temporal

# How intake's keyframe check scores true, edited and wrong pictures on ../shared/data/clips.
bench-likeness: install
	$(PY) -m bench.likeness --out bench-results/likeness

# GPU pool scaling on this machine with real Redis/PostgreSQL/S3: frames/s with 1 and 2 GPU
# worker processes (TORCH_THREADS=1 each), efficiency, submit → first chunk; JSON + markdown.
bench-scale: install
	$(PY) -m bench.scale --out bench-results/scale

# tintype restore against the naive script (ffmpeg → JPEG per frame → same model → ffmpeg) on
# generated grey clips at 854x480 and 1920x1080, 3 alternating pairs: median wall ratio, share
# outside the model's forward, cores busy, peak RSS, submit → first chunk / playable, peak
# intermediate storage projected to two hours, CLI overhead; JSON, markdown, timeline.png.
bench-e2e: install
	$(PY) -m bench.e2e --out bench-results/e2e

# Archive-grade in and out, one section per part (bench/archival_<part>.py): copied audio
# bit-exact, timecode, master luma error at the input's depth, interlace detection, grain
# noise power spectrum kept, provenance, a folder of photos against one call per photo.
bench-archival: install
	$(PY) -m bench.archival --out bench-results/archival

# MODEL_PRECISION: fp16/bf16 against fp32 (PSNR, colourfulness, ms/frame) on
# ../shared/data/historical/photos; fp16 and bf16 on a GPU host, bf16 on a CPU.
bench-precision: install
	$(PY) -m bench.precision --out bench-results/precision

# Quality and speed of the colorizer on ../shared/data (held-out photos, video clips);
# writes results.json, results.md and grid.png under bench-results/colorize (git-ignored).
bench-colorize: install
	$(PY) -m bench.colorize --out bench-results/colorize

# Zhang et al.'s released colorizer weights (models eccv16, siggraph17): downloaded where
# there is internet, kept only if the sha256 matches. Not shipped in the repository.
ZHANG_URL := https://colorizers.s3.us-east-2.amazonaws.com
WEIGHTS_FOLDER := tintype/gpu_workers/weights
ZHANG_WEIGHTS := colorization_release_v2-9b330a0b.pth=9b330a0bae53f4ded77b1e23defbf78beaa09c10ebc4c4999e8e4f4a160b93f9 \
	siggraph17-df00044c.pth=df00044c0a4d7c3edcecf6f75437ce346a66e7a42612d9b968e1a7e17dbc6f66

weights:
	@command -v curl >/dev/null || { echo "make weights: needs curl (apt-get install curl)"; exit 1; }
	@set -e; for entry in $(ZHANG_WEIGHTS); do \
	  file=$${entry%%=*}; sha=$${entry#*=}; dest=$(WEIGHTS_FOLDER)/$$file; \
	  if [ -f "$$dest" ] && echo "$$sha  $$dest" | sha256sum -c --status -; then \
	    echo "$$dest: present, sha256 OK"; continue; fi; \
	  echo "downloading $(ZHANG_URL)/$$file"; \
	  if ! curl -fL --retry 3 --connect-timeout 20 -o "$$dest.part" "$(ZHANG_URL)/$$file"; then \
	    rm -f "$$dest.part"; \
	    echo "make weights: could not download $$file (no internet here?); place it at $$dest (sha256 $$sha)"; \
	    exit 1; fi; \
	  if ! echo "$$sha  $$dest.part" | sha256sum -c -; then \
	    rm -f "$$dest.part"; \
	    echo "make weights: $$file does not have the expected sha256 $$sha; removed"; exit 1; fi; \
	  mv "$$dest.part" "$$dest"; echo "$$dest: sha256 OK"; \
	done

clean:
	rm -rf $(VENV) var build *.egg-info
