#!/usr/bin/env bash
# The README's crystal job, on a fresh machine: set up .venv, then in examples/graphene/
#   1. dtrain input.json   - the light preset on displaced 2x2 graphene supercells (CP2K, PBE,
#                            SZV-MOLOPT-SR-GTH, blocks within 7 A incl. self-images)
#   2. dfreeze             - a SavedModel in frozen_model/
#   3. dtest               - on the held-out supercells of the split: Hamiltonian MAE (raw and
#                            gauge-corrected), bands along K_PATH and on a k-grid within E_F +- 2 eV,
#                            gap and predicted Fermi level
#   4. dtest               - on large/: a 4x4 supercell (32 atoms, 4x the training cells) in no
#                            training set, with its own CP2K reference
# It leaves lcurve.out, lcurve.png, test_results/graphene.{parity.png,bands/,summary.json} and
# large_results/graphene_4x4.{...} in examples/graphene/. Extra arguments go to dtrain.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup_env.sh
export PATH="$PWD/.venv/bin:$PATH" TF_CPP_MIN_LOG_LEVEL=3
cd examples/graphene
start=$(date +%s)
dtrain input.json "$@"
dfreeze -c . -o frozen_model
dtest -m frozen_model -s . --split graphs/split.json --subset test --band-window 2 -d test_results/graphene -o test_results
dtest -m frozen_model -s large --band-window 2 -d large_results/graphene_4x4
python - <<'PY'
import json
for label, path in (("held-out 2x2 supercells", "test_results/graphene.summary.json"),
                    ("4x4 supercell (never trained on)", "large_results/graphene_4x4.summary.json")):
    s = json.load(open(path))
    b, p = s["blocks"], s["physics"]
    print(f"\n{label} ({s['n_scored']} structure(s)): Hamiltonian MAE {b['mae_raw_meV']:.3f} meV raw, "
          f"{b['mae_gauge_meV']:.3f} meV gauge-corrected; bands within E_F +- 2 eV: MAE {p['band_mae_meV']:.3f} meV "
          f"(K_PATH), {p['band_mae_shifted_meV']:.3f} meV without the mean shift, k-grid {p['band_grid_mae_meV']:.3f} meV; "
          f"|gap error| {p['band_gap_mae_meV']:.2f} meV, |E_F error| {p['fermi_mae_meV']:.2f} meV")
PY
echo "wall time $(( $(date +%s) - start )) s; plots: examples/graphene/lcurve.png, examples/graphene/test_results/graphene.bands/"
