#!/usr/bin/env bash
# PLAN.md's measurements 1 and 2: each member of ../cv-v0.10/'s pairs alone, in v0.10's bundle
# settings: seed 42 on validation folds 1-4 (pairs of test folds 0-3), pooled and paired against
# the pairs' committed validation files; seeds 42 and 43 on test folds 0-4, pooled and paired
# against ../cv-v0.10/results/. Usage: evaluate.sh OUT   (D, T as for ../cv-v0.9/evaluate.sh;
# SETS="val" or "test" for one of the two).
set -euo pipefail
OUT=$1
T=${T:-tumorscan}; D=${D:?set D to the kaggle_3m folder}
HERE=$(dirname "$0")
. "$HERE/../cross-validation/bundle.sh"
export POSTPROCESS='"threshold": 0.5, "min_component_pixels": 0, "largest_3d_component": true, "min_3d_fraction": 0.3, "flip_tta": false'
read -ra SETS <<<"${SETS:-val test}"
# one SEED TF: the bundle of that member of test fold TF's pair.
one() {
  local P=bd; [ "$1" = 43 ] && P=bd43
  local V=$((($2 + 1) % 5)) R
  R=runs/$P-t${2}v$V-s$1
  bundle "$OUT/s$1-t$2" "v0.10's recipe, one network: $R (test fold $2, validation fold $V)" true "$R"
}
for S in "${SETS[@]}"; do
  if [ "$S" = val ]; then
    PAIR=()
    for TF in 0 1 2 3; do
      one 42 $TF
      evaluate_fold "$OUT/s42-t$TF" $(((TF + 1) % 5)) "$OUT/val-s42-t$TF" segment detect
      PAIR+=("$HERE/../component-peak-nested/results/val-t$TF-segmentation.json" "$HERE/../grow-v0.10/results/val-grow0-t$TF-detection.json")
    done
    "$T" evaluate pool "$OUT"/val-s42-t{0,1,2,3} --out "$OUT/val-s42" --force
    "$T" evaluate pool "${PAIR[@]}" --out "$OUT/val-pair" --force
    "$T" evaluate compare --baseline "${PAIR[@]}" --candidate "$OUT"/val-s42-t{0,1,2,3} --out "$OUT/compare-val-s42-vs-pair" --force >/dev/null
  else
    for SEED in 42 43; do
      for TF in 0 1 2 3 4; do
        one $SEED $TF
        evaluate_fold "$OUT/s$SEED-t$TF" $TF "$OUT/test-s$SEED-t$TF" segment detect
      done
      "$T" evaluate pool "$OUT"/test-s$SEED-t{0,1,2,3,4} --out "$OUT/test-s$SEED" --force
      "$T" evaluate compare --baseline "$HERE"/../cv-v0.10/results/test-fold{0,1,2,3,4}-{segmentation,detection}.json \
        --candidate "$OUT"/test-s$SEED-t{0,1,2,3,4} --out "$OUT/compare-test-s$SEED-vs-pair" --force >/dev/null
    done
  fi
done
