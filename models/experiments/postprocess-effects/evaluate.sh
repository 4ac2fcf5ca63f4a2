#!/usr/bin/env bash
# The measured effect of each clean-up option, paired patient by patient with the shipped one:
# v0.10's recipe as a pair (runs/rn-*-s42 + runs/rn43-*-s43, the Zen 4 reruns of v0.10's
# validation commands) in v0.10's bundle settings, segmentation only, pooled, copied into
# results/: on validation folds 1 and 3 (the networks of test folds 0 and 2) as pair-val-*;
# with FOLDS=2,4 (addendum 1) on folds 2 and 4 (the networks of test folds 1 and 3) as
# pair24-val-*, then all four folds pooled (folds 1 and 3 from results/) as pair1234-val-pooled.
# Usage (from the repository root): [FOLDS=2,4] evaluate.sh OUT   (set D to the kaggle_3m folder,
#   T to the tumorscan binary)
set -euo pipefail
OUT=$1
T=${T:-tumorscan}; D=${D:?set D to the kaggle_3m folder}
. "$(dirname "$0")/../cross-validation/bundle.sh"
NAME="v0.10's recipe as a pair"
case ${FOLDS:-1,3} in
  1,3) on_folds_1_3 "$OUT" pair "$NAME" segment 'runs/rn-{}-s42' 'runs/rn43-{}-s43' ;;
  2,4)
    on_val_folds "$OUT" pair24 "$NAME" segment "2 1 t1v2,4 3 t3v4" 'runs/rn-{}-s42' 'runs/rn43-{}-s43'
    R=$(dirname "$0")/results
    "$T" evaluate pool "$R/pair-val-fold1-segmentation.json" "$R/pair-val-fold3-segmentation.json" \
      "$OUT/pair24-val-fold2" "$OUT/pair24-val-fold4" --out "$OUT/pair1234-val-pooled" --force
    collect_results "$R" "$OUT/pair1234-val-pooled" ;;
  *) echo "FOLDS is 1,3 or 2,4, not ${FOLDS}" >&2; exit 2 ;;
esac
