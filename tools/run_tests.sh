#!/usr/bin/env bash
# Set up .venv (tools/setup_env.sh), build Horovod for it (tools/install_horovod.sh; its
# tests skip, saying why, where it cannot be built) and run the test suite. Extra arguments
# go to pytest. DEEPH_TF_HOROVOD=0 skips the Horovod build.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup_env.sh
if [ "${DEEPH_TF_HOROVOD:-1}" != "0" ]; then
    PYTHON=.venv/bin/python PATH="$PWD/.venv/bin:$PATH" bash tools/install_horovod.sh \
        || echo "run_tests: Horovod could not be built here; the multi-worker tests will be skipped" >&2
fi
export TF_CPP_MIN_LOG_LEVEL=3 TF_ENABLE_ONEDNN_OPTS=0 OMP_NUM_THREADS=2 CUDA_VISIBLE_DEVICES=""
exec .venv/bin/python -m pytest -q "$@"
