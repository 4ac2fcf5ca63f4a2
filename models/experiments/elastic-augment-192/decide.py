#!/usr/bin/env python3
"""PLAN.md's rule, as addendum 1 sets it now that BCE + Dice is adopted: the seed-42 networks
trained with --loss bce-dice --aug-elastic 8 (results/elbd-*) against BCE + Dice's seed-42
networks (../bce-dice-192/results/bd-*) on validation folds 1 + 3, from the committed pooled
files (results/elbd-val-pooled.json, results/elbd-largest-val-pooled.json).

Usage (from the repository root): decide.py
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from rules import against  # noqa: E402

against("elastic-augment-192", "elbd", "models/experiments/bce-dice-192/results/bd",
        "BCE + Dice's", "BCE + Dice + elastic deformation", detection_route=True)
