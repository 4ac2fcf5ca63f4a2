#!/usr/bin/env python3
"""PLAN.md's rule for the seed-42 networks, from the committed pooled files.

Usage (from the repository root): decide.py
Reads results/sa-val-pooled.json (segmentation, v0.8.1's clean-up), results/sa-largest-val-pooled.json
(detection, largest-3D clean-up) and the baseline's ../effunet-192/results/192-val-pooled.json.
"""
import json

E = "models/experiments/strong-augment-192/results"
BASE = "models/experiments/effunet-192/results/192-val-pooled.json"


def figures(seg_path, det_path):
    seg = json.load(open(seg_path))["segmentation"]
    det = json.load(open(det_path))["detection"]
    folds = {f["fold"]: f["value"] for f in seg["folds"]}
    return {"dice": seg["patient_dice_mean"]["value"], "fold1": folds[1], "fold3": folds[3],
            "accuracy": det["accuracy"], "auc": det["mean_fold_roc_auc"]}


base = figures(BASE, BASE)
cand = figures(f"{E}/sa-val-pooled.json", f"{E}/sa-largest-val-pooled.json")
keys = list(base)
print("| recipe (seed 42) | " + " | ".join(keys) + " |")
print("| --- |" + " --- |" * len(keys))
for name, f in [("baseline", base), ("strong augmentation", cand)]:
    print(f"| {name} | " + " | ".join(f"{f[k]:.4f}" for k in keys) + " |")
d = {k: cand[k] - base[k] for k in keys}
guards = {
    "fold 1 not lower by > 0.015": d["fold1"] >= -0.015,
    "fold 3 not lower by > 0.015": d["fold3"] >= -0.015,
    "detection accuracy not lower by > 0.005": d["accuracy"] >= -0.005,
    "mean ROC-AUC not lower by > 0.005": d["auc"] >= -0.005,
}
print()
for name, ok in guards.items():
    print(f"- {name}: {'holds' if ok else 'FAILS'}")
print("differences (candidate - baseline): " + ", ".join(f"{k} {d[k]:+.4f}" for k in keys))
if not all(guards.values()) or d["dice"] < 0.005:
    print("DECISION: not adopted")
elif d["dice"] >= 0.010:
    print("DECISION: adopted (pooled Dice >= +0.010): refit")
else:
    print("DECISION: replicate with seed 43 (pooled Dice +0.005 to +0.010)")
