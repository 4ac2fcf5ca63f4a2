#!/usr/bin/env python3
"""PLAN.md's rule on the pooled validation evaluations (folds 1 + 3): slice smoothing at
w = 0.1 and 0.2 against w = 0 (v0.10's settings; ../native-crop-256/results/rn-rn43-val-pooled.json).
The better candidate by pooled Dice is adopted with +0.005 Dice, or +0.005 slice accuracy with
Dice not lower by more than 0.002, and the guards.

Usage (from the repository root): decide.py [OUT]   (OUT: evaluate.sh's output; default: results/)
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from rules import checks, differences, pooled_figures, table  # noqa: E402

HERE = "models/experiments/slice-smoothing"
OUT = sys.argv[1] if len(sys.argv) > 1 else f"{HERE}/results"
keys = ["dice", "fold1", "fold3", "accuracy", "auc"]
base = pooled_figures("rn-rn43", "models/experiments/native-crop-256/results")
cands = {w: pooled_figures(f"smooth-{w}", OUT) for w in ("0.1", "0.2")}
table("slice smoothing w", [("0 (v0.10)", base)] + [(w, f) for w, f in cands.items()], keys)
w = max(cands, key=lambda k: cands[k]["dice"])
print(f"\nbetter candidate by pooled Dice: w = {w}")
d = {k: cands[w][k] - base[k] for k in keys}
guards = checks(d, (1, 3))
differences(f"w = {w} - w = 0", d, keys)
by_dice = d["dice"] >= 0.005
by_accuracy = d["accuracy"] >= 0.005 and d["dice"] >= -0.002
print(f"- pooled Dice >= +0.005: {'holds' if by_dice else 'fails'}")
print(f"- or slice accuracy >= +0.005 with Dice not lower by > 0.002: {'holds' if by_accuracy else 'fails'}")
print("DECISION:", f"adopt w = {w} (v0.10.1)" if guards and (by_dice or by_accuracy) else "not adopted")
