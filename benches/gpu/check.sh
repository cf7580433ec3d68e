#!/usr/bin/env bash
# The GPU check, in one call on a bare GPU node (CUDA driver + toolkit, no
# Rust, no internet), given the prebuilt binary and the repository's data:
#
#   benches/gpu/check.sh [OUT_DIR]      # default: $OUT or benches/results/gpu-<date>
#
# Prints the GPU, driver and NVRTC versions; runs `dae check` (every kernel
# and a whole step/epoch against the CPU float64 reference); trains the lab's
# 20 epochs on the GPU in fp32, tf32 and bf16; benchmarks the train step;
# runs compute-sanitizer on the quick check. Everything lands in OUT_DIR.
# Uses the machine's own NVRTC so the PTX matches its driver.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

BIN="${DAE_BIN:-target/release/dae}"
OUT_DIR="${1:-${OUT:-benches/results/gpu-$(date -u +%Y%m%d-%H%M%S)}}"
mkdir -p "$OUT_DIR"
LOG="$OUT_DIR/log.txt"
: > "$LOG"
status=0

# The toolkit's libraries (libnvrtc.so.13) for cudarc's dynamic loading.
for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib; do
    [ -d "$d" ] && export LD_LIBRARY_PATH="$d${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
done
export DAE_KERNEL_CACHE="$OUT_DIR/kernel-cache"

step() {  # step NAME TIMEOUT CMD...: output in NAME.txt, its tail in the log
    local name="$1" limit="$2"; shift 2
    echo "== $name: $*" | tee -a "$LOG"
    local t0 rc
    t0=$(date +%s%N)
    timeout "$limit" "$@" > "$OUT_DIR/$name.txt" 2>&1
    rc=$?
    tail -n 25 "$OUT_DIR/$name.txt" | tee -a "$LOG"
    echo "== $name: exit $rc after $(( ($(date +%s%N) - t0) / 1000000 )) ms" | tee -a "$LOG"
    [ "$rc" -ne 0 ] && status=1
    return 0
}

{
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "glibc: $(ldd --version 2>&1 | head -n 1) (the binary needs GLIBC_2.34 or newer)"
    echo "binary: $("$BIN" --version 2>&1)"
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv 2>&1
    (command -v nvcc >/dev/null && nvcc --version | tail -n 2) || echo "nvcc: not on PATH"
    ls -1 /usr/local/cuda/lib64/libnvrtc.so* 2>/dev/null
} | tee "$OUT_DIR/env.txt" | tee -a "$LOG"

step check 300 "$BIN" check --json "$OUT_DIR/check.json" --junit "$OUT_DIR/check.xml"
for p in fp32 tf32 bf16; do
    step "train-$p" 180 "$BIN" train --device cuda --precision "$p" --out "$OUT_DIR/train-$p" --force
done
# The fp32 run read back by PyTorch (where installed): same codes, same loss.
step encode 60 "$BIN" encode --run "$OUT_DIR/train-fp32" --device cuda
if python3 -c 'import torch, safetensors' 2>/dev/null; then
    step torch-load 60 python3 benches/peers/torch_load.py "$OUT_DIR/train-fp32"
fi
step bench 240 "$BIN" bench --device cuda --batch-sizes 256,1024,4096,16384,65536 --json "$OUT_DIR/bench.json"
if command -v compute-sanitizer >/dev/null; then
    step sanitizer 150 compute-sanitizer --tool memcheck --error-exitcode 9 "$BIN" check --quick --epoch-rows 1000
fi
rm -rf "$DAE_KERNEL_CACHE"

echo "== summary" | tee -a "$LOG"
grep -h -E 'cases:|FAIL|^done:|^(fp32|tf32|bf16) +[0-9]+ ' "$OUT_DIR"/*.txt | tee -a "$LOG"
exit $status
