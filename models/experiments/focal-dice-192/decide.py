#!/usr/bin/env python3
"""PLAN.md addendum 2's rule over seeds 42 and 43, from the committed pooled files.

Usage (from the repository root): decide.py
Reads results/{fd,fd43,b43}-*-pooled.json and the seed-42 baseline ../effunet-192/results/192-val-pooled.json.
"""
import json
import os

E = "models/experiments/focal-dice-192/results"
BASE42 = "models/experiments/effunet-192/results/192-val-pooled.json"
FILES = {  # recipe -> seed -> (segmentation pooled file, detection pooled file: largest 3D)
    "baseline": {42: (BASE42, BASE42), 43: (f"{E}/b43-val-pooled.json", f"{E}/b43-largest-val-pooled.json")},
    "candidate": {42: (f"{E}/fd-val-pooled.json", f"{E}/fd-largest-val-pooled.json"),
                  43: (f"{E}/fd43-val-pooled.json", f"{E}/fd43-largest-val-pooled.json")},
}


def figures(seg_path, det_path):
    seg = json.load(open(seg_path))["segmentation"]
    det = json.load(open(det_path))["detection"]
    folds = {f["fold"]: f["value"] for f in seg["folds"]}
    return {"dice": seg["patient_dice_mean"]["value"], "fold1": folds[1], "fold3": folds[3],
            "accuracy": det["accuracy"], "auc": det["mean_fold_roc_auc"]}


rows = {}
for recipe, seeds in FILES.items():
    for seed, paths in seeds.items():
        if all(os.path.exists(p) for p in paths):
            rows[(recipe, seed)] = figures(*paths)
keys = ["dice", "fold1", "fold3", "accuracy", "auc"]
print("| recipe | seed | " + " | ".join(keys) + " |")
print("| --- | --- |" + " --- |" * len(keys))
for (recipe, seed), f in sorted(rows.items()):
    print(f"| {recipe} | {seed} | " + " | ".join(f"{f[k]:.4f}" for k in keys) + " |")
if len(rows) < 4:
    raise SystemExit(f"only {len(rows)} of 4 evaluations present: no decision")
mean = {r: {k: (rows[(r, 42)][k] + rows[(r, 43)][k]) / 2 for k in keys} for r in FILES}
for r in FILES:
    print(f"| {r} | mean | " + " | ".join(f"{mean[r][k]:.4f}" for k in keys) + " |")
d = {k: mean["candidate"][k] - mean["baseline"][k] for k in keys}
checks = {
    "pooled Dice >= +0.005": d["dice"] >= 0.005,
    "fold 1 not lower by > 0.015": d["fold1"] >= -0.015,
    "fold 3 not lower by > 0.015": d["fold3"] >= -0.015,
    "detection accuracy not lower by > 0.005": d["accuracy"] >= -0.005,
    "mean ROC-AUC not lower by > 0.005": d["auc"] >= -0.005,
}
print()
for name, ok in checks.items():
    print(f"- {name}: {'holds' if ok else 'FAILS'}")
print("differences (candidate - baseline, two-seed means): " + ", ".join(f"{k} {d[k]:+.4f}" for k in keys))
s43 = {k: rows[("candidate", 43)][k] - rows[("baseline", 43)][k] for k in keys}
print("seed 43 alone: " + ", ".join(f"{k} {s43[k]:+.4f}" for k in keys))
print("DECISION:", "adopt for the next refit" if all(checks.values()) else "not adopted")
