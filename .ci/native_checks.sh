#!/usr/bin/env bash
# Native-kernel checks for CI, run after the package is installed:
#   (a) the CMake build of csrc/ against the installed (CPU) torch, and its C++ test under ctest;
#   (b) a compile check of the CUDA sources for sm_90 against torch==2.14.1 (CUDA 13) in a
#       separate virtualenv, so CUDA code cannot rot on machines without a GPU.
# Environment: PYTHON (interpreter with the project's torch; default python3), MAX_JOBS (default 2),
# GANTOOLS_CUDA_HOME (default /usr/local/cuda-13.0), GANTOOLS_CUDA_VENV (default
# $HOME/.cache/gantools-cuda-venv, reused while it holds the right torch).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-python3}"
JOBS="${MAX_JOBS:-2}"
CUDA_HOME_DIR="${GANTOOLS_CUDA_HOME:-/usr/local/cuda-13.0}"
CUDA_VENV="${GANTOOLS_CUDA_VENV:-$HOME/.cache/gantools-cuda-venv}"
CUDA_TORCH="2.14.1"
WORK="$(mktemp -d /tmp/gantools-native.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT

step() { echo "== native checks: $*"; }
# Run a command quietly; print its log and fail if it fails.
quiet() {
  local log="$1"; shift
  if ! "$@" > "$log" 2>&1; then
    cat "$log"
    echo "== native checks: FAILED: $*"
    exit 1
  fi
}

step "(a) CMake build against torch $("$PYTHON" -c 'import torch; print(torch.__version__)')"
quiet "$WORK/cmake-configure.log" cmake -S "$ROOT" -B "$WORK/cmake" -G Ninja \
  -DPython3_EXECUTABLE="$(command -v "$PYTHON")"
quiet "$WORK/cmake-build.log" cmake --build "$WORK/cmake" -j "$JOBS"
step "(a) ctest"
ctest --test-dir "$WORK/cmake" --output-on-failure

step "(b) CUDA compile check (sm_90, torch $CUDA_TORCH, $CUDA_HOME_DIR)"
if [ ! -x "$CUDA_HOME_DIR/bin/nvcc" ]; then
  echo "== native checks: FAILED: no nvcc at $CUDA_HOME_DIR (set GANTOOLS_CUDA_HOME)"
  exit 1
fi
if ! "$CUDA_VENV/bin/python" -c "import sys, torch; sys.exit(not (torch.__version__.startswith('$CUDA_TORCH') and torch.version.cuda))" 2>/dev/null; then
  step "(b) creating $CUDA_VENV with torch==$CUDA_TORCH"
  rm -rf "$CUDA_VENV"
  mkdir -p "$(dirname "$CUDA_VENV")"
  quiet "$WORK/venv.log" python3 -m venv "$CUDA_VENV"
  quiet "$WORK/pip.log" "$CUDA_VENV/bin/pip" install -q "torch==$CUDA_TORCH" ninja setuptools wheel numpy
else
  step "(b) reusing $CUDA_VENV"
fi
# The toolkit lacks the cuBLAS/cuSPARSE headers ATen includes; the nvidia wheels installed
# with that torch carry them.
NVIDIA_DIR="$("$CUDA_VENV/bin/python" -c "import nvidia, os; print(os.path.join(list(nvidia.__path__)[0], 'cu13'))")"
(
  cd "$ROOT"
  export FORCE_CUDA=1 TORCH_CUDA_ARCH_LIST=9.0 MAX_JOBS="$JOBS" CUDA_HOME="$CUDA_HOME_DIR"
  export PATH="$CUDA_HOME_DIR/bin:$CUDA_VENV/bin:$PATH"
  export CPATH="$NVIDIA_DIR/include${CPATH:+:$CPATH}"
  export LIBRARY_PATH="$NVIDIA_DIR/lib${LIBRARY_PATH:+:$LIBRARY_PATH}"
  quiet "$WORK/cuda-build.log" "$CUDA_VENV/bin/python" setup.py build_ext \
    --build-temp "$WORK/cuda-temp" --build-lib "$WORK/cuda-lib"
)
# Every .cu must have been compiled by nvcc for sm_90 into the extension.
for source in "$ROOT"/csrc/cuda/*.cu; do
  object="$WORK/cuda-temp/csrc/cuda/$(basename "${source%.cu}").o"
  if [ ! -s "$object" ] || ! grep -q "code=sm_90" "$WORK/cuda-temp/build.ninja"; then
    echo "== native checks: FAILED: $(basename "$source") was not compiled for sm_90"
    exit 1
  fi
  echo "   compiled $(basename "$source") -> ${object#"$WORK"/}"
done
ls "$WORK"/cuda-lib/gantools/_C*.so > /dev/null
step "all passed"
