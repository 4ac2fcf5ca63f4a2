#!/usr/bin/env python3
"""Predicted / true tumour volume per patient, candidate beside baseline (PLAN.md's report).

Usage: volume_ratio.py BASELINE_SEG_JSON CANDIDATE_SEG_JSON [...pairs]
Each file is an `evaluate segment` segmentation.json; per_patient holds the pixel sums after the
bundle's clean-up. Prints a markdown table and, per fold, how many patients over-segment (> 1).
"""
import json
import sys


def per_patient(path):
    report = json.load(open(path))["report"]
    return {p["patient"]: p for p in report["per_patient"]}


def ratio(p):
    return p["predicted_pixels"] / p["truth_pixels"] if p["truth_pixels"] else float("nan")


args = sys.argv[1:]
if not args or len(args) % 2:
    sys.exit(__doc__)
print("| patient | true pixels | baseline ratio | candidate ratio | baseline Dice | candidate Dice |")
print("| --- | --- | --- | --- | --- | --- |")
summary = []
for base_path, cand_path in zip(args[::2], args[1::2]):
    base, cand = per_patient(base_path), per_patient(cand_path)
    if set(base) != set(cand):
        sys.exit(f"{base_path} and {cand_path} hold different patients")
    rows = sorted(base, key=lambda k: base[k]["truth_pixels"])
    for k in rows:
        b, c = base[k], cand[k]
        print(f"| {k} | {b['truth_pixels']} | {ratio(b):.2f} | {ratio(c):.2f} | {b['dice']:.3f} | {c['dice']:.3f} |")
    tumour = [k for k in rows if base[k]["truth_pixels"]]
    over = lambda d: sum(ratio(d[k]) > 1 for k in tumour)
    med = lambda d: sorted(ratio(d[k]) for k in tumour)[len(tumour) // 2]
    summary.append(f"{cand_path}: over-segmented (ratio > 1) baseline {over(base)}/{len(tumour)}, "
                   f"candidate {over(cand)}/{len(tumour)}; median ratio {med(base):.2f} -> {med(cand):.2f}")
print()
print("\n".join(summary))
