#!/usr/bin/env bash
# The calibration of `predict`'s tumor_probability, measured by `evaluate detect` (Brier score,
# expected calibration error, reliability table and diagram): v0.10's recipe as a pair
# (runs/rn-*-s42 + runs/rn43-*-s43, v0.10's bundle settings) on validation folds 1 and 3,
# pooled; then the shipped bundle on test fold 0 (models/evaluation/eval-det-test, as
# models/evaluation/evaluate.sh writes it). Files copied into results/ and models/evaluation/.
# Usage (from the repository root): evaluate.sh OUT   (set D to the kaggle_3m folder, T to the tumorscan binary)
set -euo pipefail
OUT=$1
T=${T:-tumorscan}; D=${D:?set D to the kaggle_3m folder}
HERE=$(dirname "$0")
. "$HERE/../cross-validation/bundle.sh"
POOL=()
for split in "1 0 t0v1" "3 2 t2v3"; do
  read -r V TF S <<<"$split"
  bundle "$OUT/bundle-rn-rn43-t$TF" "pair: runs/rn-$S-s42 runs/rn43-$S-s43 (validation fold $V, test fold $TF)" true "runs/rn-$S-s42" "runs/rn43-$S-s43"
  evaluate_fold "$OUT/bundle-rn-rn43-t$TF" "$V" "$OUT/rn-rn43-val-fold$V" detect
  cp "$OUT/rn-rn43-val-fold$V/calibration.png" "$HERE/results/rn-rn43-val-fold$V-calibration.png"
  POOL+=("$OUT/rn-rn43-val-fold$V")
done
"$T" evaluate pool "${POOL[@]}" --out "$OUT/rn-rn43-val-pooled" --force
collect_results "$HERE/results" "${POOL[@]}" "$OUT/rn-rn43-val-pooled"
"$T" evaluate detect --model models --data "$D" --folds models/folds.csv --fold 0 --force --classifier models/detect --out "$OUT/eval-det-test"
cp "$OUT"/eval-det-test/{detection.json,detection.md,slices.csv,roc.png,confusion.png,calibration.png} models/evaluation/eval-det-test/
