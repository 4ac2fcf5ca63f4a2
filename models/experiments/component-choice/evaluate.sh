#!/usr/bin/env bash
# PLAN.md's evaluations. Usage: evaluate.sh SPLIT STAGE OUT
#   SPLIT 1: v0.6's networks (validation fold 1, test fold 0)
#   SPLIT 3: the second split's networks (validation fold 3, test fold 2)
#   STAGE val: the choice; test: once, after it (segmentation, and detection with the rule
#   re-chosen on validation). RANK (voxels|mass|peak, default voxels): the bundles' `keep_3d_by`
#   (the "as shipped" row and detection; every ranking is a row of the segmentation tables);
#   TTA (true|false, default false): the bundles' `flip_tta`, likewise.
set -euo pipefail
SPLIT=$1; STAGE=$2; OUT=$3
T=${T:-tumorscan}; D=${D:?set D to the kaggle_3m folder}; RANK=${RANK:-voxels}; TTA=${TTA:-false}
case $SPLIT in
  1) A=models/segment; B=models/segment-s43; VAL=1; TEST=0 ;;
  3) A=runs/cv-t2v3-effunet-s42/best; B=runs/cv-t2v3-effunet-s43/best; VAL=3; TEST=2 ;;
  *) echo "SPLIT is 1 or 3" >&2; exit 2 ;;
esac
FOLD=$VAL; [ "$STAGE" = test ] && FOLD=$TEST
bundle() { # dir, members (the first becomes segment/, the others ensemble members)
  local dir=$1; shift
  rm -rf "$dir"; mkdir -p "$dir"
  cp -r "$1" "$dir/segment"; shift
  local ens=() i=2
  for m in "$@"; do cp -r "$m" "$dir/segment-$i"; ens+=("\"segment-$i\""); i=$((i + 1)); done
  local list; list=$(IFS=,; echo "${ens[*]:-}")
  cat > "$dir/bundle.json" <<JSON
{"name": "component-choice split $SPLIT: $(basename "$dir")",
 "detection": {"kind": "segmentation", "min_pixels": 8, "min_probability": 0.0},
 "postprocess": {"threshold": 0.5, "min_component_pixels": 0, "largest_3d_component": true, "keep_3d_by": "$RANK", "flip_tta": $TTA},
 "ensemble": [${list}]}
JSON
}
B0=$OUT/bundles; mkdir -p "$B0"
bundle "$B0/pair" "$A" "$B"
bundle "$B0/seed42" "$A"
bundle "$B0/seed43" "$B"
for c in pair seed42 seed43; do
  "$T" evaluate segment --model "$B0/$c" --data "$D" --folds models/folds.csv --fold "$FOLD" --out "$OUT/$STAGE-fold$FOLD-$c" --force
done
# Detection (test stage only): the rule is chosen on the validation fold by the tool itself.
if [ "$STAGE" = test ]; then
  "$T" evaluate detect --model "$B0/pair" --data "$D" --folds models/folds.csv --fold "$TEST" --val-fold "$VAL" --out "$OUT/test-fold$TEST-pair-detect-$RANK" --force
fi
