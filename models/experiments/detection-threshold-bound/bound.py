#!/usr/bin/env python3
"""How much could any threshold on v0.10's detection score gain? For each of validation folds
1-4 (the pairs of ../cv-v0.10/, v0.10's bundle settings: ../grow-v0.10/results/val-grow0-t*-
detection.json), the slice accuracy at every point of the committed ROC curve of the shipped
score (cleaned mask >= 8 px, ranked with slice context), and its best: a per-fold oracle, an
upper bound on any one threshold chosen across folds. Also lists the misclassified slices'
scores (0.5 and up: an outline; [0.25, 0.5): none, but a neighbour has one).

Usage (from the repository root): bound.py
"""
import json

FILES = "models/experiments/grow-v0.10/results/val-grow0-t{}-detection.json"
RULE = "segmentation: cleaned-mask tumour pixels, ranked with slice context"
total = now = best = 0
notes = []
print("| validation fold | slices | accuracy (shipped, score >= 0.5) | best on its ROC curve | wrong slices, shipped / best |")
print("| --- | --- | --- | --- | --- |")
for t in range(4):
    d = json.load(open(FILES.format(t)))
    r = next(c["report"] for c in d["candidates"] if c["name"] == RULE)
    cf = r["confusion"]
    pos, neg = cf["tp"] + cf["fn_"], cf["tn"] + cf["fp"]
    n = pos + neg
    top = max((tpr * pos + (1 - fpr) * neg) / n for fpr, tpr in r["roc"])
    acc = r["accuracy"]["value"]
    print(f"| {d['fold']} | {n} | {acc:.4f} | {top:.4f} | {cf['fn_'] + cf['fp']} / {round(n * (1 - top))} |")
    total, now, best = total + n, now + acc * n, best + top * n
    missed = sorted(round(m["score"], 3) for m in r["misclassified"] if m["truth"])
    false = sorted(round(m["score"], 3) for m in r["misclassified"] if not m["truth"])
    notes.append(f"- fold {d['fold']}: missed tumour slices' scores {missed}; false positives' {false}")
print(f"| pooled | {total} | {now / total:.4f} | {best / total:.4f} (+{(best - now) / total:.4f}) | |")
print()
print("\n".join(notes))
