#!/usr/bin/env bash
# PLAN.md's evaluations: the three-member bundle rn + rn43 + rn44 and the pairs rn + rn44,
# rn43 + rn44 in v0.10's bundle settings on validation folds 1 and 3 (the networks of test folds
# 0 and 2), each fold's segmentation and detection, pooled, copied into results/.
# Usage (from the repository root): evaluate.sh OUT   (set D to the kaggle_3m folder, T to the tumorscan binary)
set -euo pipefail
OUT=$1
T=${T:-tumorscan}; D=${D:?set D to the kaggle_3m folder}
. "$(dirname "$0")/../cross-validation/bundle.sh"
on_folds_1_3 "$OUT" rn-rn43-rn44 rn-rn43-rn44 "segment detect" 'runs/rn-{}-s42' 'runs/rn43-{}-s43' 'runs/rn44-{}-s44'
on_folds_1_3 "$OUT" rn-rn44 rn-rn44 "segment detect" 'runs/rn-{}-s42' 'runs/rn44-{}-s44'
on_folds_1_3 "$OUT" rn43-rn44 rn43-rn44 "segment detect" 'runs/rn43-{}-s43' 'runs/rn44-{}-s44'
