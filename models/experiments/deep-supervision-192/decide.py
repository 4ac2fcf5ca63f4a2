#!/usr/bin/env python3
"""PLAN.md's rule for the seed-42 networks, from the committed pooled files.

Usage (from the repository root): decide.py
Reads results/ds-val-pooled.json (segmentation, v0.8.1's clean-up), results/ds-largest-val-pooled.json
(detection, largest-3D clean-up) and the baseline's ../focal-dice-192/results/fd-*-pooled.json.
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from rules import against_v09  # noqa: E402

against_v09("deep-supervision-192", "ds", "v0.9's", "deep supervision (2 levels)")
