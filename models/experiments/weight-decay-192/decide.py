#!/usr/bin/env python3
"""PLAN.md's rule: the seed-42 networks trained with --weight-decay 0.1 (AdamW) against v0.9's
seed-42 networks (Adam) on validation folds 1 + 3, from the committed pooled files
(results/wd-val-pooled.json, results/wd-largest-val-pooled.json).

Usage (from the repository root): decide.py
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from rules import against_v09  # noqa: E402

against_v09("weight-decay-192", "wd", "v0.9's (Adam)", "AdamW, weight decay 0.1",
            detection_route=True)
