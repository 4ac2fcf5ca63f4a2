#!/usr/bin/env bash
# PLAN.md addendum 1's evaluations: the pair RUN1 + RUN2 ("{}" stands for the split's suffix,
# e.g. runs/rn-{}-s42) in v0.10's bundle settings (largest 3D component, detection: cleaned mask
# >= 8 px ranked with slice context) on validation folds 1 and 3 (the networks of test folds 0
# and 2), each fold's segmentation and detection, pooled, copied into results/ as TAG-val-*.
# Usage: pairs.sh OUT TAG RUN1 RUN2   (set D to the kaggle_3m folder, T to the tumorscan binary)
set -euo pipefail
OUT=$1 TAG=$2 RUN1=$3 RUN2=$4
T=${T:-tumorscan}; D=${D:?set D to the kaggle_3m folder}
HERE=$(dirname "$0")
. "$HERE/../cross-validation/bundle.sh"
POOL=()
for split in "1 0 t0v1" "3 2 t2v3"; do
  read -r V TF S <<<"$split"
  RUNS=("${RUN1//\{\}/$S}" "${RUN2//\{\}/$S}")
  bundle "$OUT/bundle-$TAG-t$TF" "pair: ${RUNS[*]} (validation fold $V, test fold $TF)" true "${RUNS[@]}"
  evaluate_fold "$OUT/bundle-$TAG-t$TF" "$V" "$OUT/$TAG-val-fold$V" segment detect
  POOL+=("$OUT/$TAG-val-fold$V")
done
"$T" evaluate pool "${POOL[@]}" --out "$OUT/$TAG-val-pooled" --force
collect_results "$HERE/results" "${POOL[@]}" "$OUT/$TAG-val-pooled"
