#!/usr/bin/env bash
# PLAN.md's evaluations of a 2.5D network alone, with v0.6's clean-up and detection rule.
# Usage: evaluate.sh RUN OUT val|test  (RUN = runs/seg-effunet-ctx1-s42; `val` (fold 1) is the
# choice, `test` (fold 0: segmentation, and detection with the rule chosen on fold 1) once, after).
set -euo pipefail
RUN=$1; OUT=$2; STAGE=$3
T=${T:-tumorscan}; D=${D:?set D to the kaggle_3m folder}
B=$OUT/bundle; rm -rf "$B"; mkdir -p "$B"
cp -r "$RUN/best" "$B/segment"
cat > "$B/bundle.json" <<JSON
{"name": "2.5D trial: $(basename "$RUN")",
 "detection": {"kind": "segmentation", "min_pixels": 8, "min_probability": 0.0},
 "postprocess": {"threshold": 0.5, "min_component_pixels": 0, "largest_3d_component": true, "flip_tta": false}}
JSON
if [ "$STAGE" = val ]; then
  "$T" evaluate segment --model "$B" --data "$D" --folds models/folds.csv --fold 1 --out "$OUT/val-fold1" --force
  exit 0
fi
"$T" evaluate segment --model "$B" --data "$D" --folds models/folds.csv --fold 0 --out "$OUT/test-fold0" --force
"$T" evaluate detect --model "$B" --data "$D" --folds models/folds.csv --fold 0 --val-fold 1 --out "$OUT/det-test-fold0" --force
