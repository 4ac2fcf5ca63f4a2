#!/usr/bin/env bash
# PLAN.md's training: v0.10's recipe for test folds 1, 3 and 4 (validation fold = test fold + 1),
# seeds 42 and 43, one split's pair at a time, both networks at once with --threads 1.
# Usage (from the repository root): train.sh [SPLIT...]   (default: t1v2 t3v4 t4v0; set D to the
#   kaggle_3m folder, P to the EfficientNet-Lite0 ImageNet file, T to the tumorscan binary).
# A run folder that holds a checkpoint is resumed (--resume), so rerunning continues a killed run.
set -euo pipefail
T=${T:-tumorscan}; D=${D:?set D to the kaggle_3m folder}; P=${P:?set P to efficientnet-lite0-57934424.pth}
SPLITS=("$@"); [ $# = 0 ] && SPLITS=(t1v2 t3v4 t4v0)
for S in "${SPLITS[@]}"; do
  TF=${S:1:1}; V=${S:3:1}; PIDS=()
  for seed in 42 43; do
    NAME=rn-$S-s$seed; [ $seed = 43 ] && NAME=rn43-$S-s$seed
    RESUME=(); [ -d "runs/$NAME/checkpoint" ] && RESUME=(--resume)
    "$T" --threads 1 train segment --data "$D" --folds models/folds.csv --val-fold "$V" --test-fold "$TF" \
      --out "runs/$NAME" --arch efficientnet-lite0-unet --pretrained "$P" --epochs 20 --patience 6 \
      --seed $seed --size 192 --loss bce-dice --missing-sequences 0.2 "${RESUME[@]}" >> "runs/$NAME.log" 2>&1 &
    PIDS+=($!)
  done
  # A failed run stops the script (its log says why) instead of going on to the next split.
  for pid in "${PIDS[@]}"; do wait "$pid"; done
done
