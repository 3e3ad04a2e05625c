#!/usr/bin/env bash
# Set up (or refresh) the mmsupervit development environment.
#
#   bash tools/setup_env.sh                      # uses/creates ./.venv, mmcv with CPU ops
#   FORCE_CUDA=1 bash tools/setup_env.sh         # mmcv with CUDA ops as well (needs nvcc; see below)
#   bash tools/setup_env.sh --dry-run            # print the plan (flavour, cache, build command), change nothing
#
# Environment variables:
#   VENV                       virtual environment folder            (default: <repo>/.venv)
#   PYTHON                     interpreter used to create the venv    (default: python3)
#   MMSUPERVIT_WHEELHOUSE      folder searched first for a prebuilt mmcv 2.1.0 wheel matching
#                              this Python, torch and ops flavour (CI: ../shared/wheels)
#   MMSUPERVIT_CACHE           where a wheel built here is cached     (default: ~/.cache/mmsupervit)
#   MAX_JOBS                   parallel compile jobs for mmcv          (default: 2; pybind.cpp needs ~3 GB)
#   FORCE_CUDA                 unset: keep the installed mmcv whatever its ops, else install CPU ops;
#                              0: CPU ops (replaces CUDA ops); 1: CUDA + CPU ops
#   TORCH_CUDA_ARCH_LIST       FORCE_CUDA=1 only: GPU architectures to compile for, e.g. "9.0" (H100/H200),
#                              "8.0;9.0" (default: those of the visible GPUs; required when none is visible)
#   CUDA_HOME                  FORCE_CUDA=1 only: the CUDA toolkit (default: `which nvcc`, /usr/local/cuda,
#                              else NVIDIA's compiler packages from the package index, matching torch's CUDA)
#   MMSUPERVIT_SETUP_DRY_RUN   1: same as --dry-run
#   MMSUPERVIT_PRETRAIN        1 (default): also install mmpretrain 1.2.0 and its runtime deps, the `pretrain`
#                              extra (ImageNet classification configs, configs/*/*_in1k.py); 0: skip it
#
# mmcv's ops come in flavours: `cpu` (CPU kernels only) or `cuXY-sm_NN[-sm_MM]` (CUDA X.Y kernels for those
# GPU architectures, plus the CPU kernels). The default is `cpu` even on a GPU machine: the build hides the
# GPUs from mmcv's setup.py (which otherwise switches to a CUDA build and fails without nvcc), and
# mmsupervit.ops runs the detection ops with torchvision's CUDA kernels at run time.
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
DRY_RUN="${MMSUPERVIT_SETUP_DRY_RUN:-0}"
PRETRAIN="${MMSUPERVIT_PRETRAIN:-1}"
FORCE_CUDA_ASKED="${FORCE_CUDA:-}"

TORCH_VERSION=2.14.1
TORCHVISION_VERSION=0.29.1
MMENGINE_VERSION=0.10.7
MMCV_VERSION=2.1.0
MMSEG_VERSION=1.2.2
MMDET_VERSION=3.3.0
MMPRETRAIN_VERSION=1.2.0
TIMM_VERSION=1.0.31
# mmcv 2.1.0's setup.py and mmengine 0.10.7 (utils/package_utils.py) import pkg_resources,
# which setuptools removed (mmcv#3325). torch 2.14 needs setuptools>=77.
SETUPTOOLS_SPEC='setuptools>=77,<81'

say()  { printf '\033[1m[setup %s]\033[0m %s\n' "$(date +%H:%M:%S)" "$*"; }
die()  { printf '\033[31m[setup] ERROR:\033[0m %s\n' "$*" >&2; exit 1; }
plan() { printf 'DRYRUN %s\n' "$*"; }  # one machine-readable key=value line of the dry-run plan

for arg in "$@"; do
  case "$arg" in
    --dry-run) DRY_RUN=1 ;;
    -h|--help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument '$arg' (usage: bash tools/setup_env.sh [--dry-run])" ;;
  esac
