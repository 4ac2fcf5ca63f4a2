#!/usr/bin/env bash
# Test fold 0 as 4D NIfTI volumes stored in four voxel orders, predicted by two builds of
# tumorscan (before and after session 55 read the header's orientation); per-patient Dice.
# usage: D=.../kaggle_3m OLD=old-tumorscan T=tumorscan models/experiments/nifti-orientation/run.sh WORK
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
W=${1:?work folder}; T=${T:-tumorscan}; OLD=${OLD:?the earlier build}; D=${D:?kaggle_3m folder}
N=$W/nifti
[ -d "$N" ] || python3 "$here/../sequences-apart/export_nifti.py" "$D" "$here/../../folds.csv" 0 "$N"
[ -d "$W/stored" ] || python3 "$here/restore.py" "$N" "$W/stored"
for order in las lps ras sagittal; do
  src=$W/stored/$order; [ "$order" = las ] && src=$N
  for build in old new; do
    bin=$T; [ "$build" = old ] && bin=$OLD
    $bin predict "$src"/*_4d.nii.gz --out "$W/$build-$order" 2> "$W/$build-$order.stderr" >/dev/null
  done
  echo; echo "### stored $order"; echo
  python3 "$here/../sequences-apart/dice.py" "$src" "before=$W/old-$order" "after=$W/new-$order"
  grep -h "note: .*stored as\|note: .*oblique" "$W/new-$order.stderr" | head -2 || true
done
