#!/usr/bin/env bash
# Speed on a GPU node, in one call: dae's ceilings, per-kernel breakdown and
# GEMMs vs cuBLAS, then dae against PyTorch (eager, torch.compile) side by
# side. Needs the prebuilt binary, the repository's data and PyTorch.
#   benches/gpu/peers.sh [OUT_DIR]
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
BIN="${DAE_BIN:-target/release/dae}"
PY="${PYTHON:-python3}"
OUT_DIR="${1:-${OUT:-benches/results/gpu-peers-$(date -u +%Y%m%d-%H%M%S)}}"
BATCHES="${BATCHES:-256,4096,65536}"
mkdir -p "$OUT_DIR"
for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib; do
    [ -d "$d" ] && export LD_LIBRARY_PATH="$d${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
done
export DAE_KERNEL_CACHE="$OUT_DIR/kernel-cache"
status=0
run() {  # run NAME TIMEOUT CMD...
    local name="$1" limit="$2"; shift 2
    echo "== $name: $*"
    timeout "$limit" "$@" 2>&1 | grep -v -i 'userwarning' | tee "$OUT_DIR/$name.txt"
    local rc=${PIPESTATUS[0]}
    echo "== $name: exit $rc"
    [ "$rc" -ne 0 ] && status=1
    return 0
}
{
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "binary: $("$BIN" --version)"
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>&1
    "$PY" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda)' 2>&1
} | tee "$OUT_DIR/env.txt"
run dae-breakdown 240 "$BIN" bench --device cuda --batch-sizes "$BATCHES" --precisions fp32,tf32,bf16 \
    --breakdown --gemm --json "$OUT_DIR/dae.json"
run pytorch 300 "$PY" benches/peers/torch_ae.py --device cuda --batch-sizes "$BATCHES" \
    --precisions fp32,tf32,bf16 --modes eager,compile --repeats 3 --train-epochs 20 --json "$OUT_DIR/pytorch.json"
run side-by-side 120 "$BIN" bench --device cuda --batch-sizes "$BATCHES" --precisions fp32,tf32,bf16 \
    --json "$OUT_DIR/dae-grid.json" --peers "$OUT_DIR/pytorch.json" --plot "$OUT_DIR/throughput.png"
rm -rf "$DAE_KERNEL_CACHE"
exit $status