done
case "$PRETRAIN" in
  0|1) ;;
  *) die "MMSUPERVIT_PRETRAIN must be 0 or 1, got '$PRETRAIN'" ;;
esac
# the package extras the editable install takes (setup.py extras_require)
EXTRAS=seg,det,tests
[ "$PRETRAIN" = 0 ] || EXTRAS="$EXTRAS,pretrain"
case "$FORCE_CUDA_ASKED" in
  ''|0|1) ;;
  *) die "FORCE_CUDA must be 0 or 1 (or unset), got '$FORCE_CUDA_ASKED'" ;;
esac

# ---------------------------------------------------------------- python + venv
if [ "$DRY_RUN" = 1 ]; then
  [ -x "$VENV/bin/python" ] || die "--dry-run needs an existing venv with torch; $VENV has none (set VENV=...)"
fi
command -v "$PYTHON" >/dev/null 2>&1 || [ -x "$VENV/bin/python" ] \
  || die "'$PYTHON' not found. Install Python 3.9-3.13 or set PYTHON=/path/to/python3."
if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" - <<'PY' || die "mmsupervit needs Python >= 3.9 (and <= 3.13: newer ones have no torch 2.14 wheels); got $("$PYTHON" --version 2>&1). Set PYTHON=..."
import sys
sys.exit(0 if (3, 9) <= sys.version_info[:2] <= (3, 13) else 1)
PY
  say "creating virtual environment $VENV"
  "$PYTHON" -m venv "$VENV" || die "could not create a venv (on Debian: apt-get install python3-venv)"
else
  [ "$DRY_RUN" = 1 ] || say "reusing virtual environment $VENV"
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
# One interpreter start (importing torch takes seconds): prints "<torch> <torch full> <torchvision>" (nothing
# without torch), then the ops flavour as "<torch CUDA version or ''>|<flavour>|<arch list>" or "!<why not>".
# cpu: FORCE_CUDA unset or 0. CUDA: FORCE_CUDA=1, arch list from TORCH_CUDA_ARCH_LIST or the visible GPUs.
query_torch() {
  FORCE_CUDA="$FORCE_CUDA_ASKED" "$PY" - <<'PY'
import os, re, sys
from importlib.metadata import PackageNotFoundError, version
try:
    import torch  # torchvision is not imported: that would double the time of a dry run
    torchvision = version('torchvision')
except (ImportError, PackageNotFoundError):
    sys.exit(0)
print(torch.__version__.split('+')[0], torch.__version__, torchvision)


def flavour():
    cuda = torch.version.cuda or ''
    if os.environ.get('FORCE_CUDA') != '1':
        return f'{cuda}|cpu|'
    if not cuda:
        return (f'!FORCE_CUDA=1, but torch {torch.__version__} is a CPU-only build (torch.version.cuda is None): '
                'install a CUDA build of torch first, or leave FORCE_CUDA unset for CPU ops')
    arch_list = os.environ.get('TORCH_CUDA_ARCH_LIST', '').strip()
    if not arch_list:
        caps = sorted({torch.cuda.get_device_capability(i) for i in range(torch.cuda.device_count())}) \
            if torch.cuda.is_available() else []
        if not caps:
            return ('!FORCE_CUDA=1 but no GPU is visible, so the GPU architecture is unknown: set '
                    'TORCH_CUDA_ARCH_LIST to the GPUs the ops will run on, e.g. TORCH_CUDA_ARCH_LIST=9.0 '
                    '(H100/H200), 8.0 (A100), "8.0;9.0" (both)')
        arch_list = ';'.join(f'{major}.{minor}' for major, minor in caps)
    tags = set()
    for entry in re.split(r'[;\s]+', arch_list):
        if not entry:
            continue
        m = re.fullmatch(r'(\d+)\.(\d+)([af]?)(\+PTX)?', entry, re.IGNORECASE)
        if m:
            tags.add(f'sm_{m[1]}{m[2]}{m[3].lower()}' + ('+ptx' if m[4] else ''))
        elif re.fullmatch(r'[A-Za-z]+(\+[A-Za-z]+)?(\+PTX)?', entry):  # torch's named architectures ("Hopper")
            tags.add(entry.lower())
        else:
            return f'!TORCH_CUDA_ARCH_LIST entry {entry!r} is not an architecture such as 9.0, 8.6+PTX or 9.0a'
    return f'{cuda}|cu{cuda.replace(".", "")}-{"-".join(sorted(tags))}|{arch_list}'


print(flavour())
PY
}
TORCH_QUERY="$(query_torch)"
if [ -z "$TORCH_QUERY" ]; then
  [ "$DRY_RUN" != 1 ] || die "--dry-run needs torch and torchvision in $VENV (run the set-up once without --dry-run)"
  say "installing torch==$TORCH_VERSION torchvision==$TORCHVISION_VERSION (several GB; ~2 min from a local cache, longer from the network)"
  "${PIP[@]}" install "torch==$TORCH_VERSION" "torchvision==$TORCHVISION_VERSION"
  TORCH_QUERY="$(query_torch)"
  [ -n "$TORCH_QUERY" ] || die "torch was installed but does not import in $VENV"
