#!/usr/bin/env bash
# PLAN.md's evaluations on validation folds 1 and 3 (32 patients):
#   S: runs/ps-*-s42 + runs/ps-*-s43 (loss per slice) in v0.9.1's bundle settings (largest 3D
#      component, detection rule with slice context), segment + detect per fold, pooled;
#   A: v0.9's validation pairs, pooled from the committed ../detection-cleanup-192/results/largest-val-fold1|3-*;
#   S against A per patient (evaluate compare);
#   each new network alone, as ../focal-dice-192's single-network files (ps-* seed 42, ps43-* seed 43).
# Usage: evaluate.sh OUT   (set D to the kaggle_3m folder, T to the tumorscan binary; from the repository root)
set -euo pipefail
OUT=$1
T=${T:-tumorscan}; D=${D:?set D to the kaggle_3m folder}
HERE=$(dirname "$0")
. "$HERE/../cross-validation/bundle.sh"
pairs_against_v09 "$OUT" S "v0.9's recipe with the loss per slice, seeds 42 + 43, largest 3D component" \
  "1 0 t0v1,3 2 t2v3" "runs/ps-{}-s42" "runs/ps-{}-s43"
# The single networks, as every one-network experiment since focal-dice-192 (seed 43 renamed ps43-*).
E=$HERE/../effunet-192-10-epochs/evaluate.sh
PREFIX=ps SEED=42 EPOCHS=20 RECIPE="v0.9's recipe, loss per slice" "$E" val "$OUT"
PREFIX=ps SEED=43 EPOCHS=20 RECIPE="v0.9's recipe, loss per slice" "$E" val "$OUT/s43"
for f in "$OUT"/s43/ps-*; do mv "$f" "$OUT/ps43-${f##*/ps-}"; done
