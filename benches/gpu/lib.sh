# Shared by the GPU-node scripts (first-run.sh, second-run.sh):
# the output folder, the CUDA libraries for cudarc's dynamic loading, and
# `step`, which runs one step under its time budget and keeps its output.
# Source it after setting OUT_DIR; `finish` prints the table and exits.

BIN="${DAE_BIN:-target/release/dae}"
mkdir -p "$OUT_DIR"
LOG="$OUT_DIR/log.txt"
STEPS="$OUT_DIR/steps.tsv"
: > "$LOG"
printf 'step\texit\tms\tbudget_s\n' > "$STEPS"
status=0

# The toolkit's libraries (libnvrtc.so.13) for cudarc's dynamic loading.
for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib; do
    [ -d "$d" ] && export LD_LIBRARY_PATH="$d${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
done
export DAE_KERNEL_CACHE="$OUT_DIR/kernel-cache"

# step NAME BUDGET_S CMD...: CMD's output streams into NAME.txt, so what a
# step printed is kept however the call ends; a missing tool is a clear
# failure (exit 127), not a silent skip.
step() {
    local name="$1" budget="$2"; shift 2
    local out="$OUT_DIR/$name.txt" t0 rc
    echo "== $name (budget ${budget}s): $*" | tee -a "$LOG"
    t0=$(date +%s%N)
    if ! command -v "$1" >/dev/null 2>&1; then
        case "$1" in
            */*) echo "$name: no executable at $1 (cargo build --release here, carry target/release/dae)" > "$out" ;;
            *) echo "$name: '$1' not found on PATH (this step needs the GPU node's CUDA toolkit)" > "$out" ;;
        esac
        rc=127
    else
        timeout "$budget" "$@" > "$out" 2>&1
        rc=$?
        [ "$rc" -eq 124 ] && echo "$name: stopped at its budget of ${budget}s" >> "$out"
    fi
    local ms=$(( ($(date +%s%N) - t0) / 1000000 ))
    tail -n 15 "$out" | tee -a "$LOG"
    echo "== $name: exit $rc after $ms ms" | tee -a "$LOG"
    printf '%s\t%s\t%s\t%s\n' "$name" "$rc" "$ms" "$budget" >> "$STEPS"
    [ "$rc" -ne 0 ] && status=1
    return 0
}

# The node, first: what every later number depends on.
describe_node() {
    {
        echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
        echo "glibc: $(ldd --version 2>&1 | head -n 1) (the binary needs GLIBC_2.34 or newer)"
        echo "binary: $("$BIN" --version 2>&1)"
        nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv 2>&1
        (command -v nvcc >/dev/null && nvcc --version | tail -n 2) || echo "nvcc: not on PATH"
        ls -1 /usr/local/cuda/lib64/libnvrtc.so* 2>/dev/null
    } | tee "$OUT_DIR/env.txt" | tee -a "$LOG"
}

finish() {
    rm -rf "$DAE_KERNEL_CACHE"
    echo "== steps" | tee -a "$LOG"
    column -t -s $'\t' "$STEPS" 2>/dev/null | tee -a "$LOG" || cat "$STEPS"
    grep -h -E 'cases:|FAIL|^done:|step: ' "$OUT_DIR"/*.txt 2>/dev/null | tee -a "$LOG"
    exit $status
}
