#!/usr/bin/env bash
# PLAN.md's candidate: v0.9's recipe's validation pairs (../loss-mix-192/ candidate A) with the
# largest-3D-component clean-up, `evaluate segment` and `evaluate detect` on validation folds 1-4, pooled.
# Usage: evaluate.sh OUT   (set D to the kaggle_3m folder, T to the tumorscan binary)
set -euo pipefail
OUT=$1
T=${T:-tumorscan}; D=${D:?set D to the kaggle_3m folder}
. "$(dirname "$0")/../cross-validation/bundle.sh"
export POSTPROCESS='"threshold": 0.5, "min_component_pixels": 0, "largest_3d_component": true, "min_3d_fraction": 0.3, "flip_tta": false'
POOL=()
for TF in 0 1 2 3; do
  V=$((TF + 1))
  RUNS=("runs/fd-t${TF}v$V-s42" "runs/fd43-t${TF}v$V-s43")
  bundle "$OUT/bundle-t$TF" "v0.9's recipe, largest 3D component: ${RUNS[*]} (validation fold $V)" true "${RUNS[@]}"
  evaluate_fold "$OUT/bundle-t$TF" "$V" "$OUT/val-fold$V" segment detect
  POOL+=("$OUT/val-fold$V")
done
"$T" evaluate pool "${POOL[@]}" --out "$OUT/pooled" --force
