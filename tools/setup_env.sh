#!/usr/bin/env bash
# Set up (or refresh) the mmsupervit development environment.
#
#   bash tools/setup_env.sh            # uses/creates ./.venv
#
# Environment variables:
#   VENV                       virtual environment folder            (default: <repo>/.venv)
#   PYTHON                     interpreter used to create the venv    (default: python3)
#   MMSUPERVIT_WHEELHOUSE      folder searched first for a prebuilt mmcv 2.1.0 wheel matching
#                              this Python and torch (CI: ../shared/wheels)
#   MMSUPERVIT_CACHE           where a wheel built here is cached     (default: ~/.cache/mmsupervit)
#   MAX_JOBS                   parallel compile jobs for mmcv          (default: 2; pybind.cpp needs ~3 GB)
#
# Idempotent: every step checks what is already there; a second run takes seconds.
# A torch that is already installed in the venv is kept (bring your own CUDA build);
# otherwise torch 2.14.1 / torchvision 0.29.1 are installed.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV:-$ROOT/.venv}"
PYTHON="${PYTHON:-python3}"
CACHE="${MMSUPERVIT_CACHE:-$HOME/.cache/mmsupervit}"
WHEELHOUSE="${MMSUPERVIT_WHEELHOUSE:-}"
export MAX_JOBS="${MAX_JOBS:-2}"

TORCH_VERSION=2.14.1
TORCHVISION_VERSION=0.29.1
MMENGINE_VERSION=0.10.7
MMCV_VERSION=2.1.0
MMSEG_VERSION=1.2.2
MMDET_VERSION=3.3.0
TIMM_VERSION=1.0.31
# mmcv 2.1.0's setup.py and mmengine 0.10.7 (utils/package_utils.py) import pkg_resources,
# which setuptools removed (mmcv#3325). torch 2.14 needs setuptools>=77.
SETUPTOOLS_SPEC='setuptools>=77,<81'

