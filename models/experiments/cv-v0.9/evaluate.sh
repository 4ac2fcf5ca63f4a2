#!/usr/bin/env bash
# PLAN.md's evaluations: v0.9's recipe, one pair per test fold in v0.9's bundle settings,
# each pair's segmentation and detection on its test fold, pooled over the five folds and paired
# per patient against v0.6's pairs (../cross-validation/results/pair-test-fold*).
# Usage: evaluate.sh OUT   (set D to the kaggle_3m folder, T to the tumorscan binary; the runs of
#   PLAN.md must exist). FOLDS="0 1 2 3" evaluates only those folds; pooling and the comparison
#   run once OUT holds all five. CLEANUP=largest: v0.9.1's clean-up (largest 3D component; addendum 1).
#   Another recipe's pairs (../cv-v0.10/): PREFIXES="bd bd43" (runs/PREFIX-tFvV-s42 and -s43),
#   RECIPE (the bundles' name), BASELINE (the compared files' common start, up to the fold
#   number) and COMPARE (the comparison's folder name).
set -euo pipefail
OUT=$1
T=${T:-tumorscan}; D=${D:?set D to the kaggle_3m folder}
HERE=$(dirname "$0")
. "$HERE/../cross-validation/bundle.sh"
LARGEST=false; [ "${CLEANUP:-}" = largest ] && LARGEST=true
export POSTPROCESS='"threshold": 0.5, "min_component_pixels": 0, "largest_3d_component": '$LARGEST', "min_3d_fraction": 0.3, "flip_tta": false'
read -r P42 P43 <<<"${PREFIXES:-fd fd43}"
RECIPE=${RECIPE:-"v0.9's recipe"}
BASELINE=${BASELINE:-"$HERE/../cross-validation/results/pair-test-fold"}
COMPARE=${COMPARE:-compare-v0.9-vs-v0.6}
read -ra EVAL <<<"${FOLDS:-0 1 2 3 4}"
for TF in "${EVAL[@]}"; do
  V=$(((TF + 1) % 5))
  RUNS=("runs/$P42-t${TF}v$V-s42" "runs/$P43-t${TF}v$V-s43")
  bundle "$OUT/bundle-t$TF" "$RECIPE: ${RUNS[*]} (test fold $TF, validation fold $V)" true "${RUNS[@]}"
  evaluate_fold "$OUT/bundle-t$TF" "$TF" "$OUT/test-fold$TF" segment detect
done
for TF in 0 1 2 3 4; do [ -f "$OUT/test-fold$TF/detection.json" ] || exit 0; done
"$T" evaluate pool "$OUT"/test-fold{0,1,2,3,4} --out "$OUT/pooled" --force
"$T" evaluate compare --baseline "$BASELINE"{0,1,2,3,4}-{segmentation,detection}.json \
  --candidate "$OUT"/test-fold{0,1,2,3,4} --out "$OUT/$COMPARE" --force > /dev/null
