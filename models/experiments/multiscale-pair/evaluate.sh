#!/usr/bin/env bash
# PLAN.md's evaluations on validation folds 1 and 3 (v0.9's bundle settings, as ../loss-mix-192/):
# 1. the retrained 192 seed-42 networks alone, as ../focal-dice-192/'s fd-* files (the check
#    that they are the same networks: compare with results/fd-val-* there);
# 2. the candidate pair, 192 seed 42 (runs/fd-SPLIT-s42) + 256 seed 42 (runs/s256-SPLIT-s42),
#    each fold's segmentation and detection, pooled, and paired against the committed baseline
#    pair (../loss-mix-192/results/A-val-*).
# Usage: evaluate.sh OUT   (set D to the kaggle_3m folder, T to the tumorscan binary)
set -euo pipefail
OUT=$1
T=${T:-tumorscan}; D=${D:?set D to the kaggle_3m folder}
HERE=$(dirname "$0")
PREFIX=fd EPOCHS=20 RECIPE="v0.8.1's recipe with focal Tversky alpha = beta = 0.5" \
  "$HERE/../effunet-192-10-epochs/evaluate.sh" val "$OUT/fd-check"
. "$HERE/../cross-validation/bundle.sh"
export POSTPROCESS='"threshold": 0.5, "min_component_pixels": 0, "largest_3d_component": false, "min_3d_fraction": 0.3, "flip_tta": false'
POOL=(); BASE=()
for split in "1 0 t0v1" "3 2 t2v3"; do
  read -r V TF SUFFIX <<<"$split"
  RUNS=("runs/fd-$SUFFIX-s42" "runs/s256-$SUFFIX-s42")
  bundle "$OUT/bundle-M-t$TF" "multiscale pair: ${RUNS[*]} (validation fold $V, test fold $TF)" true "${RUNS[@]}"
  evaluate_fold "$OUT/bundle-M-t$TF" "$V" "$OUT/M-val-fold$V" segment detect
  POOL+=("$OUT/M-val-fold$V")
  BASE+=("$HERE/../loss-mix-192/results/A-val-fold$V-segmentation.json" "$HERE/../loss-mix-192/results/A-val-fold$V-detection.json")
done
"$T" evaluate pool "${POOL[@]}" --out "$OUT/M-val-pooled" --force
"$T" evaluate compare --baseline "${BASE[@]}" --candidate "${POOL[@]}" --out "$OUT/compare-M-vs-A" --force > /dev/null