else
  set -- $(head -n 1 <<<"$TORCH_QUERY")
  [ "$DRY_RUN" = 1 ] || say "keeping installed torch $2 / torchvision $3"
fi
TORCH_INSTALLED="$(head -n 1 <<<"$TORCH_QUERY" | cut -d' ' -f1)"
FLAVOUR_INFO="$(sed -n 2p <<<"$TORCH_QUERY")"
case "$FLAVOUR_INFO" in "!"*) die "cannot choose mmcv's ops flavour: ${FLAVOUR_INFO#!}" ;; esac
IFS='|' read -r TORCH_CUDA FLAVOUR ARCH_LIST <<<"$FLAVOUR_INFO"

if [ "$DRY_RUN" != 1 ]; then
  # -------------------------------------------------------------- build tools (after torch: torch upgrades setuptools)
  if ! "$PY" -c 'import pkg_resources, wheel' >/dev/null 2>&1 || ! have ninja ""; then
    say "installing build tools ($SETUPTOOLS_SPEC, wheel, ninja)"
    "${PIP[@]}" install -q "$SETUPTOOLS_SPEC" wheel ninja
  fi

  # -------------------------------------------------------------- mmengine (mmcv imports it)
  if ! have mmengine "$MMENGINE_VERSION"; then
    say "installing mmengine $MMENGINE_VERSION"
    "${PIP[@]}" install -q "$SETUPTOOLS_SPEC" "mmengine==$MMENGINE_VERSION" "torch==$TORCH_INSTALLED"
  fi
fi

PYTAG="cp$("$PY" -c 'import sys; print(f"{sys.version_info[0]}{sys.version_info[1]}")')"
# A compiled extension is tied to the torch it was built against and to its flavour: cache per both.
BUILT="$CACHE/wheels/torch-$TORCH_INSTALLED-$FLAVOUR"
# Caches of older set-ups were keyed by the torch version alone. They are read for the cpu flavour
# only, and only wheels that hold no CUDA code (checked like any other wheel below).
LEGACY="$CACHE/wheels/torch-$TORCH_INSTALLED"
FLAVOUR_STAMP="$VENV/.mmsupervit-mmcv-flavour"  # "<flavour> <size of mmcv/_ext*.so>" of the mmcv installed here

# Flavour of a wheel: from "<wheel>.flavour" written beside it when it was built here, else read from the
# extension: `cpu` (no CUDA code), `cuda` (CUDA code for unknown GPUs: never matches a cuXY-sm_NN flavour),
# `none` (no compiled ops at all).
wheel_flavour() {
  "$PY" - "$1" <<'PY'
import os, sys, zipfile
whl = sys.argv[1]
if os.path.exists(whl + '.flavour'):
    print(open(whl + '.flavour').read().split()[0])
    sys.exit(0)
with zipfile.ZipFile(whl) as z:
    exts = [n for n in z.namelist() if n.startswith('mmcv/_ext') and n.endswith('.so')]
    data = z.read(exts[0]) if exts else None
# nvcc's host stubs register the kernels' fat binary at load time; a CPU-only build has neither
print('none' if data is None else 'cuda' if b'__cudaRegisterFatBinary' in data or b'.nv_fatbin' in data else 'cpu')
PY
}

