#!/usr/bin/env bash
# PLAN.md's comparison: the reproduced pair (runs/ff192-effunet-s42, -s43) in v0.8.1's bundle
# settings (models/bundle.json) on test fold 0, as models/evaluation/eval-*-test.
# Usage (from the repository root): evaluate.sh OUT   (set D to the kaggle_3m folder, T to the binary)
set -euo pipefail
OUT=$1
T=${T:-tumorscan}; D=${D:?set D to the kaggle_3m folder}
B=$OUT/bundle
rm -rf "$B"; mkdir -p "$B"
for s in 42 43; do
  M=$B/segment; [ $s = 43 ] && M=$B/segment-s43
  cp -r runs/ff192-effunet-s$s/best "$M"; cp runs/ff192-effunet-s$s/config.json "$M/"
done
sed 's/"name": "tumorscan built-in v0.8.1 (/"name": "v0.8.1 reproduced (session 16; /' models/bundle.json > "$B/bundle.json"
args=(--model "$B" --data "$D" --folds models/folds.csv --fold 0 --force)
"$T" evaluate segment "${args[@]}" --out "$OUT/eval-seg-test"
"$T" evaluate detect "${args[@]}" --out "$OUT/eval-det-test"
sha256sum models/segment/model.bpk models/segment-s43/model.bpk "$B"/segment*/model.bpk
