#!/usr/bin/env python3
"""PLAN.md's rule (with addendum 1), from the committed files.

Usage (from the repository root): decide.py
Reads results/stored-pooled.json (candidate A of ../loss-mix-192/ on validation folds 1-4,
pooled: see README.md) and results/largest-pooled.json (`evaluate.sh`).
"""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from rules import differences, pooled_pair  # noqa: E402

E = "models/experiments/detection-cleanup-192/results"
FOLDS = (1, 2, 3, 4)
d, keys = pooled_pair(
    "validation folds 1-4 (64 patients), v0.9's recipe", FOLDS,
    "stored: components >= 30 % of the largest", f"{E}/stored-pooled.json",
    "candidate: largest 3D component", f"{E}/largest-pooled.json",
)
flagged = json.load(open(f"{E}/largest-pooled.json"))["detection"]
c = {
    "detection accuracy >= +0.005": d["accuracy"] >= 0.005,
    "mean ROC-AUC not lower by > 0.005": d["auc"] >= -0.005,
    "pooled Dice not lower by > 0.005": d["dice"] >= -0.005,
    "every tumour patient flagged": flagged["tumor_patients_detected"] == flagged["tumor_patients"],
}
print()
for name, ok in c.items():
    print(f"- {name}: {'holds' if ok else 'FAILS'}")
differences("candidate - stored", d, keys)
print("DECISION:", "the largest 3D component replaces the 30 % rule" if all(c.values()) else "nothing changes")
