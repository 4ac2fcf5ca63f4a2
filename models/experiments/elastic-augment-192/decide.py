#!/usr/bin/env python3
"""PLAN.md's rule: the seed-42 networks trained with --aug-elastic 8 against v0.9's seed-42
networks on validation folds 1 + 3, from the committed pooled files (results/el-val-pooled.json,
results/el-largest-val-pooled.json).

Usage (from the repository root): decide.py
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from rules import against_v09  # noqa: E402

against_v09("elastic-augment-192", "el", "v0.9's", "elastic deformation", detection_route=True)
