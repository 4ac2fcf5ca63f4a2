#!/usr/bin/env bash
# PLAN.md's evaluations: one seed-42 network of v0.6's recipe per test fold, each in a
# one-network bundle with v0.6's clean-up (largest 3D component) and detection rule.
# Usage: evaluate.sh val|test|pairs|pairs-val OUT   (set D to the kaggle_3m folder, T to the tumorscan binary)
#   val:  each network on its validation fold, folds 1-4 (fold 0 is v0.7's test fold), pooled:
#         the clean-up choice (PLAN.md's addendum)
#   test: each network on its test fold 0-4, segmentation and detection, pooled: the
#         cross-validation figure
#   pairs: the seed-42 and seed-43 networks averaged on test folds 0-4, pooled, with the shipped
#         rule (slice context since session 12; PLAN.md's addenda 2 and 3); the single networks
#         on the same patients are `test`'s pool (detection with context:
#         ../detection-context/results/test-pooled.md)
#   pairs-val: the same pairs on their validation folds 1-4, segmentation only, pooled
#         (../hysteresis/PLAN.md's addendum)
set -euo pipefail
STAGE=$1; OUT=$2
T=${T:-tumorscan}; D=${D:?set D to the kaggle_3m folder}
# test fold -> (run, validation fold)
RUNS=(runs/seg-effunet-s42 runs/cv-t1v2-effunet-s42 runs/cv-t2v3-effunet-s42 runs/cv-t3v4-effunet-s42 runs/cv-t4v0-effunet-s42)
VALS=(1 2 3 4 0)
. "$(dirname "$0")/bundle.sh"
POOL=()
if [ "$STAGE" = pairs ] || [ "$STAGE" = pairs-val ]; then
  for t in 0 1 2 3 4; do
    V=${VALS[$t]}
    [ "$STAGE" = pairs-val ] && [ "$V" = 0 ] && continue
    R42=${RUNS[$t]}; R43=${R42%-s42}-s43
    B=$OUT/pair-t$t
    bundle "$B" "v0.6's recipe, seeds 42 + 43, test fold $t ($(basename "$R42") + s43)" true "$R42" "$R43"
    if [ "$STAGE" = pairs-val ]; then
      evaluate_fold "$B" "$V" "$OUT/pair-val-fold$V" segment
      POOL+=("$OUT/pair-val-fold$V")
    else
      evaluate_fold "$B" "$t" "$OUT/pair-test-fold$t" segment detect
      POOL+=("$OUT/pair-test-fold$t")
    fi
  done
  "$T" evaluate pool "${POOL[@]}" --out "$OUT/$STAGE-pooled" --force
  exit 0
fi
for t in 0 1 2 3 4; do
  RUN=${RUNS[$t]}; V=${VALS[$t]}
  [ "$STAGE" = val ] && [ "$V" = 0 ] && continue
  B=$OUT/bundle-t$t
  bundle "$B" "v0.6's recipe, seed 42, test fold $t, validation fold $V ($(basename "$RUN"))" false "$RUN"
  if [ "$STAGE" = val ]; then
    evaluate_fold "$B" "$V" "$OUT/val-fold$V" segment
    POOL+=("$OUT/val-fold$V")
  else
    evaluate_fold "$B" "$t" "$OUT/test-fold$t" segment detect
    POOL+=("$OUT/test-fold$t")
  fi
done
"$T" evaluate pool "${POOL[@]}" --out "$OUT/$STAGE-pooled" --force
