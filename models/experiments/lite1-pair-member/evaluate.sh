#!/usr/bin/env bash
# PLAN.md's evaluations on validation folds 2 and 4 (32 patients):
#   L:  runs/fd-*-s42 (Lite0) + runs/l1-*-s43 (Lite1),   } in v0.9.1's bundle settings, segment +
#   LL: runs/l1-*-s42 (Lite1) + runs/l1-*-s43 (Lite1),   } detect per fold, pooled, each compared
#   A:  v0.9's validation pairs (committed ../detection-cleanup-192/results/largest-val-fold2|4-*);
#   each Lite1 network alone as every one-network experiment (OUT/s42/l1-*, OUT/s43/l1-*).
# Usage: evaluate.sh OUT   (set D to the kaggle_3m folder, T to the tumorscan binary; from the repository root)
set -euo pipefail
OUT=$1
T=${T:-tumorscan}; D=${D:?set D to the kaggle_3m folder}
HERE=$(dirname "$0")
. "$HERE/../cross-validation/bundle.sh"
SPLITS="2 1 t1v2,4 3 t3v4"
pairs_against_v09 "$OUT" L "Lite0 seed 42 + Lite1 seed 43, largest 3D component" \
  "$SPLITS" "runs/fd-{}-s42" "runs/l1-{}-s43"
pairs_against_v09 "$OUT" LL "Lite1 seeds 42 + 43, largest 3D component" \
  "$SPLITS" "runs/l1-{}-s42" "runs/l1-{}-s43"
E=$HERE/../effunet-192-10-epochs/evaluate.sh
for s in 42 43; do
  SPLITS=$SPLITS PREFIX=l1 SEED=$s EPOCHS=20 RECIPE="v0.9's recipe on EfficientNet-Lite1" "$E" val "$OUT/s$s"
done
