#!/usr/bin/env bash
# PLAN.md's addendum 1: the two 192x192 refit networks (runs/ff192-effunet-s42, -s43) in the
# shipped bundle's rule, on test fold 0 only (folds 1-4 were trained on): v0.7's evaluation
# (../effunet-final-fit/evaluate.sh: segmentation, detection, segmentation with missing
# sequences imitated), plus detection with missing sequences (as models/evaluation/robustness/).
# Usage: refit-evaluate.sh OUT   (set D to the kaggle_3m folder, T to the tumorscan binary;
#   R to another run prefix than runs/ff192-effunet if needed)
set -euo pipefail
OUT=$1
T=${T:-tumorscan}; D=${D:?set D to the kaggle_3m folder}; export R=${R:-runs/ff192-effunet} T D
"$(dirname "$0")/../effunet-final-fit/evaluate.sh" "$OUT"
for m in both post; do
  "$T" evaluate detect --model "$OUT/bundle" --data "$D" --folds models/folds.csv --fold 0 --missing-sequence $m --out "$OUT/test-missing-$m-detection" --force
done
