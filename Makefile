# Two entry points for a fresh machine (see README.md):
#   make quickstart   set up .venv and run the main job (a short PPO run on the offline model)
#   make test         set up .venv and run the whole test suite
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
# torch is pinned here, not in package metadata: 2.13.0 is the CPU wheel this machine serves.
TORCH  ?= torch==2.13.0
# ppo-grounding with its extras: [plot] (matplotlib: learning curves, replay frames) and
# [video] (imageio-ffmpeg: MP4 replays).
PACKAGES := packages/babyai_text packages/llm_policy "packages/ppo_grounding[plot,video]"

.PHONY: setup quickstart test lint clean gpu-smoke
setup: $(VENV)/.installed

$(VENV)/.installed: Makefile requirements-dev.txt $(wildcard packages/*/pyproject.toml)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH)"
	$(PY) -m pip install --quiet $(foreach p,$(PACKAGES),-e $(p)) -r requirements-dev.txt
	touch $@

quickstart: setup
	$(PY) examples/quickstart.py

# pytest exits 5 when it collected nothing: that is a broken suite, never a pass.
test: setup
	$(PY) -m pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests" >&2; exit 1; fi; exit $$rc

# One PPO update of each paper-size model in bf16 on CUDA, then DDP on every visible GPU; says so
# and exits 0 on a machine without CUDA. TORCH= a CUDA build (e.g. TORCH=torch) on a GPU machine.
gpu-smoke: setup
	$(PY) benchmarks/gpu_smoke.py

# The checks of .pre-commit-config.yaml (ruff, codespell on code and prose) and mypy on the three
# packages (they ship py.typed), with the versions pinned in requirements-dev.txt.
lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/codespell
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV) runs
