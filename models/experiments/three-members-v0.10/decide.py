#!/usr/bin/env python3
"""PLAN.md's rule on the pooled validation evaluations (folds 1 + 3): the three members
rn + rn43 + rn44 against the shipped pairing rn + rn43 (from ../native-crop-256/results) and
against the mean of the three pairs. Adopt only with pooled Dice +0.005 over both and the
guards against rn + rn43.

Usage (from the repository root): decide.py [OUT]   (OUT: evaluate.sh's output; default: results/)
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from rules import checks, differences, pooled_figures, row, table  # noqa: E402

HERE = "models/experiments/three-members-v0.10"
OUT = sys.argv[1] if len(sys.argv) > 1 else f"{HERE}/results"


def pooled(tag):
    """`figures` of a bundle's pooled file, from OUT, results/ or ../native-crop-256/results."""
    return pooled_figures(tag, OUT, "models/experiments/native-crop-256/results")


keys = ["dice", "fold1", "fold3", "accuracy", "auc"]
pairs = {t: pooled(t) for t in ("rn-rn43", "rn-rn44", "rn43-rn44")}
three = pooled("rn-rn43-rn44")
mean = {k: sum(p[k] for p in pairs.values()) / 3 for k in keys}
table("bundle", [(t, f) for t, f in pairs.items()] + [("rn + rn43 + rn44", three)], keys)
print(row("mean of the three pairs", mean, keys))
d = {k: three[k] - pairs["rn-rn43"][k] for k in keys}
guards = checks(d, (1, 3), min_gain=0.005)
differences("three members - rn + rn43", d, keys)
gain_over_mean = three["dice"] - mean["dice"]
print(f"- pooled Dice >= +0.005 over the mean of the three pairs ({gain_over_mean:+.4f}): "
      f"{'holds' if gain_over_mean >= 0.005 else 'FAILS'}")
print("DECISION:", "adopt (train a seed-44 refit member)" if guards and gain_over_mean >= 0.005 else "not adopted")
