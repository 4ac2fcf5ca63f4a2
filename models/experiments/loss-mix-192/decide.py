#!/usr/bin/env python3
"""PLAN.md's rule, from the committed files.

Usage (from the repository root): decide.py
Reads results/A|B|C-val-pooled.json (`tumorscan evaluate pool` of each candidate's validation
folds 1 and 3, v0.9's bundle settings for segmentation and detection alike).
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from rules import checks, differences, figures, table  # noqa: E402

E = "models/experiments/loss-mix-192/results"
FOLDS = (1, 3)
NAMES = {
    "A": "A: alpha = beta = 0.5, seeds 42 + 43 (v0.9's recipe)",
    "B": "B: alpha = beta = 0.5 seed 42 + alpha 0.3 / beta 0.7 seed 43",
    "C": "C: A's two + alpha 0.3 / beta 0.7 seed 43",
}
f = {c: figures(f"{E}/{c}-val-pooled.json", f"{E}/{c}-val-pooled.json", FOLDS) for c in NAMES}
keys = list(f["A"])
table("validation folds 1 + 3 (32 patients)", [(NAMES[c], f[c]) for c in NAMES], keys)


def diff(a, b):
    return {k: f[a][k] - f[b][k] for k in keys}


print("\nB against A:")
b_ok = checks(diff("B", "A"), FOLDS, min_gain=0.005)
differences("B - A", diff("B", "A"), keys)
print("\nC against A:")
c_ok = checks(diff("C", "A"), FOLDS, min_gain=0.010)
differences("C - A", diff("C", "A"), keys)
c_over_b = diff("C", "B")["dice"] >= 0.005
print(f"- C's pooled Dice >= B's + 0.005: {'holds' if c_over_b else 'FAILS'} ({diff('C', 'B')['dice']:+.4f})")
c_ok = c_ok and c_over_b
if c_ok:
    decision = "C replaces A"
elif b_ok:
    decision = "B replaces A"
else:
    decision = "nothing changes (v0.9 stays)"
print("\nDECISION:", decision)
