#!/usr/bin/env python3
"""PLAN.md's stage-1 rule for the seed-42 networks, from the committed pooled files.

Usage (from the repository root): decide.py
Reads results/tta-val-pooled.json (segmentation, v0.8.1's clean-up), results/tta-largest-val-pooled.json
(detection, largest-3D clean-up) and the baseline's ../focal-dice-192/results/fd-*-pooled.json.
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from rules import against_v09  # noqa: E402

against_v09("scale-tta", "tta", "v0.9's network at 192", "the same at 192 + 224")
