#!/usr/bin/env bash
# PLAN.md's measurement 3: v0.10's seed-42 training command (models/bundle.json) for 20 steps of
# one epoch (runs and logs in OUT/timing/), once alone with --threads 2, then as two at once with --threads 1 each (seeds 42
# and 43, how the pair trains). Usage: timing.sh OUT   (D, T as for evaluate.sh; P = the
# EfficientNet-Lite0 ImageNet file). Writes OUT/timing.json (seconds per step, measured).
set -euo pipefail
OUT=$1
T=${T:-tumorscan}; D=${D:?set D to the kaggle_3m folder}; P=${P:?set P to efficientnet-lite0-57934424.pth}
STEPS=20
train() {
  "$T" --threads "$1" train segment --data "$D" --folds models/folds.csv --val-fold 1 --test-fold 0 \
    --out "$OUT/timing/$2" --arch efficientnet-lite0-unet --pretrained "$P" --epochs 1 --max-steps $STEPS \
    --patience 6 --seed "$3" --size 192 --loss bce-dice --missing-sequences 0.2 --train-on-val >"$OUT/timing/$2.log" 2>&1
}
rm -rf "$OUT/timing"; mkdir -p "$OUT/timing"
train 2 alone-s42 42
train 1 pair-s42 42 & train 1 pair-s43 43 & wait
python3 - "$OUT" <<'PY'
import csv, json, sys
out = sys.argv[1]
step = {r: float(next(csv.DictReader(open(f"{out}/timing/{r}/metrics.csv")))["step_seconds"]) for r in ("alone-s42", "pair-s42", "pair-s43")}
json.dump({"steps_timed": 20, "step_seconds": step}, open(f"{out}/timing.json", "w"), indent=1)
print(json.dumps(step))
PY
