#!/usr/bin/env python3
"""Mean per-patient volumetric Dice of predicted NIfTI masks against export_nifti.py's truth.

usage: dice.py NIFTI_DIR NAME=PRED_DIR [NAME=PRED_DIR ...]
Each PRED_DIR holds tumorscan's <volume>_mask.nii.gz for every patient, found below it by the
patient id. A patient with no tumour in truth and prediction scores 1 (none in fold 0).
Prints a markdown table (patients x runs, then the mean) and whether runs' masks are identical.
"""
import gzip, os, struct, sys


def voxels(path):
    b = gzip.open(path).read()
    off = int(struct.unpack_from("<f", b, 108)[0])
    return b[max(off, 352):]


def find(root, patient):
    for d, _, files in os.walk(root):
        for f in files:
            if f.startswith(patient) and f.endswith("_mask.nii.gz"):
                return os.path.join(d, f)
    raise SystemExit(f"no mask for {patient} under {root}")


def dice(t, p):
    inter = sum(1 for a, b in zip(t, p) if a and b)
    size = sum(1 for a in t if a) + sum(1 for b in p if b)
    return 1.0 if size == 0 else 2 * inter / size


def main(nifti, runs):
    runs = [r.split("=", 1) for r in runs]
    patients = sorted(f[:-len("_truth.nii.gz")] for f in os.listdir(nifti) if f.endswith("_truth.nii.gz"))
    print("| patient | " + " | ".join(n for n, _ in runs) + " |")
    print("| --- |" + " --- |" * len(runs))
    sums = [0.0] * len(runs)
    same = {n: True for n, _ in runs}
    for p in patients:
        t = voxels(os.path.join(nifti, p + "_truth.nii.gz"))
        preds = [voxels(find(d, p)) for _, d in runs]
        ds = [dice(t, [1 if v else 0 for v in pr]) for pr in preds]
        for i, d in enumerate(ds):
            sums[i] += d
            same[runs[i][0]] &= preds[i] == preds[0]
        print(f"| {p} | " + " | ".join(f"{d:.4f}" for d in ds) + " |")
    print(f"| **mean of {len(patients)}** | " + " | ".join(f"**{s / len(patients):.4f}**" for s in sums) + " |")
    print()
    for n, _ in runs[1:]:
        print(f"masks of {n} identical to {runs[0][0]}'s: {same[n]}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
