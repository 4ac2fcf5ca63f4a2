#!/usr/bin/env python3
"""PLAN.md's report: the reruns of v0.10's validation networks (results/rn-* at seed 42,
results/rn43-* at seed 43, addendum 1) against the committed runs of the same commands
(../bce-dice-192/results/bd-*, bd43-*) on validation folds 1 + 3, from the pooled files: the
table, the project's guards and the differences; then (addendum 2) the three seeds 42, 43, 44
on the Zen 4 (results/rn44-*) and their spread. A measurement: no decision.

Usage (from the repository root): measure.py
"""
import os
import sys
from statistics import stdev

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from rules import against, table, val_figures  # noqa: E402

against("rerun-noise-bce-dice-192", "rn", "models/experiments/bce-dice-192/results/bd",
        "committed runs (Zen 1)", "reruns (Zen 4)", decide=False)
print()
against("rerun-noise-bce-dice-192", "rn43", "models/experiments/bce-dice-192/results/bd43",
        "committed runs (Zen 1)", "reruns (Zen 4, session 46)", seed=43, decide=False)

# Addendum 2: the three seeds on the Zen 4 (rn, rn43, rn44), and their spread.
R = "models/experiments/rerun-noise-bce-dice-192/results"
seeds = {seed: val_figures(f"{R}/{p}") for seed, p in ((42, "rn"), (43, "rn43"), (44, "rn44"))
         if os.path.exists(f"{R}/{p}-val-pooled.json")}
print()
keys = ["dice", "fold1", "fold3", "accuracy", "auc"]
table("v0.10's recipe on the Zen 4, seed", [(str(s), f) for s, f in seeds.items()], keys)
if len(seeds) == 3:
    print("\nspread over the three seeds: " + ", ".join(
        f"{k} range {max(f[k] for f in seeds.values()) - min(f[k] for f in seeds.values()):.4f}"
        f" sd {stdev(f[k] for f in seeds.values()):.4f}" for k in keys))
