#!/usr/bin/env bash
# PLAN.md's evaluation: the two refit networks (runs/ff-effunet-s42, -s43) in v0.6's bundle
# (same clean-up and detection rule), on test fold 0 only (fold 1 was trained on).
# Usage: evaluate.sh OUT        (set D to the kaggle_3m folder, T to the tumorscan binary;
#   R to another pair's run prefix than runs/ff-effunet, as ../effunet-192/refit-evaluate.sh does;
#   NAME to rename the bundle, whose bundle.json is otherwise the shipped one's; no '|' or '&' in it)
set -euo pipefail
OUT=$1
T=${T:-tumorscan}; D=${D:?set D to the kaggle_3m folder}; R=${R:-runs/ff-effunet}
B=$OUT/bundle; rm -rf "$B"; mkdir -p "$B"
cp models/bundle.json "$B/"; cp -r models/detect "$B/detect"
if [ -n "${NAME:-}" ]; then sed -i "0,/\"name\": \"[^\"]*\"/s||\"name\": \"$NAME\"|" "$B/bundle.json"; fi
for s in 42 43; do
  M=$B/segment; [ $s = 43 ] && M=$B/segment-s43
  cp -r "$R-s$s/best" "$M"
  cp "$R-s$s"/{config.json,metrics.csv,metrics.json,curves.png} "$M/"
  cp models/segment/NOTICE.md "$M/"
done
"$T" evaluate segment --model "$B" --data "$D" --folds models/folds.csv --fold 0 --out "$OUT/eval-seg-test" --force
"$T" evaluate detect --model "$B" --data "$D" --folds models/folds.csv --fold 0 --out "$OUT/eval-det-test" --force
for m in both post; do
  "$T" evaluate segment --model "$B" --data "$D" --folds models/folds.csv --fold 0 --missing-sequence $m --out "$OUT/test-missing-$m" --force
done
