#!/usr/bin/env bash
# PLAN.md's four runs, two at a time with one thread each (seed 42's pair, then seed 43's); a run
# folder that already has a checkpoint is resumed. Then each seed is evaluated as PLAN.md says.
# Usage (from the repository root): D=kaggle_3m P=efficientnet-lite0-57934424.pth T=tumorscan \
#   nohup models/experiments/lovasz-192/run.sh > runs/lov.log 2>&1 &
set -euo pipefail
T=${T:-tumorscan}; D=${D:?set D to the kaggle_3m folder}; P=${P:?set P to the ImageNet .pth file}
HERE=$(dirname "$0")
train() { # seed val-fold test-fold out
  local resume=(); [ -f "$4/checkpoint/state.json" ] && resume=(--resume)
  "$T" --threads 1 train segment --data "$D" --folds models/folds.csv --val-fold "$2" --test-fold "$3" \
    --out "$4" --arch efficientnet-lite0-unet --pretrained "$P" --epochs 20 --patience 6 --seed "$1" \
    --size 192 --loss bce-lovasz --missing-sequences 0.2 "${resume[@]}" > "$4.log" 2>&1
}
mkdir -p runs
for s in 42 43; do
  X=lov; [ "$s" = 43 ] && X=lov43
  echo "$(date -u +%FT%TZ) seed $s start"
  train "$s" 1 0 "runs/$X-t0v1-s$s" & a=$!
  train "$s" 3 2 "runs/$X-t2v3-s$s" & b=$!
  wait "$a"; wait "$b"
  echo "$(date -u +%FT%TZ) seed $s trained"
  SEED=$s PREFIX=$X EPOCHS=20 RECIPE="v0.10's recipe with BCE + Lovasz hinge" RESULTS="$HERE/results" \
    T="$T" D="$D" "$HERE/../effunet-192-10-epochs/evaluate.sh" val "runs/$X-eval"
  echo "$(date -u +%FT%TZ) seed $s evaluated"
done
