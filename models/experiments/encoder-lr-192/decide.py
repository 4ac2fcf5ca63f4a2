#!/usr/bin/env python3
"""PLAN.md's rule on the committed evaluations (results/elr-*, results/elr43-*): v0.10's recipe
with --encoder-lr-factor 0.1 against the same commands without it on the same machine type
(../rerun-noise-bce-dice-192/results/rn-*, rn43-*), validation folds 1 + 3, seeds 42 and 43:
two-seed mean pooled Dice +0.010, each seed +0.005, the guards on the two-seed means.
Without all four evaluations: the table, no decision.

Usage (from the repository root): decide.py
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from rules import misclassified, two_seed_rule, val_figures, val_files  # noqa: E402

E = "models/experiments"
PATHS = {
    ("baseline", 42): f"{E}/rerun-noise-bce-dice-192/results/rn",
    ("baseline", 43): f"{E}/rerun-noise-bce-dice-192/results/rn43",
    ("candidate", 42): f"{E}/encoder-lr-192/results/elr",
    ("candidate", 43): f"{E}/encoder-lr-192/results/elr43",
}
rows = {k: val_figures(p) for k, p in PATHS.items() if all(os.path.exists(f) for f in val_files(p))}
names = {"baseline": "v0.10's recipe (reruns, same machine type)", "candidate": "+ --encoder-lr-factor 0.1"}
if two_seed_rule(rows, names, min_gain=0.010, each_seed=0.005) is None:
    print(f"\nonly {len(rows)} of 4 evaluations present: no decision")

print("\n| shipped detection rule, folds 1 + 3 | seed | missed tumour slices | false-positive slices |")
print("| --- | --- | --- | --- |")
for (recipe, seed), prefix in sorted(PATHS.items()):
    if (recipe, seed) in rows:
        e = misclassified(prefix)
        print(f"| {names[recipe]} | {seed} | {sum(m['truth'] for m in e)} | {sum(not m['truth'] for m in e)} |")
