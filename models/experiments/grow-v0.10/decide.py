"""PLAN.md's rule: grow_to 0.4 or 0.3 (the better by pooled validation Dice) replaces v0.10's
clean-up only if, pooled over validation folds 1-4, Dice >= stored + 0.005, slice accuracy and
mean fold ROC-AUC not lower by more than 0.005, and every tumour patient is still flagged.
Usage: python3 decide.py DIR  (evaluate.sh's OUT with val-growG-tT/detection.json, or results/
with val-growG-tT-detection.json)."""
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
VARIANTS = {"0": "largest 3D component", "0.4": "largest 3D, grown to 0.4", "0.3": "largest 3D, grown to 0.3"}
TEST_FOLDS = range(4)  # pairs of test folds 0-3, on validation folds 1-4


def detection(out, g, t):
    """The bundle rule's report in one validation detection file."""
    path = f"{out}/val-grow{g}-t{t}/detection.json"
    d = json.load(open(path if os.path.exists(path) else f"{out}/val-grow{g}-t{t}-detection.json"))
    return next(c["report"] for c in d["candidates"] if c["name"] == d["best_on_validation"])


def figures(out, g):
    """Pooled Dice (mean of fold means), accuracy, mean fold ROC-AUC, tumour patients flagged."""
    dice, right, slices, aucs, flagged, patients = [], 0, 0, [], 0, 0
    for t in TEST_FOLDS:
        seg = json.load(open(f"{HERE}/../component-peak-nested/results/val-t{t}-segmentation.json"))
        dice.append(next(v["patient_dice_mean"]["value"] for v in seg["postprocessing"] if v["variant"] == VARIANTS[g]))
        r = detection(out, g, t)
        c = r["confusion"]
        right += c["tp"] + c["tn"]
        slices += c["tp"] + c["tn"] + c["fp"] + c["fn_"]
        aucs.append(r["roc_auc"]["value"])
        flagged += r["tumor_patients_detected"]
        patients += r["tumor_patients"]
    return {"dice": sum(dice) / len(dice), "accuracy": right / slices, "auc": sum(aucs) / len(aucs),
            "flagged": flagged, "patients": patients, "folds": " / ".join(f"{x:.4f}" for x in dice)}


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
