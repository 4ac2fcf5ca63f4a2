#!/usr/bin/env bash
# PLAN.md's four runs (../train-two-seeds.sh with --loss bce-lovasz: two at a time with one thread
# each, seed 42's pair, then seed 43's; a run folder that has a checkpoint is resumed), each seed
# evaluated as PLAN.md says once its pair is trained.
# Usage (from the repository root): D=kaggle_3m P=efficientnet-lite0-57934424.pth T=tumorscan \
#   nohup models/experiments/lovasz-192/run.sh > runs/lov.log 2>&1 &
set -euo pipefail
T=${T:-tumorscan}; D=${D:?set D to the kaggle_3m folder}; P=${P:?set P to the ImageNet .pth file}
HERE=$(dirname "$0")
mkdir -p runs
for s in 42 43; do
  X=lov; [ "$s" = 43 ] && X=lov43
  echo "$(date -u +%FT%TZ) seed $s start"
  SEEDS=$s LOSS=bce-lovasz T="$T" D="$D" P="$P" "$HERE/../train-two-seeds.sh" lov
  echo "$(date -u +%FT%TZ) seed $s trained"
  SEED=$s PREFIX=$X EPOCHS=20 RECIPE="v0.10's recipe with BCE + Lovasz hinge" RESULTS="$HERE/results" \
    T="$T" D="$D" "$HERE/../effunet-192-10-epochs/evaluate.sh" val "runs/$X-eval"
  echo "$(date -u +%FT%TZ) seed $s evaluated"
done
