#!/usr/bin/env python3
"""PLAN.md's rule: the seed-42 networks with --empty-per-tumor 0.25 against v0.9's
seed-42 networks on validation folds 1 + 3, from the committed pooled files
(results/eq-val-pooled.json, results/eq-largest-val-pooled.json).

Usage (from the repository root): decide.py
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from rules import against_v09  # noqa: E402

against_v09("empty-ratio-quarter-192", "eq", "v0.9's (0.5 per tumour slice)",
            "0.25 per tumour slice", detection_route=True, time_route=True)
