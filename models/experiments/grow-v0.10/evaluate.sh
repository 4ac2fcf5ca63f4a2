#!/usr/bin/env bash
# PLAN.md's detection evaluations: ../cv-v0.10/'s pairs of test folds 0-3 (OUT/bundle-tT, built by
# ../cv-v0.10/evaluate.sh with the same OUT) on their validation folds 1-4, stored and with
# grow_to 0.4 / 0.3. Usage: evaluate.sh OUT   (D, T as for ../cv-v0.9/evaluate.sh; FOLDS="0 1"
# for some test folds' pairs, GROW="0 0.4" for some variants, 0 = stored); then each variant's
# four folds pooled.
set -euo pipefail
OUT=$1
T=${T:-tumorscan}; D=${D:?set D to the kaggle_3m folder}
. "$(dirname "$0")/../cross-validation/bundle.sh"
read -ra EVAL <<<"${FOLDS:-0 1 2 3}"
read -ra GROWS <<<"${GROW:-0 0.4 0.3}"
for TF in "${EVAL[@]}"; do
  B=$OUT/bundle-t$TF
  [ -f "$B/bundle.json" ] || { echo "no $B: run ../cv-v0.10/evaluate.sh $OUT first" >&2; exit 1; }
  for G in "${GROWS[@]}"; do
    GB=$OUT/grow$G-t$TF
    rm -rf "$GB"; cp -r "$B" "$GB"
    sed -i "s/\"flip_tta\": false}/\"flip_tta\": false, \"grow_to\": $G}/" "$GB/bundle.json"
    grep -q "\"grow_to\": $G}" "$GB/bundle.json"
    evaluate_fold "$GB" $(((TF + 1) % 5)) "$OUT/val-grow$G-t$TF" detect
  done
done
# Pooled over the four validation folds once all are there (decide.py reads OUT/val-growG/pooled.json).
for G in "${GROWS[@]}"; do
  FILES=("$OUT"/val-grow$G-t{0,1,2,3}/detection.json)
  for F in "${FILES[@]}"; do [ -f "$F" ] || continue 2; done
  "$T" evaluate pool "${FILES[@]}" --out "$OUT/val-grow$G" --force
done
