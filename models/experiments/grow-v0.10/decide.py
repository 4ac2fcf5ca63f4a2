"""PLAN.md's rule: grow_to 0.4 or 0.3 (the better by pooled validation Dice) replaces v0.10's
clean-up only if, pooled over validation folds 1-4, Dice >= stored + 0.005, slice accuracy and
mean fold ROC-AUC not lower by more than 0.005, and every tumour patient is still flagged.
Usage: python3 decide.py DIR  (evaluate.sh's OUT with val-growG/pooled.json, or results/ with
val-growG-pooled.json)."""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from rules import evaluation_file, variant_means  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
VARIANTS = {"0": "largest 3D component", "0.4": "largest 3D, grown to 0.4", "0.3": "largest 3D, grown to 0.3"}
TEST_FOLDS = range(4)  # pairs of test folds 0-3, on validation folds 1-4


def figures(out, g):
    """Dice (per fold and the mean of the four folds' means: 16 patients each, as `evaluate pool`)
    from the variants tables; detection from `evaluate pool` of the four folds (evaluate.sh)."""
    seg = f"{HERE}/../component-peak-nested/results/val-t{{}}-segmentation.json"
    dice = [variant_means(seg.format(t))[VARIANTS[g]] for t in TEST_FOLDS]
    det = json.load(open(evaluation_file(out, f"val-grow{g}", "pooled")))["detection"]
    return {"dice": sum(dice) / len(dice), "accuracy": det["accuracy"], "auc": det["mean_fold_roc_auc"],
            "flagged": det["tumor_patients_detected"], "patients": det["tumor_patients"],
            "folds": " / ".join(f"{x:.4f}" for x in dice)}


if __name__ == "__main__":
    out = sys.argv[1]
    rows = {g: figures(out, g) for g in VARIANTS}
    print("| clean-up | mean patient Dice | folds 1 / 2 / 3 / 4 | slice accuracy | mean fold ROC-AUC | tumour patients flagged |")
    print("| --- | --- | --- | --- | --- | --- |")
    for g, f in rows.items():
        print(f"| {VARIANTS[g]} | {f['dice']:.4f} | {f['folds']} | {f['accuracy']:.4f} | {f['auc']:.4f} | {f['flagged']} / {f['patients']} |")
    base = rows["0"]
    best = max(("0.4", "0.3"), key=lambda g: rows[g]["dice"])
    b = rows[best]
    checks = {
        f"Dice {b['dice'] - base['dice']:+.4f} >= +0.005": b["dice"] - base["dice"] >= 0.005,
        f"accuracy {b['accuracy'] - base['accuracy']:+.4f} >= -0.005": b["accuracy"] - base["accuracy"] >= -0.005,
        f"ROC-AUC {b['auc'] - base['auc']:+.4f} >= -0.005": b["auc"] - base["auc"] >= -0.005,
        "every tumour patient flagged": b["flagged"] == b["patients"],
    }
    print(f"\nbetter grown variant by Dice: grow_to {best}")
    for k, ok in checks.items():
        print(f"- {k}: {'yes' if ok else 'NO'}")
    print(f"\ndecision: {'grow_to ' + best + ' replaces the clean-up (v0.10.1)' if all(checks.values()) else 'nothing changes'}")
