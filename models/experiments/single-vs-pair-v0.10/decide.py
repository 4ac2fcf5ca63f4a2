"""PLAN.md's rule: v0.10's seed-42 network alone replaces the pair only if, pooled over
validation folds 1-4, the guards of rules.checks hold, mean patient Dice is not lower by more
than 0.005, every tumour patient is flagged, and one network trains alone in 60 min or less
(measured seconds per step x 1,520 steps). Also prints the test folds' figures (they choose
nothing). Usage: python3 decide.py DIR  (evaluate.sh's OUT holding timing.sh's timing.json, or
results/)."""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from rules import checks, evaluation_file, figures, row  # noqa: E402

STEPS = 76 * 20  # v0.10's command: 76 steps per epoch (its metrics), 20 epochs
KEYS = ["dice", "fold1", "fold2", "fold3", "fold4", "accuracy", "auc"]


def pooled(path, folds):
    """`rules.figures` of a pooled file, with its flagged tumour patients and whether all are."""
    f = figures(path, path, folds)
    det = json.load(open(path))["detection"]
    f["flagged"] = f"{det['tumor_patients_detected']} / {det['tumor_patients']}"
    return f, det["tumor_patients_detected"] == det["tumor_patients"]


def paired(out, name):
    """The per-patient comparison's difference line."""
    c = json.load(open(evaluation_file(out, name, "compare")))
    s, d = c["comparison"], c["detection"]
    diff = s["difference"]
    return (f"paired Dice {diff['value']:+.4f} [{diff['low']:+.4f}, {diff['high']:+.4f}], "
            f"{s['better']} better / {s['worse']} worse / {s['tied']} tied, p = {s['p_value']:.2f}; "
            f"slices only the pair calls wrong {d['fixed']}, only one network {d['broken']}, "
            f"McNemar p = {d['mcnemar_p']:.2f}")


def figures_table(rows, keys):
    """A markdown table of `rows` (label, pooled figures) over `keys`, then the flagged count."""
    print("| | " + " | ".join(keys) + " | flagged |")
    print("| --- |" + " --- |" * (len(keys) + 1))
    for name, f in rows:
        print(row(name, f, keys) + f" {f['flagged']} |")


if __name__ == "__main__":
    out = sys.argv[1]
    folds = (1, 2, 3, 4)
    pair, _ = pooled(evaluation_file(out, "val-pair", "pooled"), folds)
    one, all_flagged = pooled(evaluation_file(out, "val-s42", "pooled"), folds)
    print("## Validation folds 1-4 (64 patients; the choice)\n")
    figures_table([("pair (v0.10's recipe)", pair), ("seed 42 alone", one)], KEYS)
    print("\n" + paired(out, "compare-val-s42-vs-pair"))
    d = {k: one[k] - pair[k] for k in KEYS}
    guards = checks(d, folds)
    timing = json.load(open(os.path.join(out, "timing.json")))["step_seconds"]
    alone = timing["alone-s42"] * STEPS / 60
    side_step = max(timing["pair-s42"], timing["pair-s43"])  # the pair ends with its slower member
    rest = {
        f"Dice {d['dice']:+.4f} not lower by more than 0.005": d["dice"] >= -0.005,
        "every tumour patient flagged": all_flagged,
        f"one network alone: {timing['alone-s42']:.2f} s per step x {STEPS} = {alone:.0f} min <= 60": alone <= 60,
    }
    for k, ok in rest.items():
        print(f"- {k}: {'holds' if ok else 'FAILS'}")
    print(f"\n(the pair side by side: {side_step * STEPS / 60:.0f} min at {side_step:.2f} s per step)")
    adopt = guards and all(rest.values())
    print(f"\nDECISION: {'one network (seed 42) replaces the pair' if adopt else 'the pair stays'}\n")
    print("## Test folds 0-4 (80 patients; reported, chooses nothing)\n")
    test = (0, 1, 2, 3, 4)
    here = os.path.dirname(os.path.abspath(__file__))
    rows = [("pair (../cv-v0.10/)", pooled(f"{here}/../cv-v0.10/results/pooled.json", test)[0])]
    rows += [(f"seed {s} alone", pooled(evaluation_file(out, f"test-s{s}", "pooled"), test)[0]) for s in (42, 43)]
    figures_table(rows, ["dice"] + [f"fold{f}" for f in test] + ["accuracy", "auc"])
    print()
    for s in (42, 43):
        print(f"- seed {s} alone - pair: " + paired(out, f"compare-test-s{s}-vs-pair"))
