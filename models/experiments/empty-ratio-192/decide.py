#!/usr/bin/env python3
"""PLAN.md's rule: the seed-42 networks with --empty-per-tumor 1.0 --epochs 15 against v0.9's
seed-42 networks on validation folds 1 + 3, from the committed pooled files
(results/er-val-pooled.json, results/er-largest-val-pooled.json).

Usage (from the repository root): decide.py
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from rules import against_v09  # noqa: E402

against_v09("empty-ratio-192", "er", "v0.9's (0.5 per tumour slice, 20 epochs)",
            "1.0 per tumour slice, 15 epochs", detection_route=True)
