#!/usr/bin/env bash
# PLAN.md's evaluations on validation folds 2 and 4 (32 patients):
#   M: runs/fd-*-s42 (batch 16) + runs/b8-*-s43 (batch 8) in v0.9.1's bundle settings (largest 3D
#      component, detection rule with slice context), segment + detect per fold, pooled;
#   A: v0.9's validation pairs, pooled from the committed ../detection-cleanup-192/results/largest-val-fold2|4-*;
#   M against A per patient (evaluate compare);
#   each new network alone, as ../focal-dice-192's single-network files (the fd-* reruns must equal those).
# Usage: evaluate.sh OUT   (set D to the kaggle_3m folder, T to the tumorscan binary; from the repository root)
set -euo pipefail
OUT=$1
T=${T:-tumorscan}; D=${D:?set D to the kaggle_3m folder}
HERE=$(dirname "$0")
. "$HERE/../cross-validation/bundle.sh"
SPLITS="2 1 t1v2,4 3 t3v4"
pairs_against_v09 "$OUT" M "mixed pair, batch 16 seed 42 + batch 8 seed 43, largest 3D component" \
  "$SPLITS" "runs/fd-{}-s42" "runs/b8-{}-s43"
# The single networks, as every one-network experiment since focal-dice-192.
E=$HERE/../effunet-192-10-epochs/evaluate.sh
SPLITS=$SPLITS PREFIX=fd SEED=42 EPOCHS=20 RECIPE="v0.9's recipe (rerun)" "$E" val "$OUT"
SPLITS=$SPLITS PREFIX=b8 SEED=43 EPOCHS=20 RECIPE="v0.9's recipe at batch 8" "$E" val "$OUT"
