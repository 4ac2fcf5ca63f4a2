#!/usr/bin/env python3
"""PLAN.md's rule: the pairs L (Lite0 seed 42 + Lite1 seed 43) and LL (Lite1 seeds 42 + 43)
against v0.9's pairs A on validation folds 2 + 4, from the committed pooled files; then, as a
measurement, the seed-42 Lite1 network alone beside v0.9's seed-42 Lite0 network.

Usage (from the repository root): decide.py
Reads results/{A,L,LL}-val-pooled.json (`evaluate pool` of both `evaluate segment` and `evaluate
detect`, largest 3D component) and the single networks' results/l1-s42-*-pooled.json and
../mixed-batch-pair/results/fd-*-pooled.json.
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from rules import checks, compared, differences, figures, pooled_pair  # noqa: E402

R = "models/experiments/lite1-pair-member/results"
FOLDS = (2, 4)
TITLE = "validation folds 2 + 4 (32 patients)"
A = ("A: v0.9's recipe, Lite0 seeds 42 + 43", f"{R}/A-val-pooled.json")
gains, passes = {}, {}
for tag, name, bar in (("L", "Lite0 seed 42 + Lite1 seed 43", 0.005), ("LL", "Lite1 seeds 42 + 43", 0.010)):
    d, keys = pooled_pair(TITLE, FOLDS, *A, f"{tag}: {name}", f"{R}/{tag}-val-pooled.json")
    passes[tag] = checks(d, FOLDS, min_gain=bar)
    differences(f"{tag} - A", d, keys)
    gains[tag] = d["dice"]
    print()
ll_above = gains["LL"] > gains["L"]
print(f"- LL's pooled Dice above L's: {'holds' if ll_above else 'FAILS'}")
if passes["LL"] and ll_above:
    print("DECISION: LL adopted for the next refit (both members on EfficientNet-Lite1)")
elif passes["L"]:
    print("DECISION: L adopted for the next refit (segment-s43/ on EfficientNet-Lite1)")
else:
    print("DECISION: not adopted (v0.9.1 stays; Lite1 closed for this recipe)")

print("\nMeasurement, not part of the rule: one network per split, seed 42")
F = "models/experiments/mixed-batch-pair/results/fd"
compared("one network, seed 42", "Lite0 (fd-*, v0.9's recipe)",
         figures(f"{F}-val-pooled.json", f"{F}-largest-val-pooled.json", FOLDS),
         "Lite1 (l1-*)", figures(f"{R}/l1-s42-val-pooled.json", f"{R}/l1-s42-largest-val-pooled.json", FOLDS),
         FOLDS)
