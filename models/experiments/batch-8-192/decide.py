#!/usr/bin/env python3
"""PLAN.md's rule for the seed-42 networks, and addendum 1's seed-43 table, from the committed pooled files.

Usage (from the repository root): decide.py
Reads results/b8-val-pooled.json (segmentation, v0.8.1's clean-up), results/b8-largest-val-pooled.json
(detection, largest-3D clean-up) and the baseline's ../focal-dice-192/results/fd-*-pooled.json; for seed 43
results/b8s43-* against ../focal-dice-192/results/fd43-*.
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from rules import against_v09  # noqa: E402

against_v09("batch-8-192", "b8", "v0.9's (batch 16)", "batch 8")
# Addendum 1 (a measurement, not a decision): seed 43 against v0.9's seed-43 networks.
print("\n## Addendum 1: seed 43 (measurement only)\n")
against_v09("batch-8-192", "b8s43", "v0.9's (batch 16)", "batch 8", seed=43)
