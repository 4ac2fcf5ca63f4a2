#!/usr/bin/env python3
"""PLAN.md addendum 3's rule (validation folds 2 and 4, seed 42), from the committed files.

Usage (from the repository root): decide_folds24.py
Candidate: results/fd-val-pooled-folds2+4.json (v0.8.1's clean-up) and
results/fd-largest-val-pooled-folds2+4.json (detection, largest-3D clean-up). Baseline: the
"3D components >= 30% of the largest" variant of ../effunet-192/results/192-val-fold2|4-segmentation.json
per fold, and pooled: results/base192-val-pooled-folds2+4.json (`tumorscan evaluate pool` of
../effunet-192/results/192-val-fold2|4-segmentation.json and -detection.json; its detection is
the largest-3D clean-up's, as those files were evaluated).
"""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from rules import checks, differences, figures, table  # noqa: E402

E = "models/experiments/focal-dice-192/results"
B = "models/experiments/effunet-192/results"
FRAC30 = "3D components >= 30% of the largest"


def load(path):
    return json.load(open(path))


def baseline():
    pooled = load(f"{E}/base192-val-pooled-folds2+4.json")
    out = {"dice": dict(pooled["segmentation"]["variants"])[FRAC30]}
    for f in (2, 4):
        seg = load(f"{B}/192-val-fold{f}-segmentation.json")
        out[f"fold{f}"] = next(x for x in seg["postprocessing"] if x["variant"] == FRAC30)["patient_dice_mean"]["value"]
    det = pooled["detection"]
    return {**out, "accuracy": det["accuracy"], "auc": det["mean_fold_roc_auc"]}


def candidate():
    return figures(f"{E}/fd-val-pooled-folds2+4.json", f"{E}/fd-largest-val-pooled-folds2+4.json", (2, 4))


base, cand = baseline(), candidate()
keys = list(base)
table("folds 2 + 4, seed 42", [("baseline (v0.8.1's recipe)", base), ("alpha = beta = 0.5", cand)], keys)
d = {k: cand[k] - base[k] for k in keys}
adopt = checks(d, (2, 4), min_gain=0.005)
differences("candidate - baseline", d, keys)
print("DECISION:", "adopt for the next refit" if adopt else "not adopted")
