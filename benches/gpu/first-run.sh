#!/usr/bin/env bash
# The first call on a lent GPU node: at most 7 minutes in all (the steps'
# budgets add up to 375 s against the 600 s a call may run; a test keeps
# them under 420 s), ordered by what each second answers, every step's
# output kept as it ends. Needs the prebuilt binary (cargo build --release
# here, carried as target/release/dae) and the repository's data.
#
#   benches/gpu/first-run.sh [OUT_DIR]    # default: $OUT or benches/results/gpu-<date>
#
# Here, without a GPU, it is a dry run: every step runs and fails with the
# reason (no CUDA driver, no compute-sanitizer, no ncu), and it exits 1.
# The rest (tf32/bf16 training, PyTorch) is second-run.sh.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
OUT_DIR="${1:-${OUT:-benches/results/gpu-$(date -u +%Y%m%d-%H%M%S)}}"
source benches/gpu/lib.sh

describe_node

# 1. Correctness: every kernel case but the 65,536-row products, then a step
#    and an epoch against the CPU.
step check 75 "$BIN" check --quick --json "$OUT_DIR/check.json" --junit "$OUT_DIR/check.xml"
# 2. Races and bad accesses the emulator cannot see: the split and ragged
#    products, then the reductions, loss, Adam and gathers.
step racecheck 45 compute-sanitizer --tool racecheck --error-exitcode 9 \
    "$BIN" check --shape 257x131x67 --case 'gemm_'
step memcheck 45 compute-sanitizer --tool memcheck --error-exitcode 9 \
    "$BIN" check --case 'bias_grad|bce_logits|adam|gather|gemm_dw'
# 3. Speed: the step at batch 256 and 65,536 in every precision, the
#    per-kernel breakdown, our GEMMs against cuBLAS. Compare with
#    `dae bench --plan` (benches/NOTES.md).
step bench 90 "$BIN" bench --device cuda --batch-sizes 256,65536 --precisions fp32,tf32,bf16 \
    --repeats 3 --breakdown --gemm --json "$OUT_DIR/bench.json"
# 4. Why: one bf16 step's kernels at 65,536 rows under ncu (clocks left
#    alone): occupancy limits, tensor and FMA pipes, shared wavefronts and
#    bank conflicts, DRAM bytes and throughput, sectors per request, stalls.
export DAE_KERNEL_LINEINFO=1  # source lines in the CUBIN, for ncu's source view
step ncu 75 ncu --clock-control none --launch-count 45 --export "$OUT_DIR/step-65536-bf16" \
    --section SpeedOfLight --section Occupancy --section LaunchStats \
    --section MemoryWorkloadAnalysis --section ComputeWorkloadAnalysis --section WarpStateStats \
    --metrics l1tex__data_bank_conflicts_pipe_lsu_mem_shared_op_ld.sum,l1tex__data_bank_conflicts_pipe_lsu_mem_shared_op_st.sum,l1tex__data_pipe_lsu_wavefronts_mem_shared_op_ld.sum,l1tex__t_sectors_pipe_lsu_mem_global_op_ld.sum,l1tex__t_requests_pipe_lsu_mem_global_op_ld.sum,sm__pipe_tensor_cycles_active.avg.pct_of_peak_sustained_active,sm__pipe_fma_cycles_active.avg.pct_of_peak_sustained_active,dram__bytes_read.sum,dram__bytes_write.sum \
    "$BIN" bench --device cuda --batch-sizes 65536 --precisions bf16 --repeats 1 --rotate 1
unset DAE_KERNEL_LINEINFO
# 5. The product: the lab's 20 epochs in fp32.
step train-fp32 40 "$BIN" train --device cuda --precision fp32 --out "$OUT_DIR/train-fp32" --force

finish
