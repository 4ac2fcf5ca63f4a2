#!/usr/bin/env python3
"""PLAN.md's rule for the seed-42 networks, from the committed pooled files.

Usage (from the repository root): decide.py
Reads results/sa-val-pooled.json (segmentation, v0.8.1's clean-up), results/sa-largest-val-pooled.json
(detection, largest-3D clean-up) and the baseline's ../effunet-192/results/192-val-pooled.json.
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from rules import figures, one_seed_decision  # noqa: E402

E = "models/experiments/strong-augment-192/results"
BASE = "models/experiments/effunet-192/results/192-val-pooled.json"

base = figures(BASE, BASE, (1, 3))
cand = figures(f"{E}/sa-val-pooled.json", f"{E}/sa-largest-val-pooled.json", (1, 3))
one_seed_decision("baseline", base, "strong augmentation", cand)
