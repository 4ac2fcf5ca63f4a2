"""PLAN.md's rule on validation folds 1 + 3: each clean-up variant's paired effect against the
shipped one (from `evaluate pool`) beside the wrong slices it leaves (false-positive plus missed
tumour slices, summed over the two folds' `evaluate segment` files), and whether it becomes a
candidate: paired mean >= +0.005, interval above 0, no more wrong slices than the shipped clean-up.
Usage: python3 decide.py [OUT]   (an evaluate.sh OUT, or this folder's results/ by default)"""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from rules import evaluation_file, pooled_file  # noqa: E402

src = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
seg = json.load(open(pooled_file("pair", src)))["segmentation"]
wrong = {}
for fold in (1, 3):
    for v in json.load(open(evaluation_file(src, f"pair-val-fold{fold}", "segmentation")))["postprocessing"]:
        fp, missed = wrong.get(v["variant"], (0, 0))
        wrong[v["variant"]] = (fp + v["false_positive_slices"], missed + v["missed_tumor_slices"])
effects = dict((name, e) for name, e in seg["variant_effects"])
shipped = sum(wrong["as shipped"])
print("| variant | pooled mean patient Dice | paired vs as shipped [95% CI] | better / worse | p | FP / missed slices | candidate |")
print("| --- | --- | --- | --- | --- | --- | --- |")
candidates = []
for name, mean in seg["variants"]:
    e = effects[name]
    d = e["difference"]
    ok = d["value"] >= 0.005 and d["low"] > 0 and sum(wrong[name]) <= shipped
    if ok:
        candidates.append(name)
    print(f"| {name} | {mean:.4f} | {d['value']:+.4f} [{d['low']:+.4f}, {d['high']:+.4f}] | "
          f"{e['better']} / {e['worse']} | {e['p_value']:.3f} | {wrong[name][0]} / {wrong[name][1]} | "
          f"{'yes' if ok else 'no'} |")
print()
print("candidates for a later plan:", ", ".join(candidates) if candidates else "none")
