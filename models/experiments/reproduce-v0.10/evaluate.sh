#!/usr/bin/env bash
# PLAN.md's comparison: the reproduced pair (runs/bdff-effunet-s42, -s43) in v0.10's bundle
# settings (models/bundle.json, renamed) on test fold 0, as models/evaluation/eval-*-test.
# Usage (from the repository root): evaluate.sh OUT   (set D to the kaggle_3m folder, T to the binary)
set -euo pipefail
OUT=$1
T=${T:-tumorscan}; D=${D:?set D to the kaggle_3m folder}
. "$(dirname "$0")/../cross-validation/bundle.sh"
evaluate_reproduced "$OUT" "tumorscan built-in v0.10 (" "v0.10 reproduced (session 44; " runs/bdff-effunet-s42 runs/bdff-effunet-s43
