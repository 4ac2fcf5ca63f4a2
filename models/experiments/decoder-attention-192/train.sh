#!/usr/bin/env bash
# PLAN.md's training: v0.10's validation commands plus --decoder-attention, splits t0v1 and t2v3,
# seeds 42 and 43; two networks at once with --threads 1 (seed 42's pair, then seed 43's).
# Usage (from the repository root): train.sh   (set D to the kaggle_3m folder, P to the
#   EfficientNet-Lite0 ImageNet file, T to the tumorscan binary).
# A run folder that holds a checkpoint is resumed (--resume), so rerunning continues a killed run.
set -euo pipefail
T=${T:-tumorscan}; D=${D:?set D to the kaggle_3m folder}; P=${P:?set P to efficientnet-lite0-57934424.pth}
for seed in 42 43; do
  PIDS=()
  for S in t0v1 t2v3; do
    TF=${S:1:1}; V=${S:3:1}; NAME=att-$S-s$seed; [ $seed = 43 ] && NAME=att43-$S-s$seed
    RESUME=(); [ -d "runs/$NAME/checkpoint" ] && RESUME=(--resume)
    "$T" --threads 1 train segment --data "$D" --folds models/folds.csv --val-fold "$V" --test-fold "$TF" \
      --out "runs/$NAME" --arch efficientnet-lite0-unet --pretrained "$P" --epochs 20 --patience 6 \
      --seed $seed --size 192 --loss bce-dice --missing-sequences 0.2 --decoder-attention \
      "${RESUME[@]}" >> "runs/$NAME.log" 2>&1 &
    PIDS+=($!)
  done
  # A failed run stops the script (its log says why) instead of going on to the next seed.
  for pid in "${PIDS[@]}"; do wait "$pid"; done
done
