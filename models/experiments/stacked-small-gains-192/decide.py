#!/usr/bin/env python3
"""PLAN.md's rule on the committed evaluations (results/sg-*): weight decay 0.1 + stronger
augmentation in v0.10's recipe against the reruns of v0.10's recipe on the same machine
(../rerun-noise-bce-dice-192/results/rn-*), validation folds 1 + 3, seed 42, with the guards
and the detection route of rules.py. A one-seed gain of +0.005 or more asks for a seed-43
replication (PLAN.md: nothing is adopted on one seed).

Usage (from the repository root): decide.py
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from rules import compared, replication_decision, val_figures  # noqa: E402

E = "models/experiments"
d, guards = compared("recipe (seed 42)", "v0.10's recipe (reruns, same machine)",
                     val_figures(f"{E}/rerun-noise-bce-dice-192/results/rn"),
                     "+ weight decay 0.1, zoom 0.15, intensity 0.25", val_figures(f"{E}/stacked-small-gains-192/results/sg"))
replication_decision(d, guards)
