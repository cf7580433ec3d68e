#!/usr/bin/env bash
# dae against PyTorch on this machine's CPU, side by side in one run:
#   benches/cpu/peers.sh [OUT_DIR]    (PYTHON=python-with-torch, default python3)
# ROUNDS (default 3) rounds of dae then PyTorch eager and torch.compile, so
# every peer is timed right beside a dae pass; a last dae pass prints the
# one-round table and plot. rounds.txt gives the median of the per-round
# ratios: on a shared cloud machine the speed of both drifts by 20-50 % over
# minutes, and a ratio of passes minutes apart mostly measures that drift.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
BIN="${DAE_BIN:-target/release/dae}"
PY="${PYTHON:-python3}"
OUT_DIR="${1:-benches/results/cpu-$(date -u +%Y%m%d-%H%M%S)}"
BATCHES="${BATCHES:-256,4096}"
ROUNDS="${ROUNDS:-3}"
mkdir -p "$OUT_DIR"
{
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "binary: $("$BIN" --version)"
    echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2) x $(nproc) threads"
    echo "family/model: $(grep -m1 'cpu family' /proc/cpuinfo | cut -d: -f2 | tr -d ' ')/$(grep -m1 '^model' /proc/cpuinfo | cut -d: -f2 | tr -d ' ')"
    # The SIMD the CPU path dispatches on (AVX-512 / AVX2+FMA / baseline) and the
    # extensions a bf16 path could use.
    echo "simd: $(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' | grep -E '^(avx2|fma|avx512(f|bw|vl|_bf16|_fp16)|amx_(bf16|tile))$' | sort | tr '\n' ' ')"
    echo "rounds: $ROUNDS"
    "$PY" -c 'import torch; print("torch", torch.__version__, "threads", torch.get_num_threads())'
} | tee "$OUT_DIR/env.txt"
for r in $(seq 1 "$ROUNDS"); do
    echo "== round $r of $ROUNDS"
    "$BIN" bench --device cpu --batch-sizes "$BATCHES" --json "$OUT_DIR/dae-r$r.json" | tee "$OUT_DIR/dae-r$r.txt"
    "$PY" benches/peers/torch_ae.py --device cpu --batch-sizes "$BATCHES" --modes eager,compile \
        --json "$OUT_DIR/pytorch-r$r.json" 2>&1 | grep -v -i warn | tee "$OUT_DIR/pytorch-r$r.txt"
done
"$BIN" bench --device cpu --batch-sizes "$BATCHES" --json "$OUT_DIR/dae.json" \
    --peers "$OUT_DIR/pytorch-r$ROUNDS.json" --plot "$OUT_DIR/throughput.png" | tee "$OUT_DIR/side-by-side.txt"
"$PY" benches/cpu/rounds.py "$OUT_DIR" | tee "$OUT_DIR/rounds.txt"
