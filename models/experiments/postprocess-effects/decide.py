"""PLAN.md's rule: each clean-up variant's paired effect against the shipped one (from `evaluate
pool`) beside the wrong slices it leaves (false-positive plus missed tumour slices, summed over
the folds' `evaluate segment` files), and whether it becomes a candidate: paired mean >= +0.005,
interval above 0, no more wrong slices than the shipped clean-up. On validation folds 1 + 3 by
default; with `2,4` (addendum 1) on folds 2 + 4, then the same table over all four folds
(reported, deciding nothing).
Usage: python3 decide.py [OUT] [2,4]   (an evaluate.sh OUT, or this folder's results/ by default)"""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from rules import evaluation_file, pooled_file  # noqa: E402

args = sys.argv[1:]
later = "2,4" in args
args = [a for a in args if a != "2,4"]
results = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
src = args[0] if args else results


def wrong_slices(sources):
    """{variant: (false-positive slices, missed tumour slices)} summed over `sources`' files."""
    wrong = {}
    for path in sources:
        for v in json.load(open(path))["postprocessing"]:
            fp, missed = wrong.get(v["variant"], (0, 0))
            wrong[v["variant"]] = (fp + v["false_positive_slices"], missed + v["missed_tumor_slices"])
    return wrong


def report(title, pooled, wrong, decide):
    """The table of `pooled`'s variants under `title` (none: session 50's layout); with `decide`,
    the rule's verdict per variant."""
    seg = json.load(open(pooled))["segmentation"]
    effects = dict((name, e) for name, e in seg["variant_effects"])
    shipped = sum(wrong["as shipped"])
    if title:
        print(f"## {title}\n")
    print("| variant | pooled mean patient Dice | paired vs as shipped [95% CI] | better / worse | p | FP / missed slices |"
          + (" candidate |" if decide else ""))
    print("| --- | --- | --- | --- | --- | --- |" + (" --- |" if decide else ""))
    candidates = []
    for name, mean in seg["variants"]:
        e = effects[name]
        d = e["difference"]
        ok = d["value"] >= 0.005 and d["low"] > 0 and sum(wrong[name]) <= shipped
        if ok:
            candidates.append(name)
        print(f"| {name} | {mean:.4f} | {d['value']:+.4f} [{d['low']:+.4f}, {d['high']:+.4f}] | "
              f"{e['better']} / {e['worse']} | {e['p_value']:.3f} | {wrong[name][0]} / {wrong[name][1]} |"
              + (f" {'yes' if ok else 'no'} |" if decide else ""))
    if decide:
        print()
        print("candidates for a later plan:", ", ".join(candidates) if candidates else "none")


if not later:
    report(None, pooled_file("pair", src),
           wrong_slices(evaluation_file(src, f"pair-val-fold{f}", "segmentation") for f in (1, 3)), True)
else:
    late = [evaluation_file(src, f"pair24-val-fold{f}", "segmentation") for f in (2, 4)]
    report("validation folds 2 + 4 (addendum 1's rule)", pooled_file("pair24", src), wrong_slices(late), True)
    print()
    early = [evaluation_file(results, f"pair-val-fold{f}", "segmentation") for f in (1, 3)]
    report("all four validation folds (64 patients; reported, deciding nothing)",
           pooled_file("pair1234", src, results), wrong_slices(early + late), False)
