#!/usr/bin/env python3
"""PLAN.md's rule on the committed evaluations (results/ftb*, lft*, dft*; validation folds 1 + 3,
seeds 42 and 43): the Lovasz fine-tunes are adopted only if they clear encoder-lr-192's two-seed
rule (two-seed mean pooled Dice +0.010, each seed +0.005, the guards) both against the BCE + Dice
fine-tunes (the loss's effect) and against the networks before fine-tuning (what would ship).
Reported besides, deciding nothing: the BCE + Dice fine-tunes against the networks before, and
those networks against the same commands' earlier run on a Zen 4 (rerun-noise-bce-dice-192).
Without all evaluations: the tables, no decision.

Usage (from the repository root): decide.py
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from rules import RERUNS, two_seed_against  # noqa: E402

E = "models/experiments/lovasz-finetune-192/results"
BASE = (f"{E}/ftb", f"{E}/ftb43")
LFT = (f"{E}/lft", f"{E}/lft43")
DFT = (f"{E}/dft", f"{E}/dft43")
NAMES = {
    BASE: "v0.10's recipe (this machine)",
    LFT: "+ 5 epochs BCE + Lovasz",
    DFT: "+ 5 epochs BCE + Dice",
}

print("## 1. Lovasz fine-tunes against BCE + Dice fine-tunes (the loss's effect)\n")
loss = two_seed_against(DFT, NAMES[DFT], LFT, NAMES[LFT])
print("\n## 2. Lovasz fine-tunes against the networks before fine-tuning (what would ship)\n")
ships = two_seed_against(BASE, NAMES[BASE], LFT, NAMES[LFT])
print("\n## 3. Reported: BCE + Dice fine-tunes against the networks before\n")
two_seed_against(BASE, NAMES[BASE], DFT, NAMES[DFT], verdict=False)
print("\n## 4. Reported: the networks before against the same commands on a Zen 4\n")
two_seed_against((f"{RERUNS}/rn", f"{RERUNS}/rn43"), "v0.10's recipe (Zen 4 reruns)", BASE, NAMES[BASE], verdict=False)

if loss is None or ships is None:
    print("\nOVERALL: evaluations missing, no decision")
else:
    print("\nOVERALL DECISION:", "adopt the Lovasz fine-tune for the next refit" if loss and ships else "not adopted")