# Flavour of the mmcv installed in the venv (without importing it): the stamp if it describes the
# extension that is there now, else read from the extension; empty if mmcv or its ops are missing.
installed_flavour() {
  "$PY" - "$FLAVOUR_STAMP" <<'PY'
import glob, importlib.util, os, sys
spec = importlib.util.find_spec('mmcv')
exts = glob.glob(os.path.join(spec.submodule_search_locations[0], '_ext*.so')) if spec else []
if not exts:
    sys.exit(0)
size = os.path.getsize(exts[0])
try:
    flavour, stamped = open(sys.argv[1]).read().split()
    if int(stamped) == size:
        print(flavour)
        sys.exit(0)
except (OSError, ValueError):
    pass
data = open(exts[0], 'rb').read()
print('cuda' if b'__cudaRegisterFatBinary' in data or b'.nv_fatbin' in data else 'cpu')
PY
}

find_wheel() {  # print the first mmcv wheel for this Python and $FLAVOUR in the given folders
  local d w f
  for d in "$@"; do
    [ -n "$d" ] && [ -d "$d" ] || continue
    for w in "$d"/mmcv-"$MMCV_VERSION"-"$PYTAG"-"$PYTAG"-linux_*.whl; do
      [ -f "$w" ] || continue
      f="$(wheel_flavour "$w")"
      if [ "$f" = "$FLAVOUR" ]; then echo "$w"; return 0; fi
      say "  not using $w: its ops are '$f', this set-up wants '$FLAVOUR'" >&2
    done
  done
  return 0
}

# The CUDA toolkit for FORCE_CUDA=1: prints CUDA_HOME, or "pip" when NVIDIA's compiler packages are to be
# installed. nvcc's major version must equal torch's CUDA major (torch.utils.cpp_extension refuses others).
nvcc_release() { "$1" --version 2>/dev/null | sed -n 's/.*release \([0-9][0-9]*\.[0-9][0-9]*\).*/\1/p'; }
cuda_home_ok() { [ -x "$1/bin/nvcc" ] && [ -f "$1/include/cuda_runtime.h" ]; }  # a toolkit, not a wrapper's folder
find_cuda_home() {
  local nvcc home rel
  if [ -n "${CUDA_HOME:-}" ]; then
    cuda_home_ok "$CUDA_HOME" || die "CUDA_HOME=$CUDA_HOME is not a CUDA toolkit (no bin/nvcc or include/cuda_runtime.h)"
    rel="$(nvcc_release "$CUDA_HOME/bin/nvcc")"
    [ "${rel%%.*}" = "${TORCH_CUDA%%.*}" ] || die "CUDA_HOME=$CUDA_HOME holds CUDA $rel, torch was built with CUDA $TORCH_CUDA: the major versions must match (unset CUDA_HOME to use NVIDIA's compiler packages for $TORCH_CUDA)"
    echo "$CUDA_HOME"; return 0
  fi
  # `which nvcc` may be a wrapper script (/usr/local/bin/nvcc): also try the folder of the file it links to
  nvcc="$(command -v nvcc 2>/dev/null || true)"
  for home in ${nvcc:+"$(dirname "$(dirname "$nvcc")")" "$(dirname "$(dirname "$(readlink -f "$nvcc")")")"} /usr/local/cuda; do
    cuda_home_ok "$home" || continue
    rel="$(nvcc_release "$home/bin/nvcc")"
    if [ "${rel%%.*}" = "${TORCH_CUDA%%.*}" ]; then echo "$home"; return 0; fi
    say "  not using the CUDA toolkit in $home: CUDA $rel, torch was built with CUDA $TORCH_CUDA" >&2
  done
  echo pip
}
# NVIDIA's compiler packages, pinned to torch's CUDA minor (the layout nvidia/cu13 exists from CUDA 13 on).
CUDA_PIP_PACKAGES=()
for p in nvidia-cuda-nvcc nvidia-cuda-crt nvidia-cuda-cccl nvidia-cuda-runtime nvidia-nvvm; do
  CUDA_PIP_PACKAGES+=("$p==$TORCH_CUDA.*")
