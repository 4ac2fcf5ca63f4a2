#!/usr/bin/env python3
"""How much could any rule for choosing 3D components still gain? (session 24)

Reads the committed out-of-fold evaluations of v0.9's recipe (results/test-fold*-segmentation.json,
30 % rule, and results/largest/..., largest component) and lists the patients whose Dice depends
on the component rule among the variants `evaluate segment` measured on the same probability
maps, and the mean per-patient Dice an oracle would reach by picking the best of them per
patient. Usage: python3 models/experiments/cv-v0.9/component_oracle.py
"""
import json
import pathlib

HERE = pathlib.Path(__file__).parent / "results"
RULES = [
    "largest 3D component",
    "3D component with the most probability mass",
    "3D component with the highest peak probability",
    "3D components >= 10% of the largest",
    "3D components >= 30% of the largest",
]


def per_patient(path):
    """Per-patient Dice of the file's shipped clean-up (its report; the other variants are
    stored as means only, hence the two folders)."""
    data = json.loads(path.read_text())
    return {p["patient"]: p["dice"] for p in data["report"]["per_patient"]}


def main():
    rows, shipped, oracle = [], [], []
    for fold in range(5):
        largest = per_patient(HERE / "largest" / f"test-fold{fold}-segmentation.json")
        thirty = per_patient(HERE / f"test-fold{fold}-segmentation.json")
        for patient, dice in largest.items():
            best = max(dice, thirty[patient])
            shipped.append(dice)
            oracle.append(best)
            if abs(dice - thirty[patient]) > 1e-9:
                rows.append((fold, patient, dice, thirty[patient]))
    n = len(shipped)
    print(f"patients: {n}; the two stored rules differ on {len(rows)}:")
    for fold, patient, a, b in rows:
        print(f"  fold {fold} {patient}: largest {a:.3f}, >= 30 % of the largest {b:.3f}")
    print(f"mean per-patient Dice, largest (v0.9.1): {sum(shipped) / n:.4f}")
    print(f"oracle (the better of the two per patient): {sum(oracle) / n:.4f} (+{(sum(oracle) - sum(shipped)) / n:.4f})")
    # Every component rule `evaluate segment` measured, pooled over the folds (weighted by patients).
    for rule in RULES:
        total = 0.0
        for fold in range(5):
            data = json.loads((HERE / "largest" / f"test-fold{fold}-segmentation.json").read_text())
            [v] = [v for v in data["postprocessing"] if v["variant"] == rule]
            total += v["patient_dice_mean"]["value"] * len(data["report"]["per_patient"])
        print(f"  {rule}: {total / n:.4f}")


if __name__ == "__main__":
    main()
