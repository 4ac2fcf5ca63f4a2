"""PLAN.md's rule: per test fold, the highest-peak 3D component is chosen over the largest if its
validation mean patient Dice is higher by more than 0.001; the nested test figure is the mean of
the five test folds' means (16 patients each) of the chosen rules.
Usage: python3 decide.py DIR  (evaluate.sh's OUT, with val-tT/segmentation.json, or results/,
with val-tT-segmentation.json; the test files are ../cv-v0.10/results/test-foldT-segmentation.json)."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from rules import evaluation_file, variant_means  # noqa: E402

LARGEST, PEAK = "largest 3D component", "3D component with the highest peak probability"
HERE = os.path.dirname(os.path.abspath(__file__))


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
        vl, vp = means(evaluation_file(out, f"val-t{t}", "segmentation"))
        tl, tp = means(f"{HERE}/../cv-v0.10/results/test-fold{t}-segmentation.json")
        peak = vp - vl > 0.001
        chosen = tp if peak else tl
        nested.append(chosen)
        shipped.append(tl)
        print(f"| {t} | {(t + 1) % 5} | {vl:.4f} / {vp:.4f} | {'peak' if peak else 'largest'} | {tl:.4f} / {tp:.4f} | {chosen:.4f} |")
    print(f"\nnested test figure over 80 patients: {sum(nested) / 5:.4f} (largest everywhere: {sum(shipped) / 5:.4f})")
