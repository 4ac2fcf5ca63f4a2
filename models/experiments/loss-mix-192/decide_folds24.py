#!/usr/bin/env python3
"""PLAN.md addendum 1's rule (validation folds 2 and 4), from the committed files.

Usage (from the repository root): decide_folds24.py
Reads results/folds2+4/A|B-val-pooled.json (`SPLITS="2 1 t1v2,4 3 t3v4" CANDIDATES="A B"
evaluate.sh`, v0.9's bundle settings).
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from rules import checks, differences, pooled_pair  # noqa: E402

E = "models/experiments/loss-mix-192/results/folds2+4"
FOLDS = (2, 4)
d, keys = pooled_pair(
    "validation folds 2 + 4 (32 patients)", FOLDS,
    "A: alpha = beta = 0.5, seeds 42 + 43 (v0.9's recipe)", f"{E}/A-val-pooled.json",
    "B: alpha = beta = 0.5 seed 42 + alpha 0.3 / beta 0.7 seed 43", f"{E}/B-val-pooled.json",
)
ok = checks(d, FOLDS)  # folds, detection accuracy and ROC-AUC not lower than allowed
gain = d["accuracy"] >= 0.005
dice = d["dice"] >= -0.005
print(f"- detection accuracy >= +0.005: {'holds' if gain else 'FAILS'}")
print(f"- pooled Dice not lower by > 0.005: {'holds' if dice else 'FAILS'}")
differences("B - A", d, keys)
print("DECISION:", "B replaces A (v0.9.1)" if ok and gain and dice else "nothing changes (v0.9 stays)")
