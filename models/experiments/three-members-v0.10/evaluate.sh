#!/usr/bin/env bash
# PLAN.md's evaluations: the three-member bundle rn + rn43 + rn44 and the pairs rn + rn44,
# rn43 + rn44 in v0.10's bundle settings on validation folds 1 and 3 (the networks of test folds
# 0 and 2), each fold's segmentation and detection, pooled, copied into results/.
# Usage: evaluate.sh OUT   (set D to the kaggle_3m folder, T to the tumorscan binary)
set -euo pipefail
OUT=$1
T=${T:-tumorscan}; D=${D:?set D to the kaggle_3m folder}
HERE=$(dirname "$0")
. "$HERE/../cross-validation/bundle.sh"
for members in "rn-rn43-rn44 rn-{}-s42 rn43-{}-s43 rn44-{}-s44" "rn-rn44 rn-{}-s42 rn44-{}-s44" "rn43-rn44 rn43-{}-s43 rn44-{}-s44"; do
  read -r TAG NETS <<<"$members"
  POOL=()
  for split in "1 0 t0v1" "3 2 t2v3"; do
    read -r V TF S <<<"$split"
    RUNS=()
    for n in $NETS; do RUNS+=("runs/${n//\{\}/$S}"); done
    bundle "$OUT/bundle-$TAG-t$TF" "$TAG: ${RUNS[*]} (validation fold $V, test fold $TF)" true "${RUNS[@]}"
    evaluate_fold "$OUT/bundle-$TAG-t$TF" "$V" "$OUT/$TAG-val-fold$V" segment detect
    POOL+=("$OUT/$TAG-val-fold$V")
  done
  "$T" evaluate pool "${POOL[@]}" --out "$OUT/$TAG-val-pooled" --force
  collect_results "$HERE/results" "${POOL[@]}" "$OUT/$TAG-val-pooled"
done
