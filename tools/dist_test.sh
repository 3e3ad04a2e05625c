#!/usr/bin/env bash
# Distributed testing with torchrun, one process per GPU (nccl). Without a GPU the processes run on the
# CPU and tools/test.py switches to gloo by itself.
#
#   bash tools/dist_test.sh CONFIG CHECKPOINT GPUS [test.py args...]
#   bash tools/dist_test.sh configs/alternet/alternet-50_upernet_8xb2-160k_ade20k-512x512.py iter_160000.pth 8
#
# Several nodes: run it on every node with NNODES, NODE_RANK, MASTER_ADDR (the node of rank 0) and PORT.
# Environment: NNODES (1), NODE_RANK (0), MASTER_ADDR (127.0.0.1), PORT (29500), PYTHON (python).
set -euo pipefail
usage() { echo "usage: bash tools/dist_test.sh CONFIG CHECKPOINT GPUS [test.py args...]  (GPUS: processes per node, e.g. 8)" >&2; exit 2; }
[ $# -ge 3 ] || usage
CONFIG=$1
CHECKPOINT=$2
GPUS=$3
[[ "$GPUS" =~ ^[1-9][0-9]*$ ]] || { echo "dist_test.sh: GPUS must be a positive whole number, got '$GPUS'" >&2; usage; }
shift 3
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-127.0.0.1}
PYTHON=${PYTHON:-python}
DIR="$(cd "$(dirname "$0")" && pwd)"

PYTHONPATH="$DIR/..${PYTHONPATH:+:$PYTHONPATH}" \
exec "$PYTHON" -m torch.distributed.run \
    --nnodes="$NNODES" \
    --node_rank="$NODE_RANK" \
    --master_addr="$MASTER_ADDR" \
    --nproc_per_node="$GPUS" \
    --master_port="$PORT" \
    "$DIR/test.py" "$CONFIG" "$CHECKPOINT" --launcher pytorch "$@"
