#!/usr/bin/env python3
"""PLAN.md's rule for the seed-42 networks, and addendum 1's seed-43 table, from the committed pooled files.

Usage (from the repository root): decide.py
Reads results/b8-val-pooled.json (segmentation, v0.8.1's clean-up), results/b8-largest-val-pooled.json
(detection, largest-3D clean-up) and the baseline's ../focal-dice-192/results/fd-*-pooled.json; for seed 43
results/b8s43-* against ../focal-dice-192/results/fd43-*.
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from rules import against_v09_seed42, checks, differences, figures, table  # noqa: E402

against_v09_seed42("batch-8-192", "b8", "v0.9's (batch 16)", "batch 8")

# Addendum 1 (a measurement, not a decision): seed 43 against v0.9's seed-43 networks.
print("\n## Addendum 1: seed 43 (measurement only)\n")
E = os.path.join(os.path.dirname(__file__), "results")
B = os.path.join(os.path.dirname(__file__), "..", "focal-dice-192", "results")
base = figures(f"{B}/fd43-val-pooled.json", f"{B}/fd43-largest-val-pooled.json", (1, 3))
cand = figures(f"{E}/b8s43-val-pooled.json", f"{E}/b8s43-largest-val-pooled.json", (1, 3))
table("recipe (seed 43)", [("v0.9's (batch 16)", base), ("batch 8", cand)], list(base))
d = {k: cand[k] - base[k] for k in base}
checks(d, (1, 3))
differences("candidate - baseline", d, list(base))
