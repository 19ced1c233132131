# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.ptdiag-installed

.PHONY: demo test lint slow test-slow bench clean fashion-mnist chromium options

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

# Debian packages, installed when apt is there and we run as root: dataset-fashion-mnist (real images for the
# demo and slow tests) and chromium (the headless HTML report test). Elsewhere a line says what is missing.
APT_INSTALL = if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(1) >/dev/null; \
	  else echo "note: $(1) not installed (needs root and apt-get); $(2)"; fi

fashion-mnist:
	@[ -d /usr/share/datasets/fashion-mnist ] || { $(call APT_INSTALL,dataset-fashion-mnist,the demo downloads it with torchvision when online); }

chromium:
	@command -v chromium >/dev/null || command -v chromium-browser >/dev/null || \
	  { $(call APT_INSTALL,chromium,the browser tests will be skipped); }

demo: $(STAMP) fashion-mnist
	HF_HUB_OFFLINE=1 $(VENV)/bin/ptdiag demo

test: $(STAMP) chromium
	$(VENV)/bin/ruff check ptdiag tests benchmarks
	$(VENV)/bin/vulture ptdiag benchmarks tools/vulture_allowlist.py --min-confidence 60  # dead code: delete it or allow-list why
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q --durations=10

slow: $(STAMP)
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q -m slow

test-slow: slow  # the same slow tier under the name CONTRIBUTING.md uses

# CPU benchmarks (benchmarks/README.md); the GPU one runs on a lent accelerator only.
bench: $(STAMP)
	for b in benchmarks/bench_*.py; do HF_HUB_OFFLINE=1 $(PY) $$b || exit 1; done

# Rewrite docs/OPTIONS.md from the setting declarations in ptdiag/config.py.
options: $(STAMP)
	PTDIAG_UPDATE_GOLDEN=1 HF_HUB_OFFLINE=1 $(PY) -m pytest -q tests/cli/test_options.py -k docs_options

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
