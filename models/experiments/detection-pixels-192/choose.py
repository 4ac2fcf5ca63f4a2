#!/usr/bin/env python3
"""PLAN.md's rule, step 1 (and step 2's accuracy check): slice accuracy of the calls
`cleaned_pixels >= N` for each N, pooled over the given `evaluate detect` slice tables.

Usage (from the repository root):
  choose.py results/A-val-fold1-slices.csv results/A-val-fold3-slices.csv        # step 1
  choose.py --check N FOLD2.csv FOLD4.csv                                          # step 2
  choose.py --where N FOLD1.csv FOLD3.csv     # where the wrong slices at N lie (tumour ends or not)
"""
import csv
import math
import sys

COUNTS = [1, 2, 4, 8, 16, 32, 64, 128]


def read(paths, with_slice=False):
    """(patient, has tumour, cleaned pixels) per slice; with the slice number and true tumour
    pixels added when `with_slice`."""
    rows = []
    for p in paths:
        with open(p) as f:
            for r in csv.DictReader(f):
                row = (r["patient"], int(r["truth_pixels"]) > 0, int(r["cleaned_pixels"]))
                rows.append(row + (int(r["slice"]), int(r["truth_pixels"])) if with_slice else row)
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


def where(paths, n):
    """False slices by their distance to the patient's nearest annotated tumour slice; missed
    slices by whether they are a tumour's first or last annotated slice."""
    by = {}
    for patient, _, cleaned, number, truth_pixels in read(paths, with_slice=True):
        by.setdefault(patient, {})[number] = (truth_pixels, cleaned)
    false, missed = [], []
    for sl in by.values():
        tumour = [k for k, (t, _) in sl.items() if t > 0]
        for k, (t, c) in sl.items():
            if t == 0 and c >= n:
                false.append((min((abs(k - m) for m in tumour), default=None), c))
            if t > 0 and c < n:
                end = not (sl.get(k - 1, (0, 0))[0] > 0 and sl.get(k + 1, (0, 0))[0] > 0)
                missed.append((end, t))
    print(f"false slices: {len(false)}; distance to the nearest annotated tumour slice: {sorted(d for d, _ in false)}")
    print(f"  their outlines (pixels): {sorted(c for _, c in false)}")
    ends = sum(e for e, _ in missed)
    print(f"missed tumour slices: {len(missed)}; at a tumour's first or last annotated slice: {ends}")
    print(f"  their true tumour pixels: {sorted(t for _, t in missed)}")


args = sys.argv[1:]
if args and args[0] == "--where":
    where(args[2:], int(args[1]))
elif args and args[0] == "--check":
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
