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
on_folds_1_3 "$OUT" rn-rn43 pair detect 'runs/rn-{}-s42' 'runs/rn43-{}-s43'
for V in 1 3; do cp "$OUT/rn-rn43-val-fold$V/calibration.png" "$HERE/results/rn-rn43-val-fold$V-calibration.png"; done
"$T" evaluate detect --model models --data "$D" --folds models/folds.csv --fold 0 --force --classifier models/detect --out "$OUT/eval-det-test"
cp "$OUT"/eval-det-test/{detection.json,detection.md,slices.csv,roc.png,confusion.png,calibration.png} models/evaluation/eval-det-test/
