#!/usr/bin/env bash
# The training of a two-seed experiment: v0.10's validation commands (one network per split:
# validation fold 1 / test fold 0 and validation fold 3 / test fold 2) with the experiment's change,
# at seeds 42 and 43, two networks at once with --threads 1 (seed 42's pair, then seed 43's).
# Usage (from the repository root): train-two-seeds.sh PREFIX [FLAG...]   (set D to the kaggle_3m
#   folder, P to the EfficientNet-Lite0 ImageNet file, T to the tumorscan binary; LOSS replaces
#   the recipe's bce-dice, SEEDS="42" trains one seed's pair, EPOCHS replaces 20, INIT=PREFIX0
#   fine-tunes each run from the same split and seed's runs/PREFIX0-.../best). Runs:
#   runs/PREFIX-t0v1-s42, runs/PREFIX-t2v3-s42, runs/PREFIX43-t0v1-s43, runs/PREFIX43-t2v3-s43,
#   each with its .log.
# A run folder that holds a checkpoint is resumed (--resume), so rerunning continues a killed run.
set -euo pipefail
T=${T:-tumorscan}; D=${D:?set D to the kaggle_3m folder}; P=${P:?set P to efficientnet-lite0-57934424.pth}
X=${1:?usage: train-two-seeds.sh PREFIX [FLAG...]}; shift
# The run folder of PREFIX, split S (t0v1, t2v3) and seed: seed 43's prefix ends in 43.
run_name() { if [ "$3" = 43 ]; then echo "${1}43-$2-s$3"; else echo "$1-$2-s$3"; fi; }
for seed in ${SEEDS:-42 43}; do
  PIDS=()
  for S in t0v1 t2v3; do
    TF=${S:1:1}; V=${S:3:1}; NAME=$(run_name "$X" $S $seed)
    RESUME=(); [ -d "runs/$NAME/checkpoint" ] && RESUME=(--resume)
    INIT_FROM=(); [ -n "${INIT:-}" ] && INIT_FROM=(--init-from "runs/$(run_name "$INIT" $S $seed)/best")
    "$T" --threads 1 train segment --data "$D" --folds models/folds.csv --val-fold "$V" --test-fold "$TF" \
      --out "runs/$NAME" --arch efficientnet-lite0-unet --pretrained "$P" --epochs "${EPOCHS:-20}" --patience 6 \
      --seed $seed --size 192 --loss "${LOSS:-bce-dice}" --missing-sequences 0.2 "$@" \
      "${INIT_FROM[@]}" "${RESUME[@]}" >> "runs/$NAME.log" 2>&1 &
    PIDS+=($!)
  done
  # A failed run stops the script (its log says why) instead of going on to the next seed.
  for pid in "${PIDS[@]}"; do wait "$pid"; done
done
