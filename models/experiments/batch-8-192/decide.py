#!/usr/bin/env python3
"""PLAN.md's rule for the seed-42 networks, from the committed pooled files.

Usage (from the repository root): decide.py
Reads results/b8-val-pooled.json (segmentation, v0.8.1's clean-up), results/b8-largest-val-pooled.json
(detection, largest-3D clean-up) and the baseline's ../focal-dice-192/results/fd-*-pooled.json.
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from rules import against_v09_seed42  # noqa: E402

against_v09_seed42("batch-8-192", "b8", "v0.9's (batch 16)", "batch 8")
