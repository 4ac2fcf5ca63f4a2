#!/usr/bin/env python3
"""PLAN.md's rule: the seed-42 networks with --decoder-widths 256,128,64,32,16 against v0.9's
seed-42 networks on validation folds 1 + 3, from the committed pooled files
(results/dw-val-pooled.json, results/dw-largest-val-pooled.json).

Usage (from the repository root): decide.py
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from rules import against_v09  # noqa: E402

against_v09("decoder-width-192", "dw", "v0.9's (decoder 96,48,32,16,16)", "decoder 256,128,64,32,16")
