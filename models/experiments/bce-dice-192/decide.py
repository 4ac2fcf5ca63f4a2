#!/usr/bin/env python3
"""PLAN.md's rule: the seed-42 networks trained with --loss bce-dice against v0.9's seed-42
networks on validation folds 1 + 3, from the committed pooled files (results/bd-val-pooled.json,
results/bd-largest-val-pooled.json).

Usage (from the repository root): decide.py
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from rules import against_v09, two_seed_against_v09  # noqa: E402

against_v09("bce-dice-192", "bd", "v0.9's", "BCE + Dice", detection_route=True)
# Addendum 1: the two-seed rule, once the seed-43 networks (results/bd43-*) are evaluated.
print("\n## Addendum 1: seeds 42 and 43\n")
two_seed_against_v09("bce-dice-192", ("bd", "bd43"), "v0.9's", "BCE + Dice")
