#!/usr/bin/env python3
"""PLAN.md's report: the reruns of v0.10's validation networks (results/rn-* at seed 42,
results/rn43-* at seed 43, addendum 1) against the committed runs of the same commands
(../bce-dice-192/results/bd-*, bd43-*) on validation folds 1 + 3, from the pooled files: the
table, the project's guards and the differences. A measurement: no decision.

Usage (from the repository root): measure.py
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from rules import against  # noqa: E402

against("rerun-noise-bce-dice-192", "rn", "models/experiments/bce-dice-192/results/bd",
        "committed runs (Zen 1)", "reruns (Zen 4)", decide=False)
print()
against("rerun-noise-bce-dice-192", "rn43", "models/experiments/bce-dice-192/results/bd43",
        "committed runs (Zen 1)", "reruns (Zen 4, session 46)", seed=43, decide=False)
