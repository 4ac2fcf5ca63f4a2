#!/usr/bin/env bash
# PLAN.md's evaluations: the two networks fine-tuned at 256x256 (runs/seg-effunet-256-s42,
# -s43), averaged, with v0.6's clean-up (largest 3D component) and detection rule.
# Usage: evaluate.sh val|test OUT      (val: fold 1, the decision; test: fold 0, after it)
# `test` also evaluates detection, its rule chosen again on validation fold 1.
set -euo pipefail
STAGE=$1; OUT=$2
T=${T:-tumorscan}; D=${D:?set D to the kaggle_3m folder}
FOLD=1; [ "$STAGE" = test ] && FOLD=0
B=$OUT/pair256; rm -rf "$B"; mkdir -p "$B"
cp -r runs/seg-effunet-256-s42/best "$B/segment"; cp -r runs/seg-effunet-256-s43/best "$B/segment-s43"
cp runs/seg-effunet-256-s42/config.json "$B/segment/"; cp runs/seg-effunet-256-s43/config.json "$B/segment-s43/"
cat > "$B/bundle.json" <<JSON
{"name": "v0.6 fine-tuned at 256x256 (seeds 42 + 43)",
 "detection": {"kind": "segmentation", "min_pixels": 8, "min_probability": 0.0},
 "postprocess": {"threshold": 0.5, "min_component_pixels": 0, "largest_3d_component": true, "flip_tta": false},
 "ensemble": ["segment-s43"]}
JSON
"$T" evaluate segment --model "$B" --data "$D" --folds models/folds.csv --fold "$FOLD" --out "$OUT/$STAGE-fold$FOLD-pair256" --force
for s in 42 43; do
  "$T" evaluate segment --model runs/seg-effunet-256-s$s/best --data "$D" --folds models/folds.csv --fold "$FOLD" --out "$OUT/$STAGE-fold$FOLD-s$s" --force
done
if [ "$STAGE" = test ]; then
  "$T" evaluate detect --model "$B" --data "$D" --folds models/folds.csv --fold 0 --val-fold 1 --out "$OUT/test-fold0-pair256-detect" --force
fi
