#!/usr/bin/env python3
"""PLAN.md's rule: the mixed pair M against v0.9's pairs A on validation folds 2 + 4, from the
committed pooled files.

Usage (from the repository root): decide.py
Reads results/M-val-pooled.json and results/A-val-pooled.json (`evaluate pool` of both
`evaluate segment` and `evaluate detect`, largest 3D component).
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from rules import checks, differences, pooled_pair  # noqa: E402

R = "models/experiments/mixed-batch-pair/results"
FOLDS = (2, 4)
d, keys = pooled_pair(
    "validation folds 2 + 4 (32 patients)", FOLDS,
    "A: v0.9's recipe, batch 16 seeds 42 + 43", f"{R}/A-val-pooled.json",
    "M: batch 16 seed 42 + batch 8 seed 43", f"{R}/M-val-pooled.json",
)
ok = checks(d, FOLDS, min_gain=0.005)
differences("M - A", d, keys)
print("DECISION: " + ("adopted for the next refit (segment-s43/ at batch 8)" if ok else "not adopted (v0.9.1 stays)"))
