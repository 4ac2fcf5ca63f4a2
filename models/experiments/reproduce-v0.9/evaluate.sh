#!/usr/bin/env bash
# PLAN.md's comparison: the reproduced pair (runs/fdff-effunet-s42, -s43) in v0.9.1's bundle
# settings (models/bundle.json, renamed) on test fold 0, as models/evaluation/eval-*-test.
# Usage (from the repository root): evaluate.sh OUT   (set D to the kaggle_3m folder, T to the binary)
set -euo pipefail
OUT=$1
T=${T:-tumorscan}; D=${D:?set D to the kaggle_3m folder}
. "$(dirname "$0")/../cross-validation/bundle.sh"
B=$OUT/bundle
bundle "$B" "" true runs/fdff-effunet-s42 runs/fdff-effunet-s43
# The shipped settings themselves, not bundle()'s restatement of them.
sed 's/"name": "tumorscan built-in v0.9.1 (/"name": "v0.9.1 reproduced (session 24; /' models/bundle.json > "$B/bundle.json"
evaluate_fold "$B" 0 "$OUT/eval-seg-test" segment
evaluate_fold "$B" 0 "$OUT/eval-det-test" detect
sha256sum models/segment/model.bpk models/segment-s43/model.bpk "$B"/segment*/model.bpk
