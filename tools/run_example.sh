#!/usr/bin/env bash
# Set up .venv (tools/setup_env.sh) and run the main job on the shipped example.
#
# Until `dtrain` lands, the main job is the physics check the whole project stands on:
# the PySCF-made rotated water copies in examples/water_rotated must carry Hamiltonian and
# overlap blocks that are the rotated blocks of copy 0, H' = D^l1(Q) H D^l2(Q)^T.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup_env.sh
export TF_CPP_MIN_LOG_LEVEL=3
.venv/bin/python tools/check_rotated_copies.py examples/water_rotated/dft --tolerance 1e-4
