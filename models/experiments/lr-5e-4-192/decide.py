#!/usr/bin/env python3
"""PLAN.md's rule for the seed-42 networks, from the committed pooled files.

Usage (from the repository root): decide.py
Reads results/lr5-val-pooled.json (segmentation, v0.8.1's clean-up), results/lr5-largest-val-pooled.json
(detection, largest-3D clean-up) and the baseline's ../focal-dice-192/results/fd-*-pooled.json.
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from rules import figures, one_seed_decision  # noqa: E402

E = "models/experiments/lr-5e-4-192/results"
B = "models/experiments/focal-dice-192/results"

base = figures(f"{B}/fd-val-pooled.json", f"{B}/fd-largest-val-pooled.json", (1, 3))
cand = figures(f"{E}/lr5-val-pooled.json", f"{E}/lr5-largest-val-pooled.json", (1, 3))
one_seed_decision("v0.9's (lr 1e-3)", base, "lr 5e-4", cand)
