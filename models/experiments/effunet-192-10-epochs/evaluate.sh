#!/usr/bin/env bash
# PLAN.md's evaluations: the two 10-epoch seed-42 networks (runs/e10-t0v1-s42: validation fold 1 /
# test fold 0; runs/e10-t2v3-s42: validation fold 3 / test fold 2), each as a one-network bundle
# with v0.8.1's clean-up (3D components >= 30 % of the largest) and detection rule; detection also
# with the largest-3D clean-up, as the committed 20-epoch baseline files (../effunet-192/results/).
# Usage: evaluate.sh val|test OUT   (set D to the kaggle_3m folder, T to the tumorscan binary)
#   PREFIX=e10p: addendum 1's runs (runs/e10p-*, with --output-prior 0.01) instead of runs/e10-*
#   PREFIX=e16p EPOCHS=16, PREFIX=e20p EPOCHS=20: addenda 2 and 3 (the prior at 16 and 20 epochs);
#   PREFIX=s160 EPOCHS=20: addendum 4 (160 px). EPOCHS only names the bundles; RECIPE replaces
#   the name's "v0.8.1's recipe in N epochs" (PREFIX=fd: ../focal-dice-192/); SEED (default 42)
#   picks runs/$PREFIX-t0v1-s$SEED and runs/$PREFIX-t2v3-s$SEED; SPLITS="2 1 t1v2,4 3 t3v4" evaluates
#   other splits ("validation-fold test-fold run-suffix", comma-separated; default "1 0 t0v1,3 2 t2v3")
#   RESULTS=DIR also copies every evaluation and pooled file into DIR under the committed names
#   (PREFIX-STAGE-foldF-segmentation.json, PREFIX-largest-STAGE-pooled.md, ...)
set -euo pipefail
STAGE=$1; OUT=$2
T=${T:-tumorscan}; D=${D:?set D to the kaggle_3m folder}; X=${PREFIX:-e10}; EPOCHS=${EPOCHS:-10}
RECIPE=${RECIPE:-"v0.8.1's recipe in $EPOCHS epochs"}; SEED=${SEED:-42}
. "$(dirname "$0")/../cross-validation/bundle.sh"
FRAC30='"threshold": 0.5, "min_component_pixels": 0, "largest_3d_component": false, "min_3d_fraction": 0.3, "flip_tta": false'
POOL=(); POOL_LARGEST=()
IFS=, read -ra SPLIT_LIST <<<"${SPLITS:-1 0 t0v1,3 2 t2v3}"
for split in "${SPLIT_LIST[@]}"; do
  read -r V TF SUFFIX <<<"$split"; RUN=runs/$X-$SUFFIX-s$SEED
  F=$V; [ "$STAGE" = test ] && F=$TF
  NAME="$RECIPE, seed $SEED, validation fold $V, test fold $TF ($(basename "$RUN"))"
  POSTPROCESS=$FRAC30 bundle "$OUT/bundle-t$TF" "$NAME" true "$RUN"
  evaluate_fold "$OUT/bundle-t$TF" "$F" "$OUT/$X-$STAGE-fold$F" segment detect
  bundle "$OUT/bundle-largest-t$TF" "$NAME; largest 3D component" true "$RUN"
  evaluate_fold "$OUT/bundle-largest-t$TF" "$F" "$OUT/$X-largest-$STAGE-fold$F" detect
  POOL+=("$OUT/$X-$STAGE-fold$F"); POOL_LARGEST+=("$OUT/$X-largest-$STAGE-fold$F")
done
"$T" evaluate pool "${POOL[@]}" --out "$OUT/$X-$STAGE-pooled" --force
"$T" evaluate pool "${POOL_LARGEST[@]}" --out "$OUT/$X-largest-$STAGE-pooled" --force
if [ -n "${RESULTS:-}" ]; then
  collect_results "$RESULTS" "${POOL[@]}" "${POOL_LARGEST[@]}" "$OUT/$X-$STAGE-pooled" "$OUT/$X-largest-$STAGE-pooled"
fi