done
torch_cuda_include() {  # the include folder of the NVIDIA packages torch was installed with, if any
  local inc
  inc="$("$PY" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")/nvidia/cu${TORCH_CUDA%%.*}/include"
  [ -f "$inc/cusparse.h" ] && echo "$inc" || true
}
install_pip_cuda() {  # install NVIDIA's compiler packages into the venv; prints the resulting CUDA_HOME
  local major="${TORCH_CUDA%%.*}" home
  [ "$major" -ge 13 ] 2>/dev/null || die "no nvcc for CUDA $TORCH_CUDA found (CUDA_HOME, PATH, /usr/local/cuda), and NVIDIA's compiler packages are set up here for CUDA >= 13 only: install a CUDA $TORCH_CUDA toolkit and set CUDA_HOME"
  say "no system nvcc for CUDA $TORCH_CUDA: installing ${CUDA_PIP_PACKAGES[*]}" >&2
  "${PIP[@]}" install -q "${CUDA_PIP_PACKAGES[@]}" >&2
  home="$("$PY" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")/nvidia/cu$major"
  [ -x "$home/bin/nvcc" ] || die "NVIDIA's packages installed no $home/bin/nvcc"
  # torch.utils.cpp_extension links against CUDA_HOME/lib64/libcudart.so; the packages ship lib/libcudart.so.N
  [ -e "$home/lib64" ] || ln -s lib "$home/lib64"
  [ -e "$home/lib/libcudart.so" ] || ln -s "libcudart.so.$major" "$home/lib/libcudart.so"
  echo "$home"
}

mmcv_ok() { "$PY" -c "import mmcv, mmcv.ops; assert mmcv.__version__ == '$MMCV_VERSION'; from mmcv.ops import nms, RoIAlign" >/dev/null 2>&1; }

# ---------------------------------------------------------------- mmcv with ops: decide
# (a dry run reads the installed extension's files only: importing mmcv.ops takes seconds)
INSTALLED_FLAVOUR=""
if [ "$DRY_RUN" = 1 ] || mmcv_ok; then INSTALLED_FLAVOUR="$(installed_flavour)"; fi
ACTION=build WHL=""
if [ -n "$INSTALLED_FLAVOUR" ] && { [ -z "$FORCE_CUDA_ASKED" ] || [ "$INSTALLED_FLAVOUR" = "$FLAVOUR" ]; }; then
  ACTION=keep
else
  # The shared wheelhouse only matches the torch it was built for (2.14.1).
  candidates=("$BUILT")
  if [ -n "$WHEELHOUSE" ] && [ "$TORCH_INSTALLED" = "$TORCH_VERSION" ]; then candidates=("$WHEELHOUSE" "$BUILT"); fi
  if [ "$FLAVOUR" = cpu ]; then candidates+=("$LEGACY"); fi
  WHL="$(find_wheel "${candidates[@]}")"
  if [ -n "$WHL" ]; then ACTION=install; fi
fi

SRC_DIR="<temporary folder>/mmcv-$MMCV_VERSION"
BUILD_ENV=(MMCV_WITH_OPS=1 "MAX_JOBS=$MAX_JOBS")
if [ "$FLAVOUR" = cpu ]; then
  # mmcv's setup.py builds CUDA ops whenever torch.cuda.is_available(): hide the GPUs from the build
  BUILD_ENV+=(FORCE_CUDA=0 CUDA_VISIBLE_DEVICES=)
  NUNITS=77
else
  BUILD_ENV+=(FORCE_CUDA=1 "TORCH_CUDA_ARCH_LIST=$ARCH_LIST")
  NUNITS=136  # 77 C++ units + 58 .cu + 1 CUDA C++
fi
build_cmd() { echo "${PIP[*]} wheel --no-build-isolation --no-deps -w $BUILT $1"; }

