#!/usr/bin/env bash
# Set up .venv (tools/setup_env.sh) and run the test suite. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup_env.sh
export TF_CPP_MIN_LOG_LEVEL=3 TF_ENABLE_ONEDNN_OPTS=0 OMP_NUM_THREADS=2 CUDA_VISIBLE_DEVICES=""
exec .venv/bin/python -m pytest -q "$@"
