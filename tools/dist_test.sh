#!/usr/bin/env bash
# Distributed testing with torchrun; works on GPUs (nccl) and on CPU (gloo,
# chosen automatically by tools/test.py when no GPU is visible).
#   GPUS=2 bash tools/dist_test.sh CONFIG CHECKPOINT [test.py args...]
# Environment: GPUS (processes per node, default 1: one per GPU, or CPU
# processes without a GPU), NNODES (1), NODE_RANK (0),
# MASTER_ADDR (127.0.0.1), PORT (29500), PYTHON (python).
CONFIG=$1
CHECKPOINT=$2
shift 2
GPUS=${GPUS:-1}
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-"127.0.0.1"}
PYTHON=${PYTHON:-python}
DIR="$(cd "$(dirname "$0")" && pwd)"

PYTHONPATH="$DIR/..":$PYTHONPATH \
"$PYTHON" -m torch.distributed.run \
    --nnodes="$NNODES" \
    --node_rank="$NODE_RANK" \
    --master_addr="$MASTER_ADDR" \
    --nproc_per_node="$GPUS" \
    --master_port="$PORT" \
    "$DIR/test.py" \
    "$CONFIG" "$CHECKPOINT" \
    --launcher pytorch "$@"
