#!/usr/bin/env python3
"""PLAN.md's rule: the seed-42 networks trained with --loss bce-dice --context-slices 1
(results/ctxbd-*) against BCE + Dice's seed-42 networks (../bce-dice-192/results/bd-*) on
validation folds 1 + 3, from the committed pooled files (results/ctxbd-val-pooled.json,
results/ctxbd-largest-val-pooled.json).

Usage (from the repository root): decide.py
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from rules import against  # noqa: E402

against("context-bce-dice-192", "ctxbd", "models/experiments/bce-dice-192/results/bd",
        "BCE + Dice's", "BCE + Dice + 2.5D input", detection_route=True)
