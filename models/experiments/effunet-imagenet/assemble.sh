#!/usr/bin/env bash
# Assemble the candidate bundles of PLAN.md from the training runs and evaluate one fold.
# Usage: assemble.sh FOLD OUT_PREFIX   (FOLD 1 = validation, the choice; 0 = test, once, after it)
set -euo pipefail
FOLD=$1; OUT=$2
T=${T:-tumorscan}; D=${D:?set D to the kaggle_3m folder}
EFF=${EFF:-runs/seg-effunet-s42}
bundle() { # name, then member folders: the first becomes segment/, the others ensemble members
  local dir=runs/cand-$1; shift
  rm -rf "$dir"; mkdir -p "$dir"
  cp -r "$1" "$dir/segment"; shift
  local ens=() i=2
  for m in "$@"; do cp -r "$m" "$dir/segment-$i"; ens+=("\"segment-$i\""); i=$((i + 1)); done
  local list; list=$(IFS=,; echo "${ens[*]:-}")
  cat > "$dir/bundle.json" <<JSON
{"name": "candidate $(basename "$dir")", "detection": {"kind": "segmentation", "min_pixels": 1, "min_probability": 0.5},
 "postprocess": {"threshold": 0.5, "min_component_pixels": 0, "largest_3d_component": true, "flip_tta": false},
 "ensemble": [${list}]}
JSON
}
bundle effunet "$EFF/best"
bundle effunet-v05 "$EFF/best" models/segment models/segment-s43
EFF2=${EFF2:-runs/seg-effunet-s43}
bundle effunet2 "$EFF/best" "$EFF2/best"
for c in effunet effunet-v05 effunet2; do
  "$T" evaluate segment --model "runs/cand-$c" --data "$D" --folds models/folds.csv --fold "$FOLD" --out "$OUT-$c" --force
done
"$T" evaluate segment --model models --data "$D" --folds models/folds.csv --fold "$FOLD" --out "$OUT-v05" --force
