#!/usr/bin/env bash
# PLAN.md's evaluations on validation folds 2 and 4 (32 patients):
#   M: runs/fd-*-s42 (batch 16) + runs/b8-*-s43 (batch 8) in v0.9.1's bundle settings (largest 3D
#      component, detection rule with slice context), segment + detect per fold, pooled;
#   A: v0.9's validation pairs, pooled from the committed ../detection-cleanup-192/results/largest-val-fold2|4-*;
#   M against A per patient (evaluate compare);
#   each new network alone, as ../focal-dice-192's single-network files (the fd-* reruns must equal those).
# Usage: evaluate.sh OUT   (set D to the kaggle_3m folder, T to the tumorscan binary; from the repository root)
set -euo pipefail
OUT=$1
T=${T:-tumorscan}; D=${D:?set D to the kaggle_3m folder}
HERE=$(dirname "$0")
. "$HERE/../cross-validation/bundle.sh"
LARGEST='"threshold": 0.5, "min_component_pixels": 0, "largest_3d_component": true, "min_3d_fraction": 0.3, "flip_tta": false'
SPLITS="2 1 t1v2,4 3 t3v4"
POOL_M=(); POOL_A=()
IFS=, read -ra SPLIT_LIST <<<"$SPLITS"
for split in "${SPLIT_LIST[@]}"; do
  read -r V TF S <<<"$split"
  RUNS=("runs/fd-$S-s42" "runs/b8-$S-s43")
  POSTPROCESS=$LARGEST bundle "$OUT/bundle-M-t$TF" \
    "mixed pair, batch 16 seed 42 + batch 8 seed 43, largest 3D component: ${RUNS[*]} (validation fold $V)" true "${RUNS[@]}"
  evaluate_fold "$OUT/bundle-M-t$TF" "$V" "$OUT/M-val-fold$V" segment detect
  mkdir -p "$OUT/A-val-fold$V"
  for w in segmentation detection; do
    cp "$HERE/../detection-cleanup-192/results/largest-val-fold$V-$w.json" "$OUT/A-val-fold$V/$w.json"
  done
  POOL_M+=("$OUT/M-val-fold$V"); POOL_A+=("$OUT/A-val-fold$V")
done
"$T" evaluate pool "${POOL_M[@]}" --out "$OUT/M-val-pooled" --force
"$T" evaluate pool "${POOL_A[@]}" --out "$OUT/A-val-pooled" --force
"$T" evaluate compare --baseline "${POOL_A[@]}" --candidate "${POOL_M[@]}" --out "$OUT/compare-M-vs-A" --force > /dev/null
# The single networks, as every one-network experiment since focal-dice-192.
E=$HERE/../effunet-192-10-epochs/evaluate.sh
SPLITS=$SPLITS PREFIX=fd SEED=42 EPOCHS=20 RECIPE="v0.9's recipe (rerun)" "$E" val "$OUT"
SPLITS=$SPLITS PREFIX=b8 SEED=43 EPOCHS=20 RECIPE="v0.9's recipe at batch 8" "$E" val "$OUT"
