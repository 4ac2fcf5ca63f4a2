#!/usr/bin/env python3
"""PLAN.md's rules on the committed evaluations (results/):
1. the networks trained with --slice-head 0.5 against the reruns of the same commands without it
   on the same machine (../rerun-noise-bce-dice-192/results/rn-*), by rules.one_seed_decision with
   the detection route; the committed Zen 1 runs (../bce-dice-192/results/bd-*) beside them;
2. the head as a detection score on the same validation folds (candidates at their fixed
   threshold 0.5) against the same networks' shipped rule: pooled slice accuracy and mean fold
   ROC-AUC.

Usage (from the repository root): decide.py
"""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from rules import DETECTION_RULE as RULE, against, compared, val_figures  # noqa: E402

E = "models/experiments"
print("## Rule 1: outlines and the shipped detection rule (validation folds 1 + 3, seed 42)\n")
against("slice-head-192", "sh", f"{E}/rerun-noise-bce-dice-192/results/rn",
        "without the head (reruns, Zen 4)", "--slice-head 0.5", detection_route=True)
print("\nBeside the committed Zen 1 runs (a measurement):\n")
compared("recipe (seed 42)", "without the head (committed, Zen 1)", val_figures(f"{E}/bce-dice-192/results/bd"),
         "--slice-head 0.5", val_figures(f"{E}/slice-head-192/results/sh"))

print("\n## Rule 2: the head as a detection score (thresholds fixed at 0.5; the rule at its 8 px)\n")
HEAD = ["classifier", "classifier + segmentation (mean probability)",
        "classifier, no mask needed", "classifier + segmentation (mean probability), no mask needed"]
rows = {}
for fold in (1, 3):
    d = json.load(open(f"{E}/slice-head-192/results/sh-head-val-fold{fold}-detection.json"))
    for c in d["candidates"]:
        if c["name"] in [RULE] + HEAD:
            r = c["report"]
            cf = r["confusion"]
            rows.setdefault(c["name"], []).append(
                (cf["tp"] + cf["tn"], cf["tp"] + cf["tn"] + cf["fp"] + cf["fn_"], r["roc_auc"]["value"], cf["fn_"], cf["fp"]))


def pooled(name):
    """Pooled slice accuracy and mean fold ROC-AUC of a candidate over the two folds."""
    r = rows[name]
    return sum(x[0] for x in r) / sum(x[1] for x in r), sum(x[2] for x in r) / len(r)


figures = {name: pooled(name) for name in [RULE] + HEAD}
base = figures[RULE]
print("| candidate | pooled accuracy | mean fold ROC-AUC | missed tumour slices | false-positive slices |")
print("| --- | --- | --- | --- | --- |")
for name, (acc, auc) in figures.items():
    r = rows[name]
    print(f"| {name} | {acc:.4f} ({acc - base[0]:+.4f}) | {auc:.4f} ({auc - base[1]:+.4f}) | {sum(x[3] for x in r)} | {sum(x[4] for x in r)} |")
best = max(HEAD, key=lambda n: figures[n][0])
acc, auc = figures[best]
ok = acc - base[0] >= 0.005 and auc >= base[1]
print(f"\nbest head candidate: {best}: accuracy {acc - base[0]:+.4f}, ROC-AUC {auc - base[1]:+.4f}")
print("DECISION (rule 2):", "replicate with seed 43, then a plan to choose its threshold" if ok else "reported, not used")
