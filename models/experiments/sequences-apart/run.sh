#!/usr/bin/env bash
# Fold 0 as NIfTI volumes, predicted four ways by the built-in model; per-patient Dice.
# usage: D=.../kaggle_3m T=tumorscan models/experiments/sequences-apart/run.sh WORK
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
W=${1:?work folder}; T=${T:-tumorscan}; D=${D:?kaggle_3m folder}
N=$W/nifti
[ -d "$N" ] || python3 "$here/export_nifti.py" "$D" "$here/../../folds.csv" 0 "$N"
patients=$(cd "$N" && ls *_truth.nii.gz | sed 's/_truth.nii.gz//')
start=$(date +%s)
# Sequences stored apart: FLAIR with both T1s, with the pre-contrast T1 only, and with the
# post-contrast T1 only.
for p in $patients; do
  $T predict "$N/${p}_flair.nii.gz" --pre "$N/${p}_pre.nii.gz" --post "$N/${p}_post.nii.gz" \
    --truth "$N/${p}_truth.nii.gz" --out "$W/apart/$p" >/dev/null
  $T predict "$N/${p}_flair.nii.gz" --pre "$N/${p}_pre.nii.gz" --out "$W/flair-pre/$p" >/dev/null
  $T predict "$N/${p}_flair.nii.gz" --post "$N/${p}_post.nii.gz" --out "$W/flair-post/$p" >/dev/null
done
# A BraTS-style folder (a folder per case: <case>_flair, _t1, _t1ce, _seg), read as cases in one run.
for p in $patients; do
  mkdir -p "$W/brats/$p"
  for s in pre:t1 flair:flair post:t1ce truth:seg; do
    ln -sf "$N/${p}_${s%%:*}.nii.gz" "$W/brats/$p/${p}_${s##*:}.nii.gz"
  done
done
$T predict "$W/brats" --out "$W/brats-out" --json > "$W/brats-summary.json"
# The same three sequences in one 4D file, and FLAIR alone (what a user without --pre/--post gets).
$T predict "$N"/*_4d.nii.gz --out "$W/4d" >/dev/null
$T predict "$N"/*_flair.nii.gz --out "$W/flair" >/dev/null
echo "predictions: $(( $(date +%s) - start )) s"
python3 "$here/dice.py" "$N" "three apart=$W/apart" "4D file=$W/4d" "FLAIR + pre=$W/flair-pre" "FLAIR + post=$W/flair-post" "FLAIR alone=$W/flair"
# predict's own score (--truth) against dice.py's, patient by patient.
python3 - "$W/apart" "$N" "$here" <<'PY'
import json, os, sys
sys.path.insert(0, sys.argv[3])
import dice
worst = 0.0
for p in sorted(os.listdir(sys.argv[1])):
    own = json.load(open(os.path.join(sys.argv[1], p, "summary.json")))["volumes"][0]["ground_truth"]["dice"]
    t = dice.voxels(os.path.join(sys.argv[2], p + "_truth.nii.gz"))
    m = dice.voxels(dice.find(os.path.join(sys.argv[1], p), p))
    worst = max(worst, abs(own - dice.dice(t, [1 if v else 0 for v in m])))
print(f"predict --truth against dice.py: largest difference {worst:.2e} over {len(os.listdir(sys.argv[1]))} patients")
PY
python3 - "$W/brats-summary.json" <<'PY'
import json, sys
t = json.load(open(sys.argv[1]))["ground_truth"]
print(f"BraTS-style folder, one run: {t['volumes']} cases, mean Dice {t['mean_dice']:.4f}, slice accuracy {t['slice_accuracy']:.4f}")
PY
