#!/usr/bin/env bash
# Evaluate the second-split network (PLAN.md): validation fold 3, then test fold 2, segmentation
# and detection (rule chosen on fold 3). Usage: evaluate.sh RUN OUT val|test
# (RUN = runs/cv-t2v3-effunet-s42; `val` first, the clean-up choice, then `test` once).
set -euo pipefail
RUN=$1; OUT=$2; STAGE=$3
T=${T:-tumorscan}; D=${D:?set D to the kaggle_3m folder}
# A one-network bundle with v0.6's post-processing and detection rule (models/bundle.json).
B=$OUT/bundle; rm -rf "$B"; mkdir -p "$B"
cp -r "$RUN/best" "$B/segment"
cat > "$B/bundle.json" <<JSON
{"name": "second split (val 3, test 2): $(basename "$RUN")",
 "detection": {"kind": "segmentation", "min_pixels": 8, "min_probability": 0.0},
 "postprocess": {"threshold": 0.5, "min_component_pixels": 0, "largest_3d_component": true, "flip_tta": false}}
JSON
if [ "$STAGE" = val ]; then
  "$T" evaluate segment --model "$B" --data "$D" --folds models/folds.csv --fold 3 --out "$OUT/val-fold3" --force
  exit 0
fi
"$T" evaluate segment --model "$B" --data "$D" --folds models/folds.csv --fold 2 --out "$OUT/test-fold2" --force
"$T" evaluate detect --model "$B" --data "$D" --folds models/folds.csv --fold 2 --val-fold 3 --out "$OUT/det-test-fold2" --force
