#!/usr/bin/env bash
# Build the small wheelhouse that tools/dev/gpu_check.sh installs from on a CUDA machine that has no
# package index (only Python with torch, torchvision, nvcc and ninja, as the lent H200 machines have).
#
#   bash tools/dev/make_gpu_wheelhouse.sh shared/gpu_wheelhouse      # here, where pip reaches an index
#   bash tools/dev/gpu_check.sh shared/gpu_wheelhouse                # there
#
# It holds the OpenMMLab releases (mmengine, mmsegmentation, mmdet), timm, the small dependencies such a
# machine lacks (pure Python, plus pycocotools and shapely built for the target Python), build tools
# (setuptools<81, wheel, ninja) and mmcv 2.1.0's source distribution (built there by tools/setup_env.sh).
# Bigger dependencies (numpy, scipy, matplotlib, opencv) are expected on the machine: check with
# `bash tools/dev/gpu_check.sh --dry-run`.
#
# Environment: TARGET_PYTHON (3.12: the Python of the machine where the wheels are installed),
# VENV (<repo>/.venv: its pip is used; `make setup` makes it: mmcv's sdist needs setuptools<81 and wheel
# to be read), PIP (overrides: the pip command). shared/ is ignored by git: the wheelhouse is never committed.
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: bash tools/dev/make_gpu_wheelhouse.sh OUT_DIR" >&2; exit 2; }
OUT="$1"
TARGET_PYTHON="${TARGET_PYTHON:-3.12}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="${VENV:-$ROOT/.venv}"
[ -n "${PIP:-}" ] || [ -x "$VENV/bin/python" ] || { echo "no venv at $VENV: run 'make setup' first or set VENV/PIP" >&2; exit 1; }
read -r -a PIP <<<"${PIP:-$VENV/bin/python -m pip --disable-pip-version-check}"
mkdir -p "$OUT"

# Pinned to what tools/setup_env.sh installs; the small ones to versions that work with it here.
PURE=(
  mmengine==0.10.7 mmsegmentation==1.2.2 mmdet==3.3.0 timm==1.0.31
  addict yapf platformdirs termcolor prettytable wcwidth ftfy terminaltables
  'setuptools>=77,<81' wheel
)
BINARY=(pycocotools shapely ninja)
PLATFORMS=()
for p in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64 manylinux1_x86_64; do
  PLATFORMS+=(--platform "$p")
done

echo "[wheelhouse] pure-Python wheels -> $OUT"
"${PIP[@]}" download -q --no-deps --only-binary=:all: -d "$OUT" "${PURE[@]}"
echo "[wheelhouse] binary wheels for CPython $TARGET_PYTHON (x86-64 Linux)"
"${PIP[@]}" download -q --no-deps --only-binary=:all: --implementation cp --python-version "$TARGET_PYTHON" \
  "${PLATFORMS[@]}" -d "$OUT" "${BINARY[@]}"
echo "[wheelhouse] mmcv 2.1.0 source distribution"
"${PIP[@]}" download -q --no-deps --no-binary :all: --no-build-isolation -d "$OUT" mmcv==2.1.0

ls -l "$OUT"
size=$(du -sb "$OUT" | cut -f1)
echo "[wheelhouse] $(ls "$OUT" | wc -l) files, $((size / 1024 / 1024)) MiB ($size bytes)"
[ "$size" -lt $((64 * 1024 * 1024)) ] || { echo "[wheelhouse] ERROR: over 64 MiB, too big to carry to a device machine" >&2; exit 1; }
