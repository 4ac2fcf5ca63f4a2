#!/usr/bin/env python3
"""PLAN.md addendum 2's rule over seeds 42 and 43, from the committed pooled files.

Usage (from the repository root): decide.py
Reads results/{fd,fd43,b43}-*-pooled.json and the seed-42 baseline ../effunet-192/results/192-val-pooled.json.
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from rules import checks, differences, figures as read_figures, row, table  # noqa: E402

E = "models/experiments/focal-dice-192/results"
BASE42 = "models/experiments/effunet-192/results/192-val-pooled.json"
FILES = {  # recipe -> seed -> (segmentation pooled file, detection pooled file: largest 3D)
    "baseline": {42: (BASE42, BASE42), 43: (f"{E}/b43-val-pooled.json", f"{E}/b43-largest-val-pooled.json")},
    "candidate": {42: (f"{E}/fd-val-pooled.json", f"{E}/fd-largest-val-pooled.json"),
                  43: (f"{E}/fd43-val-pooled.json", f"{E}/fd43-largest-val-pooled.json")},
}


def figures(seg_path, det_path):
    return read_figures(seg_path, det_path, (1, 3))


rows = {}
for recipe, seeds in FILES.items():
    for seed, paths in seeds.items():
        if all(os.path.exists(p) for p in paths):
            rows[(recipe, seed)] = figures(*paths)
keys = ["dice", "fold1", "fold3", "accuracy", "auc"]
table("recipe | seed", [(f"{recipe} | {seed}", f) for (recipe, seed), f in sorted(rows.items())], keys)
if len(rows) < 4:
    raise SystemExit(f"only {len(rows)} of 4 evaluations present: no decision")
mean = {r: {k: (rows[(r, 42)][k] + rows[(r, 43)][k]) / 2 for k in keys} for r in FILES}
for r in FILES:
    print(row(f"{r} | mean", mean[r], keys))
d = {k: mean["candidate"][k] - mean["baseline"][k] for k in keys}
adopt = checks(d, (1, 3), min_gain=0.005)
differences("candidate - baseline, two-seed means", d, keys)
s43 = {k: rows[("candidate", 43)][k] - rows[("baseline", 43)][k] for k in keys}
print("seed 43 alone: " + ", ".join(f"{k} {s43[k]:+.4f}" for k in keys))
print("DECISION:", "adopt for the next refit" if adopt else "not adopted")
