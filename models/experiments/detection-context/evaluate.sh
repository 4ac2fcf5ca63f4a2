#!/usr/bin/env bash
# PLAN.md's evaluations: the cross-validation networks (one seed-42 network of v0.6's recipe per
# test fold, ../cross-validation/) in one-network bundles whose rule is the stored one
# (cleaned mask >= 8 px) with slice context. `evaluate detect` reports both candidates (with and
# without context) at the same 8 px, so each fold's table holds the comparison; the pool is of
# the bundle's own rule (context).
# Usage: evaluate.sh val|test OUT   (set D to the kaggle_3m folder, T to the tumorscan binary)
#   val:  networks on their validation folds 1-4 (fold 0 is v0.7's test fold): the choice
#   test: networks on their test folds 0-4: the cross-validated figure, after the choice
set -euo pipefail
STAGE=$1; OUT=$2
T=${T:-tumorscan}; D=${D:?set D to the kaggle_3m folder}
RUNS=(runs/seg-effunet-s42 runs/cv-t1v2-effunet-s42 runs/cv-t2v3-effunet-s42 runs/cv-t3v4-effunet-s42 runs/cv-t4v0-effunet-s42)
VALS=(1 2 3 4 0)
. "$(dirname "$0")/../cross-validation/bundle.sh"
POOL=()
for t in 0 1 2 3 4; do
  RUN=${RUNS[$t]}; V=${VALS[$t]}
  [ "$STAGE" = val ] && [ "$V" = 0 ] && continue
  B=$OUT/bundle-t$t
  bundle "$B" "v0.6's recipe, seed 42, test fold $t, validation fold $V ($(basename "$RUN")), slice context" true "$RUN"
  F=$([ "$STAGE" = val ] && echo "$V" || echo "$t")
  evaluate_fold "$B" "$F" "$OUT/$STAGE-fold$F" detect
  POOL+=("$OUT/$STAGE-fold$F/detection.json")
done
"$T" evaluate pool "${POOL[@]}" --out "$OUT/$STAGE-pooled" --force
