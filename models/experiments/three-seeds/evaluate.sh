#!/usr/bin/env bash
# PLAN.md's evaluations: three networks (seeds 42, 43, 44) averaged, v0.6's clean-up and rule.
# Usage: evaluate.sh SPLIT val|test OUT
#   SPLIT 1: validation fold 1 / test fold 0 (v0.6's networks + runs/seg-effunet-s44)
#   SPLIT 3: validation fold 3 / test fold 2 (runs/cv-t2v3-effunet-s42, -s43, -s44)
# The pair's figures are in ../component-choice/. `test` also evaluates detection (rule chosen
# on the split's validation fold).
set -euo pipefail
SPLIT=$1; STAGE=$2; OUT=$3
T=${T:-tumorscan}; D=${D:?set D to the kaggle_3m folder}
case $SPLIT in
  1) M=(models/segment models/segment-s43 runs/seg-effunet-s44/best); VAL=1; TEST=0 ;;
  3) M=(runs/cv-t2v3-effunet-s42/best runs/cv-t2v3-effunet-s43/best runs/cv-t2v3-effunet-s44/best); VAL=3; TEST=2 ;;
  *) echo "SPLIT is 1 or 3" >&2; exit 2 ;;
esac
FOLD=$VAL; [ "$STAGE" = test ] && FOLD=$TEST
B=$OUT/three; rm -rf "$B"; mkdir -p "$B"
cp -r "${M[0]}" "$B/segment"; cp -r "${M[1]}" "$B/segment-2"; cp -r "${M[2]}" "$B/segment-3"
cat > "$B/bundle.json" <<JSON
{"name": "three-seeds split $SPLIT",
 "detection": {"kind": "segmentation", "min_pixels": 8, "min_probability": 0.0},
 "postprocess": {"threshold": 0.5, "min_component_pixels": 0, "largest_3d_component": true, "flip_tta": false},
 "ensemble": ["segment-2", "segment-3"]}
JSON
"$T" evaluate segment --model "$B" --data "$D" --folds models/folds.csv --fold "$FOLD" --out "$OUT/$STAGE-fold$FOLD-three" --force
if [ "$STAGE" = test ]; then
  "$T" evaluate detect --model "$B" --data "$D" --folds models/folds.csv --fold "$TEST" --val-fold "$VAL" --out "$OUT/test-fold$TEST-three-detect" --force
fi