if [ "$DRY_RUN" = 1 ]; then
  plan "torch=$TORCH_INSTALLED"
  plan "torch_cuda=$TORCH_CUDA"
  plan "flavour=$FLAVOUR"
  plan "cache_dir=$BUILT"
  plan "installed_flavour=$INSTALLED_FLAVOUR"
  plan "action=$ACTION"
  plan "wheel=$WHL"
  for kv in "${BUILD_ENV[@]}"; do plan "env.$kv"; done
  if [ "$FLAVOUR" != cpu ]; then
    home="$(find_cuda_home)"
    if [ "$home" = pip ]; then plan "cuda_home=pip:${CUDA_PIP_PACKAGES[*]}"; else plan "cuda_home=$home"; plan "nvcc_release=$(nvcc_release "$home/bin/nvcc")"; fi
    plan "cpath=$(torch_cuda_include)"
  fi
  plan "build=$(build_cmd "$SRC_DIR")"
  plan "pretrain=$PRETRAIN"
  plan "extras=$EXTRAS"
  exit 0
fi

# ---------------------------------------------------------------- mmcv with ops: do
if [ "$ACTION" = keep ]; then
  say "mmcv $MMCV_VERSION with compiled ops already installed (ops: $INSTALLED_FLAVOUR)"
else
  [ -z "$INSTALLED_FLAVOUR" ] || say "the installed mmcv has '$INSTALLED_FLAVOUR' ops; FORCE_CUDA=$FORCE_CUDA_ASKED asks for '$FLAVOUR': replacing it"
  if [ "$ACTION" = build ]; then
    command -v "${CXX:-g++}" >/dev/null 2>&1 || die "no C++ compiler ('${CXX:-g++}') to build mmcv ops. Install one (Debian: apt-get install g++) or set MMSUPERVIT_WHEELHOUSE to a folder with an mmcv-$MMCV_VERSION-$PYTAG wheel built for torch $TORCH_INSTALLED."
    "$PY" -c 'import sysconfig, os, sys; sys.exit(0 if os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")) else 1)' \
      || die "Python headers (Python.h) are missing; install them (Debian: apt-get install python3-dev)"
    if [ "$FLAVOUR" != cpu ]; then
      home="$(find_cuda_home)"
      [ "$home" != pip ] || home="$(install_pip_cuda)"
      say "CUDA toolkit: $home (nvcc $(nvcc_release "$home/bin/nvcc"), torch built with CUDA $TORCH_CUDA), TORCH_CUDA_ARCH_LIST=$ARCH_LIST"
      BUILD_ENV+=("CUDA_HOME=$home" "PATH=$home/bin:$PATH")
      # torch's CUDA headers include the CUDA libraries' headers (cusparse.h, cublas_v2.h, ...). A
      # compiler-only toolkit (nvcc + runtime, as in /usr/local/cuda here) lacks them, and the build then
      # stops at its first .cu unit; the pip CUDA packages that torch depends on ship them.
      inc="$(torch_cuda_include)"
      [ -z "$inc" ] || BUILD_ENV+=("CPATH=$inc${CPATH:+:$CPATH}")
    fi
    SRC="$(mktemp -d)"
    trap 'rm -rf "$SRC"' EXIT
    say "no prebuilt mmcv $MMCV_VERSION wheel for $PYTAG/torch $TORCH_INSTALLED/ops '$FLAVOUR': building it from the PyPI sdist"
    if [ "$FLAVOUR" = cpu ]; then
      say "  (~77 compile units, ~12 minutes on 2 idle cores; the wheel is cached in $BUILT, so this happens once per machine)"
    else
      say "  ($NUNITS compile units, CUDA ones are slow: plan an hour or more on few cores, MAX_JOBS=$MAX_JOBS; cached in $BUILT)"
    fi
    "${PIP[@]}" download -q --no-deps --no-binary :all: --no-build-isolation "mmcv==$MMCV_VERSION" -d "$SRC"
    tar xzf "$SRC"/mmcv-"$MMCV_VERSION".tar.gz -C "$SRC"
    # torch >= 2.x headers need C++20 (mmcv#3341); mmcv 2.1.0 hard-codes -std=c++17.
    sed -i "s/'-std=c++17'/'-std=c++20'/g" "$SRC/mmcv-$MMCV_VERSION/setup.py"
    grep -q "'-std=c++20'" "$SRC/mmcv-$MMCV_VERSION/setup.py" || die "could not patch mmcv's setup.py for C++20"
    mkdir -p "$BUILT"
    say "  $(printf '%s ' "${BUILD_ENV[@]}" | sed "s|PATH=[^ ]*|PATH=<CUDA_HOME/bin:...>|")$(build_cmd "$SRC/mmcv-$MMCV_VERSION")"
    # --no-build-isolation: in an isolated build torch is invisible and ops are silently skipped (mmcv#3319).
    # Progress: ninja prints one line per compile unit; a heartbeat shows the build is alive.
    ( while sleep 60; do say "  ... still compiling mmcv ops ($(find "$SRC" -name '*.o' 2>/dev/null | wc -l)/$NUNITS objects)"; done ) &
    HB=$!
    env "${BUILD_ENV[@]}" "${PIP[@]}" wheel --no-build-isolation --no-deps -w "$BUILT" "$SRC/mmcv-$MMCV_VERSION" \
      || { kill $HB 2>/dev/null; die "building mmcv $MMCV_VERSION failed (see the compiler output above)"; }
    kill $HB 2>/dev/null || true
    # name the flavour beside the wheel: the CUDA architectures cannot be read back from it cheaply
    for w in "$BUILT"/mmcv-"$MMCV_VERSION"-"$PYTAG"-"$PYTAG"-linux_*.whl; do
      [ -f "$w" ] && [ ! -f "$w.flavour" ] && echo "$FLAVOUR" >"$w.flavour"
    done
    WHL="$(find_wheel "$BUILT")"
    [ -n "$WHL" ] || die "mmcv build produced no '$FLAVOUR' wheel in $BUILT"
    say "built and cached $WHL"
  fi
  say "installing $WHL"
  "${PIP[@]}" install -q --no-deps --force-reinstall "$WHL"
  # mmcv's own runtime requirements (addict, yapf, opencv, ...) without touching torch; any OpenCV
  # distribution (opencv-python, -headless, -contrib) provides cv2
  MISSING="$("$PY" - <<'PY'
