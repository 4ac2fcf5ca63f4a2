#!/usr/bin/env bash
# PLAN.md's evaluations: v0.10's recipe as a pair (runs/rn-*-s42 + runs/rn43-*-s43) in v0.10's
# bundle settings with postprocess.slice_smoothing W (0.1, 0.2) on validation folds 1 and 3 (the
# networks of test folds 0 and 2), each fold's segmentation and detection, pooled, copied into
# results/ as smooth-W-val-*. The baseline (W = 0) is ../native-crop-256/results/rn-rn43-val-*.
# Usage (from the repository root): evaluate.sh OUT   (set D to the kaggle_3m folder, T to the tumorscan binary)
set -euo pipefail
OUT=$1
T=${T:-tumorscan}; D=${D:?set D to the kaggle_3m folder}
. "$(dirname "$0")/../cross-validation/bundle.sh"
for W in 0.1 0.2; do
  POSTPROCESS='"threshold": 0.5, "min_component_pixels": 0, "largest_3d_component": true, "flip_tta": false, "slice_smoothing": '$W \
    on_folds_1_3 "$OUT" "smooth-$W" "pair, slices smoothed $W" "segment detect" 'runs/rn-{}-s42' 'runs/rn43-{}-s43'
done
