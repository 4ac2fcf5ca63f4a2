#!/usr/bin/env python3
"""PLAN.md's rule, from the committed pooled files.

Usage (from the repository root): decide.py
Reads results/M-val-pooled.json (the 192 + 256 pair, validation folds 1 and 3, v0.9's bundle
settings for segmentation and detection alike) and the baseline, v0.9's pair:
../loss-mix-192/results/A-val-pooled.json.
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from rules import figures, one_seed_decision  # noqa: E402

E = "models/experiments"
FOLDS = (1, 3)
base = figures(f"{E}/loss-mix-192/results/A-val-pooled.json", f"{E}/loss-mix-192/results/A-val-pooled.json", FOLDS)
cand = figures(f"{E}/multiscale-pair/results/M-val-pooled.json", f"{E}/multiscale-pair/results/M-val-pooled.json", FOLDS)
one_seed_decision("v0.9's pair (192 seeds 42 + 43)", base, "192 seed 42 + 256 seed 42", cand, FOLDS)
