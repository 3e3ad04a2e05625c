#!/usr/bin/env bash
# GPU check: on a CUDA machine with no package index, set mmsupervit up and run short demo trainings.
#
#   bash tools/dev/make_gpu_wheelhouse.sh shared/gpu_wheelhouse     # first, where pip reaches an index
#   bash tools/dev/gpu_check.sh [--dry-run] [WHEELHOUSE]            # then, on the GPU machine
#
# Steps, each time-boxed (about 8 minutes in all on a 16-core H200 machine):
#   1. a venv that sees the machine's torch (--system-site-packages); the wheelhouse installed with --no-index
#   2. tools/setup_env.sh builds mmcv's CPU ops against that torch (its build logic, MAX_JOBS = cores)
#   3. python tools/env_report.py
#   4. demo data (tools/dataset_converters/make_demo_data.py)
#   5. UperNet demo: train through tools/dist_train.sh CONFIG 1 (nccl), then tools/test.py
#   6. Mask R-CNN demo: train with tools/train.py, then tools/test.py
#   all on CUDA with MMSUPERVIT_OPS=auto; then losses, metrics and timings are printed.
# --dry-run checks what the machine has (torch, GPU, compilers, the packages the wheelhouse does not
# carry) and prints the commands, changing nothing.
#
# Environment: PYTHON (python3: the interpreter that holds torch), VENV (/tmp/mmsupervit-gpu-venv),
# GPU_CHECK_WORK (<repo>/work_dirs/gpu_check: data, checkpoints, gpu_check.log), GPU_CHECK_OUT (if set,
# gpu_check.log and summary.txt are copied there), GPU_CHECK_ITERS (40 training iterations per model),
# MAX_JOBS (cores), MMSUPERVIT_OPS (auto), GPU_CHECK_ALLOW_CPU (1: rehearse the whole script on a machine
# without a GPU; the runs then use the CPU and gloo).
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
DRY_RUN=0
if [ "${1:-}" = --dry-run ]; then DRY_RUN=1; shift; fi
[ $# -le 1 ] || { echo "usage: bash tools/dev/gpu_check.sh [--dry-run] [WHEELHOUSE]" >&2; exit 2; }
WH="$(cd "${1:-$ROOT/shared/gpu_wheelhouse}" 2>/dev/null && pwd)" \
  || { echo "no wheelhouse at ${1:-$ROOT/shared/gpu_wheelhouse}: build it with tools/dev/make_gpu_wheelhouse.sh" >&2; exit 2; }
PYTHON="${PYTHON:-python3}"
VENV="${VENV:-/tmp/mmsupervit-gpu-venv}"
WORK="${GPU_CHECK_WORK:-$ROOT/work_dirs/gpu_check}"
ITERS="${GPU_CHECK_ITERS:-40}"
export MAX_JOBS="${MAX_JOBS:-$(nproc)}"
export MMSUPERVIT_OPS="${MMSUPERVIT_OPS:-auto}"
# the setup script's pip calls: only the wheelhouse (pip reads these variables itself)
export PIP_NO_INDEX=1 PIP_FIND_LINKS="$WH" PIP_DISABLE_PIP_VERSION_CHECK=1
SEG_CFG=configs/demo/supervit-tiny_upernet_1xb4-300i_demo-128x128.py
DET_CFG=configs/demo/mask-rcnn_supervit-tiny_fpn_300i_demo.py
PY="$VENV/bin/python"
cd "$ROOT"

# ---------------------------------------------------------------- what the machine has
check_machine() {
  "$PYTHON" - "$WH" "${GPU_CHECK_ALLOW_CPU:-0}" <<'PY'
import glob, importlib.util, os, shutil, subprocess, sys, sysconfig
wh = sys.argv[1]
ok = True
def line(name, good, text):
    global ok
    ok &= bool(good)
    print(f"[gpu-check] {'ok     ' if good else 'MISSING'} {name}: {text}")
line('python', sys.version_info >= (3, 9), f'{sys.executable} {sys.version.split()[0]}')
line('Python.h', os.path.exists(os.path.join(sysconfig.get_paths()['include'], 'Python.h')),
     sysconfig.get_paths()['include'])
try:
    import torch
    gpu = torch.cuda.is_available()
    line('torch', True, f'{torch.__version__} (CUDA {torch.version.cuda})')
    line('GPU', gpu or sys.argv[2] == '1', torch.cuda.get_device_name() + f' (sm_{"".join(map(str, torch.cuda.get_device_capability()))})'
         if gpu else 'torch.cuda.is_available() is False')
except ImportError as e:
    line('torch', False, str(e))
for tool in ('g++', 'ninja', 'nvcc'):
    path = shutil.which(tool)
    out = subprocess.run([path, '--version'], capture_output=True, text=True).stdout.strip().splitlines() \
        if path else []
    version = (out[-1] if tool == 'nvcc' else out[0]) if out else 'not on PATH'
    line(tool, path or tool == 'nvcc', f'{path}: {version}' if path else version)
# what the wheelhouse does not carry (tools/dev/make_gpu_wheelhouse.sh)
for mod in ('numpy', 'scipy', 'matplotlib', 'cv2', 'yaml', 'rich', 'regex', 'tqdm', 'six', 'PIL',
            'huggingface_hub', 'safetensors', 'packaging', 'torchvision'):
    line(f'import {mod}', importlib.util.find_spec(mod) is not None, 'on the machine' if
         importlib.util.find_spec(mod) else 'not importable: add its wheel to the wheelhouse')
for pattern in ('mmcv-2.1.0.tar.gz', 'mmengine-*.whl', 'mmsegmentation-*.whl', 'mmdet-*.whl', 'timm-*.whl',
                'pycocotools-*.whl', 'shapely-*.whl', 'setuptools-*.whl'):
    found = glob.glob(os.path.join(wh, pattern))
    line(f'wheelhouse {pattern}', found, os.path.basename(found[0]) if found else f'not in {wh}')
sys.exit(0 if ok else 1)
PY
}

if [ "$DRY_RUN" = 1 ]; then
  check_machine; rc=$?
  cat <<EOF
[gpu-check] would run, each with a time limit:
  $PYTHON -m venv --system-site-packages $VENV
  $PY -m pip install --no-index --no-deps $WH/*.whl; $PY -m pip install --no-index --no-deps --no-build-isolation --use-pep517 -e $ROOT
  PIP_NO_INDEX=1 PIP_FIND_LINKS=$WH MAX_JOBS=$MAX_JOBS VENV=$VENV bash tools/setup_env.sh
  $PY tools/env_report.py
  $PY tools/dataset_converters/make_demo_data.py --out $WORK/data --num-train 32 --num-val 8 --seed 0
  MMSUPERVIT_OPS=$MMSUPERVIT_OPS PYTHON=$PY bash tools/dist_train.sh $SEG_CFG 1 --work-dir $WORK/seg --cfg-options ... train_cfg.max_iters=$ITERS
  MMSUPERVIT_OPS=$MMSUPERVIT_OPS $PY tools/test.py $SEG_CFG $WORK/seg/iter_$ITERS.pth --cfg-options ...
  MMSUPERVIT_OPS=$MMSUPERVIT_OPS $PY tools/train.py $DET_CFG --work-dir $WORK/det --cfg-options ... train_cfg.max_iters=$ITERS
  MMSUPERVIT_OPS=$MMSUPERVIT_OPS $PY tools/test.py $DET_CFG $WORK/det/iter_$ITERS.pth --cfg-options ...
EOF
  exit $rc
fi

mkdir -p "$WORK"
rm -rf "$WORK"/seg "$WORK"/seg_test "$WORK"/det "$WORK"/det_test  # the summary reads these runs' logs only
LOG="$WORK/gpu_check.log"
: >"$LOG"
SUMMARY=()
FAILED=0
T_ALL=$(date +%s)
# step NAME SECONDS CMD...: run with a time limit, output to the log (tail shown), record time and status
step() {
  local name=$1 limit=$2 t0 rc start
  shift 2
  printf '\n===== %s (limit %ss): %s\n' "$name" "$limit" "$*" | tee -a "$LOG"
  start=$(wc -l <"$LOG")
  t0=$(date +%s)
  timeout -k 10 "$limit" "$@" >>"$LOG" 2>&1
  rc=$?
  tail -n +"$((start + 1))" "$LOG" | tail -n 4 | sed 's/^/    /'
  SUMMARY+=("$(printf '%-12s %4ss  %s' "$name" "$(( $(date +%s) - t0 ))" "$([ $rc = 0 ] && echo ok || { [ $rc = 124 ] && echo "TIMED OUT" || echo "FAILED (rc $rc)"; })")")
  echo "[gpu-check] $name: ${SUMMARY[-1]}"
  [ $rc = 0 ] || FAILED=$((FAILED + 1))
  return $rc
}
finish() {
  {
    echo
    echo "===== gpu-check summary ($(( $(date +%s) - T_ALL )) s in all, $FAILED step(s) failed; full log: $LOG)"
    printf '  %s\n' "${SUMMARY[@]}"
    echo "--- training (loss, seconds per iteration, GPU memory in MB): UperNet, then Mask R-CNN"
    grep -h "Iter(train)" "$WORK"/seg/*/*.log "$WORK"/det/*/*.log 2>/dev/null | sed 's/^.*Iter(train)/  /'
    echo "--- test metrics"
    grep -hE "Iter\(test\).*(mIoU|bbox_mAP)" "$WORK"/seg_test/*/*.log "$WORK"/det_test/*/*.log 2>/dev/null \
      | sed 's/^.*Iter(test)/  /'
    echo "--- tools/env_report.py"
    sed -n '1,30p' "$WORK/env_report.txt" 2>/dev/null | sed 's/^/  /'
  } | tee "$WORK/summary.txt"
  if [ -n "${GPU_CHECK_OUT:-}" ]; then mkdir -p "$GPU_CHECK_OUT" && cp "$LOG" "$WORK/summary.txt" "$GPU_CHECK_OUT/"; fi
}
trap finish EXIT

check_machine | tee -a "$LOG"
[ "${PIPESTATUS[0]}" = 0 ] || { echo "[gpu-check] the machine lacks something listed above as MISSING" >&2; exit 1; }

make_venv() {
  "$PYTHON" -m venv --system-site-packages "$VENV" || "$PYTHON" -m venv --system-site-packages --without-pip "$VENV" \
    || return 1
  # When PYTHON is itself a venv (the H200 machines' python3 is /opt/torch/.venv/bin/python3), the new
  # venv's "system" site is the base interpreter's, without torch: add PYTHON's site folders after ours
  # (and with them its pip, if ensurepip was missing).
  "$PYTHON" -c 'import site; print("import site; " + "; ".join(f"site.addsitedir({p!r})" for p in site.getsitepackages()))' \
    >"$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/zz_machine_site.pth"
  "$PY" -c 'import torch, pip; print("venv sees torch", torch.__version__, "and pip", pip.__version__)'
}
if [ ! -x "$PY" ]; then
  export -f make_venv; export PYTHON VENV PY
  step venv 90 bash -c make_venv || exit 1
fi
step wheelhouse 120 "$PY" -m pip install -q --no-deps "$WH"/*.whl || exit 1
# --use-pep517: an older pip would run `setup.py develop`, which asks an index for build dependencies
step mmsupervit 120 "$PY" -m pip install -q --no-deps --no-build-isolation --use-pep517 -e "$ROOT" || exit 1
step setup 420 env VENV="$VENV" bash tools/setup_env.sh || exit 1
step env_report 60 bash -o pipefail -c "'$PY' tools/env_report.py | tee '$WORK/env_report.txt'"
step data 90 "$PY" tools/dataset_converters/make_demo_data.py --out "$WORK/data" --num-train 32 --num-val 8 --seed 0 \
  || exit 1

opts() {  # --cfg-options for a short run of the demo config on the generated data
  "$PY" - "$WORK/data" "$1" "$ITERS" <<'PY'
import sys
from mmsupervit.datasets.demo_data import demo_cfg_options
data, task, iters = sys.argv[1], sys.argv[2], int(sys.argv[3])
opts = demo_cfg_options(data, task)
# log about every 10 iterations, and the last one (mmengine logs every `interval`-th)
log_every = max(d for d in range(1, min(iters, 10) + 1) if iters % d == 0)
opts.update({'train_cfg.max_iters': iters, 'train_cfg.val_interval': iters,
             'default_hooks.checkpoint.interval': iters, 'default_hooks.logger.interval': log_every})
print(' '.join(f'{k}={v}' for k, v in opts.items()))
PY
}
read -r -a SEG_OPTS <<<"$(opts seg)"
read -r -a DET_OPTS <<<"$(opts det)"
PORT="$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
step seg_train 150 env PYTHON="$PY" PORT="$PORT" bash tools/dist_train.sh "$SEG_CFG" 1 --work-dir "$WORK/seg" \
  --cfg-options "${SEG_OPTS[@]}"
step seg_test 90 "$PY" tools/test.py "$SEG_CFG" "$WORK/seg/iter_$ITERS.pth" --work-dir "$WORK/seg_test" \
  --cfg-options "${SEG_OPTS[@]}"
step det_train 150 "$PY" tools/train.py "$DET_CFG" --work-dir "$WORK/det" --cfg-options "${DET_OPTS[@]}"
step det_test 90 "$PY" tools/test.py "$DET_CFG" "$WORK/det/iter_$ITERS.pth" --work-dir "$WORK/det_test" \
  --cfg-options "${DET_OPTS[@]}"
[ "$FAILED" = 0 ]
