#!/usr/bin/env bash
# PLAN.md's evaluations: each test fold's pair of ../cv-v0.10/ (OUT/bundle-tT, built there by
# ../cv-v0.10/evaluate.sh with the same OUT) scored on its own validation fold (T + 1 mod 5).
# Usage: evaluate.sh OUT   (D, T as for ../cv-v0.9/evaluate.sh; FOLDS="0 1" for some test folds)
set -euo pipefail
OUT=$1
T=${T:-tumorscan}; D=${D:?set D to the kaggle_3m folder}
. "$(dirname "$0")/../cross-validation/bundle.sh"
read -ra EVAL <<<"${FOLDS:-0 1 2 3 4}"
for TF in "${EVAL[@]}"; do
  [ -f "$OUT/bundle-t$TF/bundle.json" ] || { echo "no $OUT/bundle-t$TF: run ../cv-v0.10/evaluate.sh $OUT first" >&2; exit 1; }
  evaluate_fold "$OUT/bundle-t$TF" $(((TF + 1) % 5)) "$OUT/val-t$TF" segment
done
