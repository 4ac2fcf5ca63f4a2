#!/usr/bin/env bash
# PLAN.md addendum 1's evaluations: the pair RUN1 + RUN2 ("{}" stands for the split's suffix,
# e.g. runs/rn-{}-s42) in v0.10's bundle settings (largest 3D component, detection: cleaned mask
# >= 8 px ranked with slice context) on validation folds 1 and 3 (the networks of test folds 0
# and 2), each fold's segmentation and detection, pooled, copied into results/ as TAG-val-*.
# Usage: pairs.sh OUT TAG RUN1 RUN2   (set D to the kaggle_3m folder, T to the tumorscan binary)
set -euo pipefail
OUT=$1 TAG=$2 RUN1=$3 RUN2=$4
T=${T:-tumorscan}; D=${D:?set D to the kaggle_3m folder}
. "$(dirname "$0")/../cross-validation/bundle.sh"
on_folds_1_3 "$OUT" "$TAG" pair "segment detect" "$RUN1" "$RUN2"
