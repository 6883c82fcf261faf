#!/usr/bin/env bash
# Recreate the peer virtual environment `.venv-bench` used to run benchmarks against lifetimes in
# the same process as loyaltykit.
#
# lifetimes 0.11.3 (the last release; the project is archived) needs the old scientific stack:
# pandas < 2, numpy < 2 and scipy < 1.14. loyaltykit is
# then installed on top *without* its dependencies, so that pip does not upgrade that stack, and
# the few runtime libraries it needs are added by hand (polars, attrs, pluggy; typer and rich for
# the CLI; psutil for the benchmarks' memory sampling).
#
# Usage: bash benchmarks/setup-peer-env.sh            (from anywhere; writes <repo>/.venv-bench)
#        PYTHON=python3.11 VENV=/tmp/peer bash benchmarks/setup-peer-env.sh
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
VENV="${VENV:-.venv-bench}"

echo "==> creating $VENV with $($PYTHON --version)"
"$PYTHON" -m venv --clear "$VENV"
PIP="$VENV/bin/pip"

echo "==> lifetimes and the old stack it needs"
"$PIP" install "lifetimes==0.11.3" "pandas<2" "numpy<2" "scipy<1.14"

echo "==> loyaltykit (editable, no dependencies) and its runtime libraries"
"$PIP" install --no-deps -e .
"$PIP" install polars attrs pluggy typer rich psutil

echo "==> check"
"$VENV/bin/python" - <<'PY'
import lifetimes, numpy, pandas, polars, scipy

import loyaltykit

print(
    f"lifetimes {lifetimes.__version__}, pandas {pandas.__version__}, numpy {numpy.__version__}, "
    f"scipy {scipy.__version__}, polars {polars.__version__}, loyaltykit {loyaltykit.__version__}"
)
PY
echo "peer environment ready: run the peer comparisons with $VENV/bin/python benchmarks/<bench>.py"
