#!/usr/bin/env bash
# Testing on a slurm cluster, one task per GPU:
#
#   bash tools/slurm_test.sh PARTITION JOB_NAME CONFIG CHECKPOINT [test.py args...]
#   GPUS=8 bash tools/slurm_test.sh gpu supervit-test configs/supervit/CONFIG.py work_dirs/supervit/iter_160000.pth
#
# Environment: GPUS (8, tasks in all), GPUS_PER_NODE (8), CPUS_PER_TASK (5), SRUN_ARGS (extra srun
# options), PYTHON (python).
set -euo pipefail
usage() { echo "usage: bash tools/slurm_test.sh PARTITION JOB_NAME CONFIG CHECKPOINT [test.py args...]" >&2; exit 2; }
[ $# -ge 4 ] || usage
PARTITION=$1
JOB_NAME=$2
CONFIG=$3
CHECKPOINT=$4
shift 4
GPUS=${GPUS:-8}
GPUS_PER_NODE=${GPUS_PER_NODE:-8}
CPUS_PER_TASK=${CPUS_PER_TASK:-5}
SRUN_ARGS=${SRUN_ARGS:-}
PYTHON=${PYTHON:-python}
DIR="$(cd "$(dirname "$0")" && pwd)"
for n in GPUS GPUS_PER_NODE CPUS_PER_TASK; do
  [[ "${!n}" =~ ^[1-9][0-9]*$ ]] || { echo "slurm_test.sh: $n must be a positive whole number, got '${!n}'" >&2; exit 2; }
done

set -x
# SRUN_ARGS is split into words on purpose: it holds several srun options
PYTHONPATH="$DIR/..${PYTHONPATH:+:$PYTHONPATH}" \
srun -p "$PARTITION" \
    --job-name="$JOB_NAME" \
    --gres=gpu:"$GPUS_PER_NODE" \
    --ntasks="$GPUS" \
    --ntasks-per-node="$GPUS_PER_NODE" \
    --cpus-per-task="$CPUS_PER_TASK" \
    --kill-on-bad-exit=1 \
    $SRUN_ARGS \
    "$PYTHON" -u "$DIR/test.py" "$CONFIG" "$CHECKPOINT" --launcher slurm "$@"
