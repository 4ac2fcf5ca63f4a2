#!/usr/bin/env bash
# PLAN.md's addendum 1: the two 192x192 refit networks (runs/ff192-effunet-s42, -s43) in the
# shipped bundle's rule (clean-up and detection as stored in models/bundle.json), on test fold 0
# only (folds 1-4 were trained on), plus the missing-sequence checks of models/evaluation/robustness.
# Usage: refit-evaluate.sh OUT   (set D to the kaggle_3m folder, T to the
# tumorscan binary; R to another run prefix than runs/ff192-effunet if needed)
set -euo pipefail
OUT=$1
T=${T:-tumorscan}; D=${D:?set D to the kaggle_3m folder}; R=${R:-runs/ff192-effunet}
B=$OUT/bundle; rm -rf "$B"; mkdir -p "$B"
cp models/bundle.json "$B/"; cp -r models/detect "$B/detect"
for s in 42 43; do
  M=$B/segment; [ $s = 43 ] && M=$B/segment-s43
  cp -r "$R-s$s/best" "$M"
  cp "$R-s$s"/{config.json,metrics.csv,metrics.json,curves.png} "$M/"
  cp models/segment/NOTICE.md "$M/"
done
"$T" evaluate segment --model "$B" --data "$D" --folds models/folds.csv --fold 0 --out "$OUT/eval-seg-test" --force
"$T" evaluate detect --model "$B" --data "$D" --folds models/folds.csv --fold 0 --out "$OUT/eval-det-test" --force
for m in both post; do
  for what in segment detect; do
    "$T" evaluate $what --model "$B" --data "$D" --folds models/folds.csv --fold 0 --missing-sequence $m --out "$OUT/test-missing-$m-$what" --force
  done
done
