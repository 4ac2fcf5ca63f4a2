#!/usr/bin/env bash
# PLAN.md's evaluations of the two seed-42 networks trained with --slice-head 0.5
# (runs/sh-t0v1-s42: validation fold 1 / test fold 0; runs/sh-t2v3-s42: validation fold 3 /
# test fold 2):
#   rule 1: outlines and the shipped detection rule, as every one-network-per-split experiment
#           (../effunet-192-10-epochs/evaluate.sh, PREFIX=sh), into results/sh-*;
#   rule 2: the head as a detection score: `evaluate detect --classifier RUN/best` with the same
#           network's largest-3D bundle on its validation fold, into results/sh-head-val-fold*.
# Usage: evaluate.sh OUT   (set D to the kaggle_3m folder, T to the tumorscan binary)
set -euo pipefail
OUT=$1; T=${T:-tumorscan}; D=${D:?set D to the kaggle_3m folder}
HERE=$(dirname "$0"); RESULTS=$HERE/results
PREFIX=sh EPOCHS=20 RECIPE="v0.10's recipe with --slice-head 0.5" RESULTS=$RESULTS D=$D T=$T \
  "$HERE/../effunet-192-10-epochs/evaluate.sh" val "$OUT"
for split in "1 0 t0v1" "3 2 t2v3"; do
  read -r V TF S <<<"$split"
  E=$OUT/sh-head-val-fold$V
  "$T" evaluate detect --model "$OUT/bundle-largest-t$TF" --classifier "runs/sh-$S-s42/best" \
    --data "$D" --folds models/folds.csv --fold "$V" --out "$E" --force
  for f in detection.json detection.md slices.csv; do cp "$E/$f" "$RESULTS/sh-head-val-fold$V-$f"; done
done
