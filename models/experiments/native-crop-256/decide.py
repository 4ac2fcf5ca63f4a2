#!/usr/bin/env python3
"""PLAN.md's rule on the committed evaluations (results/nc-*, results/nc43-*): v0.10's recipe
trained on random 192x192 windows of the 256x256 slices and run on whole 256x256 slices
(--size 256 --crop 192) against the same commands at --size 192 on the same machine type
(../rerun-noise-bce-dice-192/results/rn-*, rn43-*), validation folds 1 + 3, seeds 42 and 43:
two-seed mean pooled Dice +0.010, each seed +0.005, the guards on the two-seed means.
Without all four evaluations: the table, no decision.

Usage (from the repository root): decide.py
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from rules import two_seed_against_zen4_reruns  # noqa: E402

two_seed_against_zen4_reruns("native-crop-256", ("nc", "nc43"), "--size 256 --crop 192")
