#!/usr/bin/env python3
"""PLAN.md's rule: the seed-42 networks trained with --weight-decay W (AdamW) against v0.9's
seed-42 networks (Adam) on validation folds 1 + 3, from the committed pooled files
(results/PREFIX-val-pooled.json, results/PREFIX-largest-val-pooled.json).

Usage (from the repository root): decide.py [wd|wd5]
  wd  (default): W = 0.1 (results/decision.txt)
  wd5:           W = 0.5, addendum 1 (results/decision-0.5.txt)
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from rules import against_v09  # noqa: E402

DOSES = {"wd": "0.1", "wd5": "0.5"}
prefix = sys.argv[1] if len(sys.argv) > 1 else "wd"
if prefix not in DOSES:
    sys.exit(f"unknown run prefix {prefix!r}: expected one of {', '.join(DOSES)}")
against_v09("weight-decay-192", prefix, "v0.9's (Adam)", f"AdamW, weight decay {DOSES[prefix]}",
            detection_route=True)
