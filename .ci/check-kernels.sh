#!/usr/bin/env bash
# Compile-check kernels/*.cu with NVRTC + ptxas from the CUDA Python wheels
# (no GPU needed): errors, spills, stack frames, and the kernel-name contract.
# Usage: .ci/check-kernels.sh [--json OUT.json] [other tools/check_kernels.py args]
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${DAE_CI_CACHE:-$HOME/.cache/dae-ci}"
VENV="$CACHE/venv"
NVRTC_VER="13.0.88"
NVCC_VER="13.0.88"
PY="${PYTHON:-python3}"

mkdir -p "$CACHE"
if [ ! -x "$VENV/bin/python" ]; then
    echo "check-kernels: creating venv $VENV"
    "$PY" -m venv "$VENV"
fi

installed() {  # installed PACKAGE VERSION
    [ "$("$VENV/bin/python" -m pip show "$1" 2>/dev/null | sed -n 's/^Version: //p')" = "$2" ]
}
if installed nvidia-cuda-nvrtc "$NVRTC_VER" && installed nvidia-cuda-nvcc "$NVCC_VER"; then
    echo "check-kernels: CUDA wheels already installed in $VENV"
else
    echo "check-kernels: installing nvidia-cuda-nvrtc==$NVRTC_VER nvidia-cuda-nvcc==$NVCC_VER"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
        "nvidia-cuda-nvrtc==$NVRTC_VER" "nvidia-cuda-nvcc==$NVCC_VER"
fi

if ! "$VENV/bin/python" -c 'import numpy' 2>/dev/null; then
    echo "check-kernels: installing numpy (for the offline PTX-fragment emulator)"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check numpy
fi

"$VENV/bin/python" "$ROOT/tools/check_kernels.py" "$@"
echo "check-kernels: emulating the GEMM kernels' fragments, staging and epilogues (tools/emu_ptx_check.py)"
"$VENV/bin/python" "$ROOT/tools/emu_ptx_check.py" | tail -n 3
