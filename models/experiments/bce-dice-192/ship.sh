#!/usr/bin/env bash
# PLAN.md's refit shipped as v0.10, once refit-evaluate.sh OUT has run: refuses unless both runs
# finished their 20 epochs and OUT's bundle flags every tumour patient of test fold 0 (the plan's
# two conditions). Then v0.9.1's test-fold evaluation is kept in v0.9.1-test/, the two runs'
# networks, configs and histories replace models/segment and models/segment-s43, the bundle's name
# is changed (its "info" is edited by hand), models/evaluation is regenerated and OUT's paired
# comparison is kept in results/. Rebuild afterwards: the binary embeds models/segment*.
# Usage (from the repository root): ship.sh OUT   (D, T as for refit-evaluate.sh)
set -euo pipefail
OUT=$1
T=${T:-tumorscan}; D=${D:?set D to the kaggle_3m folder}
E=$(dirname "$0")
fail() { echo "ship.sh: $*" >&2; exit 1; }
[ -e "$E/v0.9.1-test" ] && fail "$E/v0.9.1-test exists: shipped already"
for S in 42 43; do
  grep -q '^20,' "runs/bdff-effunet-s$S/metrics.csv" || fail "runs/bdff-effunet-s$S has not finished 20 epochs"
done
FLAGGED=$(grep -o 'tumour patients detected [0-9]* of [0-9]*' "$OUT/eval-det-test/detection.md" | head -1)
read -r _ _ _ HIT _ ALL <<<"$FLAGGED"
[ -n "$ALL" ] && [ "$HIT" = "$ALL" ] || fail "the refit's bundle flags ${FLAGGED:-no count}: not shipped (PLAN.md)"

mkdir -p "$E/v0.9.1-test"
cp -r models/evaluation/eval-seg-test models/evaluation/eval-det-test models/evaluation/robustness "$E/v0.9.1-test/"
for pair in "42 segment" "43 segment-s43"; do
  read -r S M <<<"$pair"
  R=runs/bdff-effunet-s$S
  cp "$R"/best/model.bpk "$R"/best/model.json "$R"/config.json "$R"/metrics.csv "$R"/metrics.json "$R"/curves.png "models/$M/"
done
. "$E/names.sh"
FROM=$V091_NAME
TO="tumorscan built-in v0.10 ($BD_RECIPE"
grep -qF "\"name\": \"$FROM" models/bundle.json || fail "models/bundle.json is not v0.9.1's"
sed -i "s/\"name\": \"$FROM/\"name\": \"$TO/" models/bundle.json
T=$T D=$D models/evaluation/evaluate.sh
mkdir -p "$E/results"
cp "$OUT/compare/compare.md" "$E/results/compare-v0.10-vs-v0.9.1-test-fold0.md"
cp "$OUT/compare/compare.json" "$E/results/compare-v0.10-vs-v0.9.1-test-fold0.json"
sha256sum models/segment/model.bpk models/segment-s43/model.bpk
