#!/usr/bin/env python3
"""PLAN.md's rule on the committed evaluations (results/os-*): --oversample-small 1000 in
v0.10's recipe against the reruns of v0.10's recipe on the same machine type
(../rerun-noise-bce-dice-192/results/rn-*), validation folds 1 + 3, seed 42, with the guards and
the detection route of rules.py. A one-seed gain asks for a seed-43 replication (nothing is
adopted on one seed). Also: the shipped rule's missed tumour slices by true size.

Usage (from the repository root): decide.py
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from rules import compared, misclassified, replication_decision, val_figures  # noqa: E402

E = "models/experiments"
BASE, CAND = f"{E}/rerun-noise-bce-dice-192/results/rn", f"{E}/small-tumour-oversample-192/results/os"
d, guards = compared("recipe (seed 42)", "v0.10's recipe (reruns, same machine type)", val_figures(BASE),
                     "+ --oversample-small 1000", val_figures(CAND))
replication_decision(d, guards)

print("\n| shipped detection rule, folds 1 + 3 | missed, under 1,000 true pixels | missed, 1,000 or more | false-positive slices |")
print("| --- | --- | --- | --- |")
for name, prefix in (("v0.10's recipe (reruns)", BASE), ("+ --oversample-small 1000", CAND)):
    e = misclassified(prefix)
    missed = [m["truth_pixels"] for m in e if m["truth"]]
    print(f"| {name} | {sum(p < 1000 for p in missed)} | {sum(p >= 1000 for p in missed)} | {sum(not m['truth'] for m in e)} |")
