#!/usr/bin/env bash
# Create (or update) the project's virtual environment and install deeph_tf into it.
#
#   bash tools/setup_env.sh            # .venv with deeph_tf and the test extras
#   VENV=/path/to/venv bash tools/setup_env.sh
#
# tensorflow-graphics is installed with --no-deps: its last release (2021.12.3) declares
# tensorflow-addons (end of life), tensorflow-datasets, pyarrow, OpenEXR and trimesh, none
# of which its rotation module (the only part deeph_tf uses) imports.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-}
if [ -z "$PYTHON" ]; then
  if command -v python3.11 >/dev/null 2>&1; then PYTHON=python3.11; else PYTHON=python3; fi
fi
"$PYTHON" - <<'PY'
import sys
if sys.version_info < (3, 11):
    sys.exit(f"deeph_tf needs Python >= 3.11, found {sys.version.split()[0]} ({sys.executable})")
PY
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check -q)
"${PIP[@]}" install -e ".[test]" 2>&1 | grep -v "^WARNING: Location" || true
"${PIP[@]}" install --no-deps "tensorflow-graphics==2021.12.3" 2>&1 | grep -v "^WARNING: Location" || true
# Fail loudly if anything above went wrong (the greps hide only pip's index warnings).
"$VENV/bin/python" -c "import deeph_tf, tensorflow, tensorflow_graphics.geometry.transformation" 2>/dev/null \
  || { echo "setup_env: installation into $VENV failed" >&2; exit 1; }