say()  { printf '\033[1m[setup %s]\033[0m %s\n' "$(date +%H:%M:%S)" "$*"; }
die()  { printf '\033[31m[setup] ERROR:\033[0m %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------- python + venv
command -v "$PYTHON" >/dev/null 2>&1 || die "'$PYTHON' not found. Install Python 3.9-3.13 or set PYTHON=/path/to/python3."
if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" - <<'PY' || die "mmsupervit needs Python >= 3.9 (and <= 3.13: newer ones have no torch 2.14 wheels); got $("$PYTHON" --version 2>&1). Set PYTHON=..."
import sys
sys.exit(0 if (3, 9) <= sys.version_info[:2] <= (3, 13) else 1)
PY
  say "creating virtual environment $VENV"
  "$PYTHON" -m venv "$VENV" || die "could not create a venv (on Debian: apt-get install python3-venv)"
else
  say "reusing virtual environment $VENV"
fi
PY="$VENV/bin/python"
PIP=("$PY" -m pip --disable-pip-version-check)
"$PY" -c 'import sys; assert sys.version_info >= (3, 9)' || die "the venv's Python is older than 3.9; remove $VENV or set VENV=..."

have() {  # have <dist> <version-or-empty>: is the distribution installed (at that version)?
  "$PY" - "$1" "${2:-}" <<'PY'
import sys
from importlib.metadata import version, PackageNotFoundError
try:
    v = version(sys.argv[1])
except PackageNotFoundError:
    sys.exit(1)
sys.exit(0 if not sys.argv[2] or v.split('+')[0] == sys.argv[2] else 1)
PY
}

# ---------------------------------------------------------------- torch
TORCH_INSTALLED="$("$PY" -c 'import torch, torchvision; print(torch.__version__.split("+")[0], torch.__version__, torchvision.__version__)' 2>/dev/null || true)"
if [ -n "$TORCH_INSTALLED" ]; then
  set -- $TORCH_INSTALLED
  say "keeping installed torch $2 / torchvision $3"
  TORCH_INSTALLED="$1"
else
  say "installing torch==$TORCH_VERSION torchvision==$TORCHVISION_VERSION (several GB; ~2 min from a local cache, longer from the network)"
  "${PIP[@]}" install "torch==$TORCH_VERSION" "torchvision==$TORCHVISION_VERSION"
  TORCH_INSTALLED="$("$PY" -c 'import torch; print(torch.__version__.split("+")[0])')"
fi

# ---------------------------------------------------------------- build tools (after torch: torch upgrades setuptools)
if ! "$PY" -c 'import pkg_resources, wheel' >/dev/null 2>&1 || ! have ninja ""; then
  say "installing build tools ($SETUPTOOLS_SPEC, wheel, ninja)"
  "${PIP[@]}" install -q "$SETUPTOOLS_SPEC" wheel ninja
fi

# ---------------------------------------------------------------- mmengine (mmcv imports it)
if ! have mmengine "$MMENGINE_VERSION"; then
  say "installing mmengine $MMENGINE_VERSION"
  "${PIP[@]}" install -q "$SETUPTOOLS_SPEC" "mmengine==$MMENGINE_VERSION" "torch==$TORCH_INSTALLED"
fi

# ---------------------------------------------------------------- mmcv with ops
mmcv_ok() { "$PY" -c "import mmcv, mmcv.ops; assert mmcv.__version__ == '$MMCV_VERSION'; from mmcv.ops import nms, RoIAlign" >/dev/null 2>&1; }
PYTAG="cp$("$PY" -c 'import sys; print(f"{sys.version_info[0]}{sys.version_info[1]}")')"
# A compiled extension is tied to the torch it was built against: cache per torch version.
BUILT="$CACHE/wheels/torch-$TORCH_INSTALLED"

find_wheel() {  # print the first mmcv wheel for this Python in the given folders
  local d
  for d in "$@"; do
    [ -n "$d" ] && [ -d "$d" ] || continue
    ls "$d"/mmcv-"$MMCV_VERSION"-"$PYTAG"-"$PYTAG"-linux_*.whl 2>/dev/null | head -n 1 && return 0
  done
  return 0
}

if mmcv_ok; then
  say "mmcv $MMCV_VERSION with compiled ops already installed"
else
  # The shared wheelhouse only matches the torch it was built for (2.14.1).
  candidates=("$BUILT")
  if [ -n "$WHEELHOUSE" ] && [ "$TORCH_INSTALLED" = "$TORCH_VERSION" ]; then candidates=("$WHEELHOUSE" "$BUILT"); fi
  WHL="$(find_wheel "${candidates[@]}")"
  if [ -z "$WHL" ]; then
    command -v "${CXX:-g++}" >/dev/null 2>&1 || die "no C++ compiler ('${CXX:-g++}') to build mmcv ops. Install one (Debian: apt-get install g++) or set MMSUPERVIT_WHEELHOUSE to a folder with an mmcv-$MMCV_VERSION-$PYTAG wheel built for torch $TORCH_INSTALLED."
    "$PY" -c 'import sysconfig, os, sys; sys.exit(0 if os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")) else 1)' \
      || die "Python headers (Python.h) are missing; install them (Debian: apt-get install python3-dev)"
    SRC="$(mktemp -d)"
    trap 'rm -rf "$SRC"' EXIT
    say "no prebuilt mmcv $MMCV_VERSION wheel for $PYTAG/torch $TORCH_INSTALLED: building it from the PyPI sdist"
    say "  (~77 compile units, ~12 minutes on 2 idle cores; the wheel is cached in $BUILT, so this happens once per machine)"
    "${PIP[@]}" download -q --no-deps --no-binary :all: --no-build-isolation "mmcv==$MMCV_VERSION" -d "$SRC"
    tar xzf "$SRC"/mmcv-"$MMCV_VERSION".tar.gz -C "$SRC"
    # torch >= 2.x headers need C++20 (mmcv#3341); mmcv 2.1.0 hard-codes -std=c++17.
    sed -i "s/'-std=c++17'/'-std=c++20'/g" "$SRC/mmcv-$MMCV_VERSION/setup.py"
    grep -q "'-std=c++20'" "$SRC/mmcv-$MMCV_VERSION/setup.py" || die "could not patch mmcv's setup.py for C++20"
    mkdir -p "$BUILT"
    # --no-build-isolation: in an isolated build torch is invisible and ops are silently skipped (mmcv#3319).
    # Progress: ninja prints one line per compile unit; a heartbeat shows the build is alive.
    ( while sleep 60; do say "  ... still compiling mmcv ops ($(find "$SRC" -name '*.o' 2>/dev/null | wc -l)/77 objects)"; done ) &
    HB=$!
    MMCV_WITH_OPS=1 FORCE_CUDA=0 "${PIP[@]}" wheel --no-build-isolation --no-deps -w "$BUILT" "$SRC/mmcv-$MMCV_VERSION" \
      || { kill $HB 2>/dev/null; die "building mmcv $MMCV_VERSION failed (see the compiler output above)"; }
    kill $HB 2>/dev/null || true
    WHL="$(find_wheel "$BUILT")"
    [ -n "$WHL" ] || die "mmcv build produced no wheel in $BUILT"
    say "built and cached $WHL"
  fi
  say "installing $WHL"
  "${PIP[@]}" install -q --no-deps --force-reinstall "$WHL"
  # mmcv's own runtime requirements (addict, yapf, opencv, ...) without touching torch
  "${PIP[@]}" install -q addict packaging Pillow pyyaml yapf opencv-python
  mmcv_ok || { "$PY" -c 'import mmcv.ops' || true; die "mmcv installed but 'import mmcv.ops' fails (error above). If the wheel was built for another torch than $TORCH_INSTALLED, remove it from $BUILT (or the wheelhouse) and re-run."; }
fi

# ---------------------------------------------------------------- the rest, pinned
# ftfy/regex: mmseg 1.2.2 imports them unconditionally but lists them as extras (mmsegmentation#3704).
if have mmengine "$MMENGINE_VERSION" && have mmsegmentation "$MMSEG_VERSION" && have mmdet "$MMDET_VERSION" \
   && have timm "$TIMM_VERSION" && have pytest "" && have mmsupervit "" && have ftfy ""; then
  say "mmengine, mmsegmentation, mmdet, timm, pytest and mmsupervit already installed"
else
  say "installing mmengine $MMENGINE_VERSION, mmsegmentation $MMSEG_VERSION, mmdet $MMDET_VERSION, timm $TIMM_VERSION, test tools"
  "${PIP[@]}" install -q "$SETUPTOOLS_SPEC" "mmengine==$MMENGINE_VERSION" "mmcv==$MMCV_VERSION" \
      "mmsegmentation==$MMSEG_VERSION" "mmdet==$MMDET_VERSION" "timm==$TIMM_VERSION" ftfy regex \
      "torch==$TORCH_INSTALLED" 
  say "installing mmsupervit (editable) with its test extras"
  "${PIP[@]}" install -q --no-build-isolation -e "$ROOT[all,tests]"
fi

"$PY" - <<'PY' || die "the environment is incomplete (see the error above)"
import torch, mmcv, mmengine, mmseg, mmdet, timm, mmsupervit
from mmcv.ops import nms, RoIAlign
print(f'[setup] ready: torch {torch.__version__}, mmengine {mmengine.__version__}, mmcv {mmcv.__version__} (ops), '
      f'mmseg {mmseg.__version__}, mmdet {mmdet.__version__}, timm {timm.__version__}, mmsupervit {mmsupervit.__version__}')
PY
say "activate with: source $VENV/bin/activate"
