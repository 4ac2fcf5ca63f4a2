#!/usr/bin/env bash
# PLAN.md's evaluations: the seed-42 networks at 128x128 (baseline) and 192x192, each in a
# one-network bundle with the shipped clean-up (largest 3D component) and detection rule
# (cleaned mask >= 8 px, ranked with slice context), pooled per input size.
# Usage: evaluate.sh val|test OUT   (set D to the kaggle_3m folder, T to the tumorscan binary)
#   val:  the splits' validation folds (1 and 3: the decision)
#   test: their test folds (0 and 2: after the decision, to report)
#   VAL_FOLDS: the splits to evaluate, by validation fold (default "1 3"; "1 2 3 4": all four
#     splits of addendum 2, validation folds 1-4 / test folds 0-3)
#   POOL_WITH: further fold JSON files pooled with these, with one size in SIZES
#     (e.g. results/192-val-fold1-*.json of networks no longer at hand)
#   SIZES=192: the 192x192 networks only (default: "128 192")
#   WHAT=detect: only these evaluations (default: "segment detect")
#   POSTPROCESS: another clean-up for the bundles (see ../cross-validation/bundle.sh)
set -euo pipefail
STAGE=$1; OUT=$2
T=${T:-tumorscan}; D=${D:?set D to the kaggle_3m folder}
. "$(dirname "$0")/../cross-validation/bundle.sh"
# split: validation fold, test fold, 128x128 run, 192x192 run
ALL=("1 0 runs/seg-effunet-s42 runs/s192-t0v1-s42" "2 1 runs/cv-t1v2-effunet-s42 runs/s192-t1v2-s42"
     "3 2 runs/cv-t2v3-effunet-s42 runs/s192-t2v3-s42" "4 3 runs/cv-t3v4-effunet-s42 runs/s192-t3v4-s42")
SPLITS=()
for split in "${ALL[@]}"; do
  for v in ${VAL_FOLDS:-1 3}; do [ "${split%% *}" = "$v" ] && SPLITS+=("$split"); done
done
for size in ${SIZES:-128 192}; do
  POOL=(${POOL_WITH:-})
  for split in "${SPLITS[@]}"; do
    read -r V TF R128 R192 <<<"$split"
    RUN=$R128; [ "$size" = 192 ] && RUN=$R192
    F=$V; [ "$STAGE" = test ] && F=$TF
    B=$OUT/bundle-$size-t$TF
    bundle "$B" "v0.6's recipe at ${size}x${size}, seed 42, validation fold $V, test fold $TF ($(basename "$RUN"))" true "$RUN"
    evaluate_fold "$B" "$F" "$OUT/$size-$STAGE-fold$F" ${WHAT:-segment detect}
    POOL+=("$OUT/$size-$STAGE-fold$F")
  done
  "$T" evaluate pool "${POOL[@]}" --out "$OUT/$size-$STAGE-pooled" --force
done
