#!/usr/bin/env bash
# The measured effect of each clean-up option, paired patient by patient with the shipped one:
# v0.10's recipe as a pair (runs/rn-*-s42 + runs/rn43-*-s43, the Zen 4 reruns of v0.10's
# validation commands) in v0.10's bundle settings on validation folds 1 and 3 (the networks of
# test folds 0 and 2), segmentation only, pooled, copied into results/ as pair-val-*.
# Usage (from the repository root): evaluate.sh OUT   (set D to the kaggle_3m folder, T to the tumorscan binary)
set -euo pipefail
OUT=$1
T=${T:-tumorscan}; D=${D:?set D to the kaggle_3m folder}
. "$(dirname "$0")/../cross-validation/bundle.sh"
on_folds_1_3 "$OUT" pair "v0.10's recipe as a pair" segment 'runs/rn-{}-s42' 'runs/rn43-{}-s43'
