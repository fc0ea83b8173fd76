#!/usr/bin/env bash
# The README's main job, on a fresh machine: set up .venv, then in examples/water/
#   1. dtrain input.json   - the light preset on 240 PySCF water molecules (20 validate)
#   2. dfreeze             - a SavedModel in frozen_model/
#   3. dtest               - on the 40 held-out molecules of the split: Hamiltonian MAE (raw
#                            and gauge-corrected) and orbital-energy errors (occupied + LUMO)
# It leaves lcurve.out, lcurve.png, test_results/water.parity.png and the predicted
# test_results/dft/<sid>/hamiltonian_pred.h5 in examples/water/. Extra arguments go to dtrain
# (e.g. -r model.ckpt to continue a run).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup_env.sh
export PATH="$PWD/.venv/bin:$PATH" TF_CPP_MIN_LOG_LEVEL=3
cd examples/water
start=$(date +%s)
dtrain input.json "$@"
dfreeze -c . -o frozen_model
dtest -m frozen_model -s . --split graphs/split.json --subset test -d test_results/water -o test_results
python - <<'PY'
import json
summary = json.load(open("test_results/water.summary.json"))
blocks, physics = summary["blocks"], summary["physics"]
print(f"\nheld-out water ({summary['n_scored']} molecules): Hamiltonian MAE {blocks['mae_raw_meV']:.3f} meV raw, "
      f"{blocks['mae_gauge_meV']:.3f} meV gauge-corrected; orbital energies (occupied + LUMO) MAE "
      f"{physics['orbital_energy_mae_meV']:.3f} meV, HOMO-LUMO gap MAE {physics['gap_mae_meV']:.3f} meV")
PY
echo "wall time $(( $(date +%s) - start )) s; plots: examples/water/lcurve.png, examples/water/test_results/water.parity.png"
