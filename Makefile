# mmsupervit developer entry points. Each target first runs the (idempotent) set-up.
#
#   make demo     set up the environment, then run the main job (demo on generated data)
#   make test     set up the environment, then run the whole test suite
#   make setup    only set up the environment (./.venv by default)
#
# Variables: VENV (default ./.venv), MMSUPERVIT_WHEELHOUSE (folder with a prebuilt mmcv wheel),
# PYTEST_ARGS (extra pytest arguments, e.g. PYTEST_ARGS='-m "not slow"'); for mmcv's ops
# FORCE_CUDA=1 (CUDA ops), TORCH_CUDA_ARCH_LIST, MAX_JOBS (see tools/setup_env.sh --help).
VENV ?= $(CURDIR)/.venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=
export VENV

.PHONY: setup demo test

setup:
	bash tools/setup_env.sh

demo: setup
	$(PY) tools/run_demo.py

test: setup
	$(PY) -m pytest $(PYTEST_ARGS)
