#!/usr/bin/env bash
# PLAN.md addendum 1: the refit pair (runs/fdff-effunet-s42, -s43) in v0.8.1's bundle settings,
# on test fold 0 only (folds 1-4 were trained on): the evaluations of models/evaluation/
# (segmentation, detection) and of v0.8's refit (missing sequences imitated).
# Usage: refit-evaluate.sh OUT   (set D to the kaggle_3m folder, T to the tumorscan binary)
set -euo pipefail
OUT=$1
T=${T:-tumorscan}; D=${D:?set D to the kaggle_3m folder}
NAME="v0.9 candidate (v0.8.1's refit with focal Tversky alpha = beta = 0.5; models/experiments/focal-dice-192/)" \
  R=runs/fdff-effunet "$(dirname "$0")/../effunet-192/refit-evaluate.sh" "$OUT"
