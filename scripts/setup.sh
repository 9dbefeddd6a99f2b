#!/usr/bin/env bash
# Create .venv (if needed) and install gantools into it, building the native ops ahead of time.
# Needs only python3. torch is installed first (CPU build) so the extension builds against it
# without a second torch in an isolated build environment.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    echo "[setup] creating .venv"
    "$PY" -m venv .venv
fi
VPY=.venv/bin/python
"$VPY" -m pip install --quiet --upgrade pip
"$VPY" -m pip install --quiet "torch==${GANTOOLS_TORCH:-2.13.0}" setuptools wheel ninja
echo "[setup] installing gantools (builds the native ops)"
MAX_JOBS=${MAX_JOBS:-2} "$VPY" -m pip install --quiet --no-build-isolation -e ".[test]"
echo "[setup] ready: $("$VPY" -c 'import gantools, torch; print("gantools", gantools.__version__, "torch", torch.__version__)')"
