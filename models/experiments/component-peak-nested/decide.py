"""PLAN.md's rule: per test fold, the highest-peak 3D component is chosen over the largest if its
validation mean patient Dice is higher by more than 0.001; the nested test figure is the mean of
the five test folds' means (16 patients each) of the chosen rules.
Usage: python3 decide.py DIR  (evaluate.sh's OUT, with val-tT/segmentation.json, or results/,
with val-tT-segmentation.json; the test files are ../cv-v0.10/results/test-foldT-segmentation.json)."""
import json
import os
import sys

LARGEST, PEAK = "largest 3D component", "3D component with the highest peak probability"
HERE = os.path.dirname(os.path.abspath(__file__))


def variant_means(path):
    """Mean patient Dice of every variant in an `evaluate segment` file's post-processing table."""
    return {v["variant"]: v["patient_dice_mean"]["value"] for v in json.load(open(path))["postprocessing"]}


def val_path(out, t):
    """Test fold t's pair on its validation fold: evaluate.sh's layout, or results/'s copies."""
    path = f"{out}/val-t{t}/segmentation.json"
    return path if os.path.exists(path) else f"{out}/val-t{t}-segmentation.json"


def means(path):
    """Mean patient Dice of the two rules."""
    pp = variant_means(path)
    return pp[LARGEST], pp[PEAK]


if __name__ == "__main__":
    out = sys.argv[1]
    print("| test fold | validation fold | validation: largest / peak | chosen | test: largest / peak | test, chosen |")
    print("| --- | --- | --- | --- | --- | --- |")
    nested, shipped = [], []
    for t in range(5):
        vl, vp = means(val_path(out, t))
        tl, tp = means(f"{HERE}/../cv-v0.10/results/test-fold{t}-segmentation.json")
        peak = vp - vl > 0.001
        chosen = tp if peak else tl
        nested.append(chosen)
        shipped.append(tl)
        print(f"| {t} | {(t + 1) % 5} | {vl:.4f} / {vp:.4f} | {'peak' if peak else 'largest'} | {tl:.4f} / {tp:.4f} | {chosen:.4f} |")
    print(f"\nnested test figure over 80 patients: {sum(nested) / 5:.4f} (largest everywhere: {sum(shipped) / 5:.4f})")