import importlib.util
need = {'addict': 'addict', 'packaging': 'packaging', 'PIL': 'Pillow', 'yaml': 'pyyaml', 'yapf': 'yapf',
        'cv2': 'opencv-python'}
print(' '.join(dist for mod, dist in need.items() if importlib.util.find_spec(mod) is None))
PY
)"
  [ -z "$MISSING" ] || "${PIP[@]}" install -q $MISSING
  mmcv_ok || { "$PY" -c 'import mmcv.ops' || true; die "mmcv installed but 'import mmcv.ops' fails (error above). If the wheel was built for another torch than $TORCH_INSTALLED, remove it from $BUILT (or the wheelhouse) and re-run."; }
  "$PY" - "$FLAVOUR_STAMP" "$FLAVOUR" <<'PY'
import glob, importlib.util, os, sys
spec = importlib.util.find_spec('mmcv')
ext = glob.glob(os.path.join(spec.submodule_search_locations[0], '_ext*.so'))[0]
open(sys.argv[1], 'w').write(f'{sys.argv[2]} {os.path.getsize(ext)}\n')
PY
  INSTALLED_FLAVOUR="$FLAVOUR"
fi

# ---------------------------------------------------------------- the rest, pinned
# ftfy/regex: mmseg 1.2.2 imports them unconditionally but lists them as extras (mmsegmentation#3704).
# mmpretrain: its declared requirements resolve against our stack without changing it (mmcv/mmengine are
# only in its 'mim' extra), so the extra is installed with its dependencies.
if have mmengine "$MMENGINE_VERSION" && have mmsegmentation "$MMSEG_VERSION" && have mmdet "$MMDET_VERSION" \
   && have timm "$TIMM_VERSION" && have pytest "" && have mmsupervit "" && have ftfy "" \
   && { [ "$PRETRAIN" = 0 ] || { have mmpretrain "$MMPRETRAIN_VERSION" && have mat4py ""; }; }; then
  say "mmengine, mmsegmentation, mmdet, timm, pytest$([ "$PRETRAIN" = 0 ] || echo ", mmpretrain") and mmsupervit already installed"
