#!/usr/bin/env python3
"""PLAN.md addendum 3's rule (validation folds 2 and 4, seed 42), from the committed files.

Usage (from the repository root): decide_folds24.py
Candidate: results/fd-val-pooled-folds2+4.json (v0.8.1's clean-up) and
results/fd-largest-val-pooled-folds2+4.json (detection, largest-3D clean-up). Baseline: the
"3D components >= 30% of the largest" variant of ../effunet-192/results/192-val-fold2|4-segmentation.json
and the detection of 192-val-fold2|4-detection.json (largest-3D clean-up), pooled here as
`tumorscan evaluate pool` pools them (patients weighted equally, summed slice counts).
"""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from rules import checks, differences, figures, row  # noqa: E402

E = "models/experiments/focal-dice-192/results"
B = "models/experiments/effunet-192/results"
FRAC30 = "3D components >= 30% of the largest"


def load(path):
    return json.load(open(path))


def baseline():
    dice, folds, conf, aucs = [], {}, [0, 0, 0, 0], []
    for f in (2, 4):
        seg = load(f"{B}/192-val-fold{f}-segmentation.json")
        v = next(x for x in seg["postprocessing"] if x["variant"] == FRAC30)
        n = len(seg["report"]["per_patient"])
        folds[f] = v["patient_dice_mean"]["value"]
        dice += [folds[f]] * n  # a fold's mean weighted by its patients
        det = load(f"{B}/192-val-fold{f}-detection.json")
        c = next(x for x in det["candidates"] if x["name"] == det["best_on_validation"])["report"]
        k = c["confusion"]
        conf = [conf[0] + k["tp"], conf[1] + k["fp"], conf[2] + k["tn"], conf[3] + k["fn_"]]
        aucs.append(c["roc_auc"]["value"])
    return {"dice": sum(dice) / len(dice), "fold2": folds[2], "fold4": folds[4],
            "accuracy": (conf[0] + conf[2]) / sum(conf), "auc": sum(aucs) / len(aucs)}


def candidate():
    return figures(f"{E}/fd-val-pooled-folds2+4.json", f"{E}/fd-largest-val-pooled-folds2+4.json", (2, 4))


base, cand = baseline(), candidate()
keys = list(base)
print("| folds 2 + 4, seed 42 | " + " | ".join(keys) + " |")
print("| --- |" + " --- |" * len(keys))
for name, f in [("baseline (v0.8.1's recipe)", base), ("alpha = beta = 0.5", cand)]:
    print(row(name, f, keys))
d = {k: cand[k] - base[k] for k in keys}
adopt = checks(d, (2, 4), min_gain=0.005)
differences("candidate - baseline", d, keys)
print("DECISION:", "adopt for the next refit" if adopt else "not adopted")
