#!/usr/bin/env python3
"""PLAN.md's non-inferiority rule for the seed-42 networks, from the committed pooled files.

Usage (from the repository root): decide.py
Reads results/e12ema-val-pooled.json (segmentation, v0.8.1's clean-up),
results/e12ema-largest-val-pooled.json (detection, largest-3D clean-up) and the baseline's
../focal-dice-192/results/fd-*-pooled.json. A cheaper recipe is adopted (pending a seed-43
replication) if pooled Dice is not lower than the baseline's by more than 0.005 and the guards hold.
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from rules import checks, differences, figures, table  # noqa: E402

B = "models/experiments/focal-dice-192/results"
E = "models/experiments/ema-12-epochs-192/results"
FOLDS = (1, 3)
base = figures(f"{B}/fd-val-pooled.json", f"{B}/fd-largest-val-pooled.json", FOLDS)
cand = figures(f"{E}/e12ema-val-pooled.json", f"{E}/e12ema-largest-val-pooled.json", FOLDS)
keys = list(base)
table("recipe (seed 42)", [("v0.9's (20 epochs)", base), ("12 epochs + EMA 0.997", cand)], keys)
d = {k: cand[k] - base[k] for k in keys}
non_inferior = d["dice"] >= -0.005
print(f"\n- pooled Dice not lower by > 0.005: {'holds' if non_inferior else 'FAILS'}", end="")
guards = checks(d, FOLDS)
differences("candidate - baseline", d, keys)
if non_inferior and guards:
    print("DECISION: adopted pending a seed-43 replication against fd43-*")
else:
    print("DECISION: not adopted")