else
  say "installing mmengine $MMENGINE_VERSION, mmsegmentation $MMSEG_VERSION, mmdet $MMDET_VERSION, timm $TIMM_VERSION, test tools$([ "$PRETRAIN" = 0 ] || echo ", mmpretrain $MMPRETRAIN_VERSION")"
  "${PIP[@]}" install -q "$SETUPTOOLS_SPEC" "mmengine==$MMENGINE_VERSION" "mmcv==$MMCV_VERSION" \
      "mmsegmentation==$MMSEG_VERSION" "mmdet==$MMDET_VERSION" "timm==$TIMM_VERSION" ftfy regex \
      "torch==$TORCH_INSTALLED" 
  say "installing mmsupervit (editable) with the extras $EXTRAS"
  "${PIP[@]}" install -q --no-build-isolation -e "$ROOT[$EXTRAS]" "torch==$TORCH_INSTALLED"
fi

MMSUPERVIT_OPS_FLAVOUR="$INSTALLED_FLAVOUR" "$PY" - <<'PY' || die "the environment is incomplete (see the error above)"
import glob, os
import torch, mmcv, mmengine, mmseg, mmdet, timm, mmsupervit
from mmcv.ops import nms, RoIAlign, get_compiling_cuda_version
flavour = os.environ['MMSUPERVIT_OPS_FLAVOUR']
ops = f'ops: {flavour}'
if flavour != 'cpu':
    # a CUDA build: mmcv says so, and its extension carries the kernels' fat binary
    compiled = get_compiling_cuda_version()
    ext = glob.glob(os.path.join(os.path.dirname(mmcv.__file__), '_ext*.so'))[0]
    with open(ext, 'rb') as f:
        fatbin = b'__cudaRegisterFatBinary' in f.read()
    assert compiled != 'not available' and fatbin, f'mmcv ops flavour {flavour} but no CUDA kernels in {ext}'
    ops += f', CUDA kernels compiled with CUDA {compiled}'
    if torch.cuda.is_available():  # run one kernel on the GPU
        boxes = torch.tensor([[0., 0., 10., 10.], [1., 1., 10., 10.]], device='cuda')
        _, keep = nms(boxes, torch.tensor([0.9, 0.8], device='cuda'), 0.5)
        assert keep.tolist() == [0], keep
        ops += ', nms ran on ' + torch.cuda.get_device_name()
print(f'[setup] ready: torch {torch.__version__}, mmengine {mmengine.__version__}, mmcv {mmcv.__version__} ({ops}), '
      f'mmseg {mmseg.__version__}, mmdet {mmdet.__version__}, timm {timm.__version__}, mmsupervit {mmsupervit.__version__}')
PY
if [ "$PRETRAIN" = 1 ]; then
  "$PY" -c "import mmsupervit, mmpretrain; from mmpretrain.registry import MODELS; \
assert all(MODELS.get(n) for n in ('AlterNet', 'PatchConvNet', 'SuperViT')); \
print(f'[setup] mmpretrain {mmpretrain.__version__}: the backbones are in its scope')" \
    || die "mmpretrain is installed but mmsupervit's backbones are not in its scope (see the error above)"
fi
# Which kernel each detection op will use on every visible device (mmcv / torchvision / unavailable).
if ! "$PY" "$ROOT/tools/env_report.py"; then
  say "WARNING: tools/env_report.py: a detection op has no kernel on a visible device (see the table above);" \
       "Mask R-CNN cannot run there until mmcv or torchvision provides one"
fi
say "activate with: source $VENV/bin/activate"
