#!/usr/bin/env bash
# PLAN.md's refit (if addendum 1 adopts it): the pair runs/bdff-effunet-s42, -s43 in v0.9.1's
# bundle settings (models/bundle.json, renamed) on test fold 0 only (folds 1-4 were trained on),
# as models/evaluation/eval-*-test, then paired per patient and per slice against v0.9.1's
# committed evaluation (models/evaluation/eval-{seg,det}-test) in OUT/compare.
# Usage (from the repository root): refit-evaluate.sh OUT   (set D to the kaggle_3m folder, T to the binary)
set -euo pipefail
OUT=$1
T=${T:-tumorscan}; D=${D:?set D to the kaggle_3m folder}
. "$(dirname "$0")/../cross-validation/bundle.sh"
. "$(dirname "$0")/names.sh"
# The name's recipe part replaced whole (sed: no "/" in either string).
evaluate_reproduced "$OUT" "$V091_NAME" "v0.10 candidate ($BD_RECIPE, experiment bce-dice-192" \
  runs/bdff-effunet-s42 runs/bdff-effunet-s43
"$T" evaluate compare --baseline models/evaluation/eval-seg-test models/evaluation/eval-det-test \
  --candidate "$OUT/eval-seg-test" "$OUT/eval-det-test" --out "$OUT/compare" --force
