#!/usr/bin/env bash
# dae against PyTorch on this machine's CPU, side by side in one run:
#   benches/cpu/peers.sh [OUT_DIR]    (PYTHON=python-with-torch, default python3)
# Runs dae first and last (so drift shows), PyTorch eager and torch.compile
# between, then prints one table with ratios and writes a plot.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
BIN="${DAE_BIN:-target/release/dae}"
PY="${PYTHON:-python3}"
OUT_DIR="${1:-benches/results/cpu-$(date -u +%Y%m%d-%H%M%S)}"
BATCHES="${BATCHES:-256,4096}"
mkdir -p "$OUT_DIR"
{
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "binary: $("$BIN" --version)"
    echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2) x $(nproc) threads"
    echo "avx512: $(grep -o -m1 avx512f /proc/cpuinfo || echo no)"
    "$PY" -c 'import torch; print("torch", torch.__version__, "threads", torch.get_num_threads())'
} | tee "$OUT_DIR/env.txt"
"$BIN" bench --device cpu --batch-sizes "$BATCHES" --json "$OUT_DIR/dae-first.json" | tee "$OUT_DIR/dae-first.txt"
"$PY" benches/peers/torch_ae.py --device cpu --batch-sizes "$BATCHES" --modes eager,compile \
    --json "$OUT_DIR/pytorch.json" 2>&1 | grep -v -i warn | tee "$OUT_DIR/pytorch.txt"
"$BIN" bench --device cpu --batch-sizes "$BATCHES" --json "$OUT_DIR/dae.json" \
    --peers "$OUT_DIR/pytorch.json" --plot "$OUT_DIR/throughput.png" | tee "$OUT_DIR/side-by-side.txt"
