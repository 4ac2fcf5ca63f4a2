#!/usr/bin/env python3
"""PLAN.md's rule on the committed evaluations (results/lov-*, results/lov43-*): v0.10's recipe
with --loss bce-lovasz against the same commands without it on the same machine type
(../rerun-noise-bce-dice-192/results/rn-*, rn43-*), validation folds 1 + 3, seeds 42 and 43:
two-seed mean pooled Dice +0.010, each seed +0.005, the guards on the two-seed means.
Without all four evaluations: the table, no decision.

Usage (from the repository root): decide.py
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from rules import two_seed_against_zen4_reruns  # noqa: E402

two_seed_against_zen4_reruns("lovasz-192", ("lov", "lov43"), "--loss bce-lovasz")
