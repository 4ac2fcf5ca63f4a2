#!/usr/bin/env bash
# PLAN.md's evaluations: the Zen 4 pairs (runs/rn-tFvV-s42 + runs/rn43-tFvV-s43) in v0.10's
# bundle settings on their test folds, pooled over the five folds and paired per patient against
# ../cv-v0.10/'s Zen 1 pairs, by ../cv-v0.9/evaluate.sh.
# Usage: evaluate.sh OUT   (D, T and FOLDS as for ../cv-v0.9/evaluate.sh)
set -euo pipefail
HERE=$(dirname "$0")
CLEANUP=largest PREFIXES="rn rn43" RECIPE="v0.10's recipe (BCE + Dice), Zen 4 rerun" \
  BASELINE="$HERE/../cv-v0.10/results/test-fold" COMPARE=compare-zen4-vs-zen1 \
  exec "$HERE/../cv-v0.9/evaluate.sh" "$@"
