#!/usr/bin/env bash
# Regenerates this folder: the shipped bundle (models/) on the held-out test fold 0, every
# detection candidate (the classifier in models/detect too), and the robustness checks
# (FLAIR stored in place of the other sequences, as 10 patients of the dataset have it).
# Usage (from the repository root): models/evaluation/evaluate.sh [OUT]
#   (set D to the kaggle_3m folder, T to the tumorscan binary; OUT defaults to models/evaluation)
set -euo pipefail
OUT=${1:-models/evaluation}
T=${T:-tumorscan}; D=${D:?set D to the kaggle_3m folder}
args=(--model models --data "$D" --folds models/folds.csv --fold 0 --force)
"$T" evaluate segment "${args[@]}" --out "$OUT/eval-seg-test"
"$T" evaluate detect "${args[@]}" --classifier models/detect --out "$OUT/eval-det-test"
mkdir -p "$OUT/robustness"
for m in both post; do
  W=$(mktemp -d)
  "$T" evaluate segment "${args[@]}" --missing-sequence $m --out "$W/seg"
  "$T" evaluate detect "${args[@]}" --missing-sequence $m --out "$W/det"
  cp "$W/seg/segmentation.md" "$OUT/robustness/test-missing-$m.md"
  cp "$W/det/detection.md" "$OUT/robustness/test-missing-$m-detection.md"
  rm -rf "$W"
done
