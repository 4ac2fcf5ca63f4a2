#!/usr/bin/env python3
"""PLAN.md's rule: stage 1 (seed 42) and, once present, stage 2 (the two-seed means), from the
committed pooled files.

Usage (from the repository root): decide.py
Reads results/l1{,43}-val-pooled.json (segmentation, v0.8.1's clean-up) and
results/l1{,43}-largest-val-pooled.json (detection, largest-3D clean-up); the baseline's are
../focal-dice-192/results/fd{,43}-*.
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from rules import checks, differences, figures, row, table  # noqa: E402

E = "models/experiments/effunet-lite1-192/results"
B = "models/experiments/focal-dice-192/results"
FILES = {  # encoder -> seed -> (segmentation pooled file, detection pooled file)
    "Lite0 (v0.9's recipe)": {42: (f"{B}/fd-val-pooled.json", f"{B}/fd-largest-val-pooled.json"),
                              43: (f"{B}/fd43-val-pooled.json", f"{B}/fd43-largest-val-pooled.json")},
    "Lite1": {42: (f"{E}/l1-val-pooled.json", f"{E}/l1-largest-val-pooled.json"),
              43: (f"{E}/l143-val-pooled.json", f"{E}/l143-largest-val-pooled.json")},
}
base, cand = FILES

rows = {(enc, seed): figures(*paths, (1, 3))
        for enc, seeds in FILES.items() for seed, paths in seeds.items()
        if all(os.path.exists(p) for p in paths)}
keys = ["dice", "fold1", "fold3", "accuracy", "auc"]
table("encoder | seed", [(f"{e} | {s}", f) for (e, s), f in sorted(rows.items())], keys)

print("\nStage 1 (seed 42):")
d42 = {k: rows[(cand, 42)][k] - rows[(base, 42)][k] for k in keys}
stage1 = checks(d42, (1, 3), min_gain=0.010)
differences("Lite1 - Lite0, seed 42", d42, keys)
if not stage1 or (cand, 43) not in rows:
    print("DECISION:", "stage 1 passes: replicate with seed 43" if stage1 else "not adopted (stage 1)")
    sys.exit(0)

print("\nStage 2 (two-seed means):")
mean = {e: {k: (rows[(e, 42)][k] + rows[(e, 43)][k]) / 2 for k in keys} for e in FILES}
for e in FILES:
    print(row(f"{e} | mean", mean[e], keys))
d = {k: mean[cand][k] - mean[base][k] for k in keys}
adopt = checks(d, (1, 3), min_gain=0.005)
differences("Lite1 - Lite0, two-seed means", d, keys)
print("DECISION:", "adopt for the next refit" if adopt else "not adopted")
