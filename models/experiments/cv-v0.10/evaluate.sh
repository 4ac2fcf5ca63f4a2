#!/usr/bin/env bash
# PLAN.md's evaluations: v0.10's recipe (BCE + Dice), one pair per test fold in v0.10's bundle
# settings (largest 3D component), pooled over the five folds and paired per patient against
# v0.9.1's cross-validated pairs (../cv-v0.9/results/largest/), by ../cv-v0.9/evaluate.sh.
# Usage: evaluate.sh OUT   (D, T and FOLDS as for ../cv-v0.9/evaluate.sh)
set -euo pipefail
HERE=$(dirname "$0")
CLEANUP=largest PREFIXES="bd bd43" RECIPE="v0.10's recipe (BCE + Dice)" \
  BASELINE="$HERE/../cv-v0.9/results/largest/test-fold" COMPARE=compare-v0.10-vs-v0.9.1 \
  exec "$HERE/../cv-v0.9/evaluate.sh" "$@"
