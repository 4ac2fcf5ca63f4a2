#!/usr/bin/env python3
"""PLAN.md addendum 2's rule over seeds 42 and 43, from the committed pooled files.

Usage (from the repository root): decide.py
Reads results/{fd,fd43,b43}-*-pooled.json and the seed-42 baseline ../effunet-192/results/192-val-pooled.json.
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from rules import figures as read_figures, two_seed_rule  # noqa: E402

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
if two_seed_rule(rows, {r: r for r in FILES}) is None:
    raise SystemExit(f"only {len(rows)} of 4 evaluations present: no decision")
