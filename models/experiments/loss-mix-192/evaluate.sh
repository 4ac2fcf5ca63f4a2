#!/usr/bin/env bash
# PLAN.md's evaluations: candidates A, B, C on validation folds 1 and 3 (v0.9's bundle settings),
# each fold's segmentation and detection, pooled per candidate, and B and C paired against A.
# Usage: evaluate.sh OUT   (set D to the kaggle_3m folder, T to the tumorscan binary; the runs
#   of ../focal-dice-192/ must exist)
#   SPLITS="2 1 t1v2,4 3 t3v4" CANDIDATES="A B": addendum 1 (validation folds 2 and 4)
set -euo pipefail
OUT=$1
T=${T:-tumorscan}; D=${D:?set D to the kaggle_3m folder}
. "$(dirname "$0")/../cross-validation/bundle.sh"
export POSTPROCESS='"threshold": 0.5, "min_component_pixels": 0, "largest_3d_component": false, "min_3d_fraction": 0.3, "flip_tta": false'
declare -A MEMBERS=(
  [A]="fd-SPLIT-s42 fd43-SPLIT-s43"
  [B]="fd-SPLIT-s42 b43-SPLIT-s43"
  [C]="fd-SPLIT-s42 fd43-SPLIT-s43 b43-SPLIT-s43"
)
IFS=, read -ra SPLIT_LIST <<<"${SPLITS:-1 0 t0v1,3 2 t2v3}"
read -ra CANDS <<<"${CANDIDATES:-A B C}"
for c in "${CANDS[@]}"; do
  POOL=()
  for split in "${SPLIT_LIST[@]}"; do
    read -r V TF SUFFIX <<<"$split"
    RUNS=(); for m in ${MEMBERS[$c]}; do RUNS+=("runs/${m/SPLIT/$SUFFIX}"); done
    bundle "$OUT/bundle-$c-t$TF" "loss-mix $c: ${RUNS[*]} (validation fold $V, test fold $TF)" true "${RUNS[@]}"
    evaluate_fold "$OUT/bundle-$c-t$TF" "$V" "$OUT/$c-val-fold$V" segment detect
    POOL+=("$OUT/$c-val-fold$V")
  done
  "$T" evaluate pool "${POOL[@]}" --out "$OUT/$c-val-pooled" --force
done
for c in "${CANDS[@]:1}"; do
  BASE=(); CAND=()
  for split in "${SPLIT_LIST[@]}"; do
    read -r V _ _ <<<"$split"
    BASE+=("$OUT/A-val-fold$V"); CAND+=("$OUT/$c-val-fold$V")   # segmentation and detection
  done
  "$T" evaluate compare --baseline "${BASE[@]}" --candidate "${CAND[@]}" --out "$OUT/compare-$c-vs-A" --force > /dev/null
done
