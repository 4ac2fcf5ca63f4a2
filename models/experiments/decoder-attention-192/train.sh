#!/usr/bin/env bash
# PLAN.md's training: v0.10's validation commands plus --decoder-attention, splits t0v1 and t2v3,
# seeds 42 and 43; two networks at once with --threads 1 (seed 42's pair, then seed 43's).
# Usage (from the repository root): train.sh   (set D to the kaggle_3m folder, P to the
#   EfficientNet-Lite0 ImageNet file, T to the tumorscan binary).
# A run folder that holds a checkpoint is resumed (--resume), so rerunning continues a killed run.
exec "$(dirname "$0")/../train-two-seeds.sh" att --decoder-attention
