#!/usr/bin/env bash
# Assemble PLAN.md's candidates and evaluate one fold with them and with v0.6 as shipped.
# Usage: assemble.sh FOLD OUT_PREFIX   (FOLD 1 = validation, the choice; 0 = test, once, after it)
set -euo pipefail
FOLD=$1; OUT=$2
T=${T:-tumorscan}; D=${D:?set D to the kaggle_3m folder}
NEW=${NEW:-runs/seg-effunet-s44-e1/best}
# The bundle's post-processing and detection rule, as models/bundle.json has them.
PP=$(python3 -c 'import json; print(json.dumps(json.load(open("models/bundle.json"))["postprocess"]))')
DET=$(python3 -c 'import json; print(json.dumps(json.load(open("models/bundle.json"))["detection"]))')
bundle() { # name, then member folders: the first becomes segment/, the others ensemble members
  local dir=runs/cand-$1; shift
  rm -rf "$dir"; mkdir -p "$dir"
  cp -r "$1" "$dir/segment"; shift
  local ens=() i=2
  for m in "$@"; do cp -r "$m" "$dir/segment-$i"; ens+=("\"segment-$i\""); i=$((i + 1)); done
  local list; list=$(IFS=,; echo "${ens[*]:-}")
  cat > "$dir/bundle.json" <<JSON
{"name": "candidate $(basename "$dir")", "detection": $DET, "postprocess": $PP, "ensemble": [${list}]}
JSON
}
bundle three models/segment models/segment-s43 "$NEW"
bundle s44-e1 "$NEW"
for c in three s44-e1; do
  "$T" evaluate segment --model "runs/cand-$c" --data "$D" --folds models/folds.csv --fold "$FOLD" --out "$OUT-$c" --force
done
"$T" evaluate segment --model models --data "$D" --folds models/folds.csv --fold "$FOLD" --out "$OUT-v06" --force
