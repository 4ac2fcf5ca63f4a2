#!/usr/bin/env python3
"""PLAN.md's rule, step 1 (and step 2's accuracy check): slice accuracy of the calls
`cleaned_pixels >= N` for each N, pooled over the given `evaluate detect` slice tables.

Usage (from the repository root):
  choose.py results/A-val-fold1-slices.csv results/A-val-fold3-slices.csv        # step 1
  choose.py --check N FOLD2.csv FOLD4.csv                                          # step 2
"""
import csv
import math
import sys

COUNTS = [1, 2, 4, 8, 16, 32, 64, 128]


def read(paths):
    rows = []
    for p in paths:
        with open(p) as f:
            rows += [(r["patient"], int(r["truth_pixels"]) > 0, int(r["cleaned_pixels"])) for r in csv.DictReader(f)]
    return rows


def figures(rows, n):
    wrong = sum((px >= n) != truth for _, truth, px in rows)
    missed = sum(truth and px < n for _, truth, px in rows)
    tumour_patients = {p for p, truth, _ in rows if truth}
    flagged = {p for p, _, px in rows if px >= n} & tumour_patients
    return 1 - wrong / len(rows), wrong, missed, wrong - missed, len(flagged), len(tumour_patients)


def table(rows, counts):
    print(f"{len(rows)} slices")
    print("| N | accuracy | wrong | missed | false | tumour patients flagged |")
    print("| --- | --- | --- | --- | --- | --- |")
    for n in counts:
        acc, wrong, missed, false, flagged, total = figures(rows, n)
        print(f"| {n} | {acc:.4f} | {wrong} | {missed} | {false} | {flagged} of {total} |")


args = sys.argv[1:]
if args and args[0] == "--check":
    n, paths = int(args[1]), args[2:]
    rows = read(paths)
    table(rows, sorted({8, n}))
    gain = figures(rows, n)[0] - figures(rows, 8)[0]
    print(f"accuracy of N = {n} minus N = 8: {gain:+.4f} (needs >= +0.003)")
else:
    rows = read(args)
    table(rows, COUNTS)
    best = max(COUNTS, key=lambda n: (figures(rows, n)[0], -abs(math.log2(n) - 3)))
    print(f"chosen N = {best}" + (" (unchanged: nothing to check)" if best == 8 else " (to check on folds 2 + 4)"))
