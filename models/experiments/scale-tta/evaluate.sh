#!/usr/bin/env bash
# PLAN.md's stage 1: each seed-42 validation network (runs/fd-t0v1-s42, runs/fd-t2v3-s42) in a
# bundle that holds it twice, the second copy's card set to 224x224 input, so its maps at 192 and
# 224 are averaged (the mixed-size ensemble code); as ../focal-dice-192's fd-* files: segmentation
# and detection with v0.8.1's clean-up, detection also with the largest 3D component.
# Usage: evaluate.sh OUT   (set D to the kaggle_3m folder, T to the tumorscan binary)
set -euo pipefail
OUT=$1
T=${T:-tumorscan}; D=${D:?set D to the kaggle_3m folder}
. "$(dirname "$0")/../cross-validation/bundle.sh"
FRAC30='"threshold": 0.5, "min_component_pixels": 0, "largest_3d_component": false, "min_3d_fraction": 0.3, "flip_tta": false'
# at224 BUNDLE: the ensemble's second member (the same weights) reads slices at 224x224.
at224() { sed -i 's/"input_size": 192/"input_size": 224/' "$1/segment-s43/model.json"; grep -q '"input_size": 224' "$1/segment-s43/model.json"; }
POOL=(); POOL_LARGEST=()
for split in "1 0 t0v1" "3 2 t2v3"; do
  read -r V TF SUFFIX <<<"$split"; RUN=runs/fd-$SUFFIX-s42
  NAME="v0.9's recipe, seed 42, at 192 + 224 (scale TTA), validation fold $V, test fold $TF"
  POSTPROCESS=$FRAC30 bundle "$OUT/bundle-t$TF" "$NAME" true "$RUN" "$RUN"; at224 "$OUT/bundle-t$TF"
  evaluate_fold "$OUT/bundle-t$TF" "$V" "$OUT/tta-val-fold$V" segment detect
  bundle "$OUT/bundle-largest-t$TF" "$NAME; largest 3D component" true "$RUN" "$RUN"; at224 "$OUT/bundle-largest-t$TF"
  evaluate_fold "$OUT/bundle-largest-t$TF" "$V" "$OUT/tta-largest-val-fold$V" detect
  POOL+=("$OUT/tta-val-fold$V"); POOL_LARGEST+=("$OUT/tta-largest-val-fold$V")
done
"$T" evaluate pool "${POOL[@]}" --out "$OUT/tta-val-pooled" --force
"$T" evaluate pool "${POOL_LARGEST[@]}" --out "$OUT/tta-largest-val-pooled" --force
