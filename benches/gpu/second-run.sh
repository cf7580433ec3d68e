#!/usr/bin/env bash
# The second call on a GPU node, after first-run.sh: the lab in tf32 and
# bf16, the fp32 run read back by PyTorch, and dae against PyTorch (eager,
# torch.compile) side by side. Budgets add up to under 420 s.
#
#   benches/gpu/second-run.sh [OUT_DIR]
#
# Here, without a GPU, it is a dry run that fails each step with its reason.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
OUT_DIR="${1:-${OUT:-benches/results/gpu-second-$(date -u +%Y%m%d-%H%M%S)}}"
source benches/gpu/lib.sh
PY="${PYTHON:-python3}"
BATCHES="${BATCHES:-256,4096,65536}"

describe_node

for p in tf32 bf16; do
    step "train-$p" 40 "$BIN" train --device cuda --precision "$p" --out "$OUT_DIR/train-$p" --force
done
step train-fp32 40 "$BIN" train --device cuda --precision fp32 --out "$OUT_DIR/train-fp32" --force
step encode 20 "$BIN" encode --run "$OUT_DIR/train-fp32" --device cuda
step torch-load 30 "$PY" benches/peers/torch_load.py "$OUT_DIR/train-fp32"
step pytorch 180 "$PY" benches/peers/torch_ae.py --device cuda --batch-sizes "$BATCHES" \
    --precisions fp32,tf32,bf16 --modes eager,compile --repeats 3 --train-epochs 20 --json "$OUT_DIR/pytorch.json"
step side-by-side 60 "$BIN" bench --device cuda --batch-sizes "$BATCHES" --precisions fp32,tf32,bf16 \
    --json "$OUT_DIR/dae-grid.json" --peers "$OUT_DIR/pytorch.json" --plot "$OUT_DIR/throughput.png"

finish
