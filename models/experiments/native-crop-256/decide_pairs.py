#!/usr/bin/env python3
"""PLAN.md addendum 1's rule on the committed pair evaluations (results/PAIR-val-pooled.json):
the two mixed pairs (a 192 network and a crop-trained one, both assignments of the sizes to
seeds 42 and 43) against v0.10's pair on this machine type (rn + rn43, both 192), validation
folds 1 + 3. It is `two_seed_rule` with the baseline pair in both baseline rows and the mixed
pair whose crop-trained member has seed S in the candidate row of seed S: mean of the mixed
pairs +0.010, each +0.005, the guards on the means. The all-crop pair is reported.
Without the three pairs: the table, no decision.

Usage (from the repository root): decide_pairs.py
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from rules import figures, table, two_seed_rule  # noqa: E402

R = "models/experiments/native-crop-256/results"
PAIRS = {
    ("baseline", 42): "rn-rn43",
    ("baseline", 43): "rn-rn43",
    ("candidate", 42): "nc-rn43",
    ("candidate", 43): "rn-nc43",
}


def pair_figures(tag):
    """`figures` of a pair's pooled file (it holds both segmentation and detection)."""
    path = f"{R}/{tag}-val-pooled.json"
    return figures(path, path, (1, 3))


rows = {k: pair_figures(t) for k, t in PAIRS.items() if os.path.exists(f"{R}/{t}-val-pooled.json")}
names = {
    "baseline": "pair rn + rn43 (192 + 192)",
    "candidate": "mixed pair, its crop-trained member of seed",
}
if two_seed_rule(rows, names, min_gain=0.010, each_seed=0.005) is None:
    print(f"\nonly {len(set(PAIRS[k] for k in rows))} of 3 pairs present: no decision")
if os.path.exists(f"{R}/nc-nc43-val-pooled.json"):
    print("\nreported, not a candidate:")
    table("pair", [("nc + nc43 (both crop-trained)", pair_figures("nc-nc43"))], ["dice", "fold1", "fold3", "accuracy", "auc"])
