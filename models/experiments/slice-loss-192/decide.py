#!/usr/bin/env python3
"""PLAN.md's rule: the per-slice-loss pair S against v0.9's pairs A on validation folds 1 + 3,
from the committed pooled files; then each single network against v0.9's of its seed.

Usage (from the repository root): decide.py
Reads results/S-val-pooled.json and results/A-val-pooled.json (`evaluate pool` of both
`evaluate segment` and `evaluate detect`, largest 3D component), results/ps*-val-pooled.json,
and addendum 1's results/pb-*-pooled.json (BCE + Dice per slice, seed 42: its own rule).
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from rules import against_v09, checks, differences, finds_more, pooled_pair  # noqa: E402

R = "models/experiments/slice-loss-192/results"
FOLDS = (1, 3)
d, keys = pooled_pair(
    "validation folds 1 + 3 (32 patients)", FOLDS,
    "A: v0.9's recipe (batch loss), seeds 42 + 43", f"{R}/A-val-pooled.json",
    "S: loss per slice, seeds 42 + 43", f"{R}/S-val-pooled.json",
)
guards = checks(d, FOLDS)
dice = d["dice"] >= 0.005
detection = finds_more(d)
print(f"- 1. pooled Dice >= +0.005: {'holds' if dice else 'fails'}")
print(f"- 2. accuracy >= +0.005, ROC-AUC not lower, Dice not lower by > 0.005: {'holds' if detection else 'fails'}")
differences("S - A", d, keys)
ok = guards and (dice or detection)
print("DECISION: " + ("adopted for the next refit (--loss-reduction slice)" if ok else "not adopted (v0.9.1 stays)"))
for seed, prefix in ((42, "ps"), (43, "ps43")):
    print(f"\n## Single networks, seed {seed} (measurement, not the rule)\n")
    against_v09("slice-loss-192", prefix, "v0.9's (batch loss)", "loss per slice", seed=seed, decide=False)
# Addendum 1's rule: BCE + per-slice Dice (results/pb-*), seed 42, against v0.9's seed-42 networks.
if os.path.exists(f"{R}/pb-val-pooled.json"):
    print("\n## Addendum 1: BCE + Dice per slice, seed 42 (the addendum's rule)\n")
    against_v09("slice-loss-192", "pb", "v0.9's (focal Tversky, batch)", "BCE + Dice per slice")
