"""PLAN.md addendum 1: per test fold, the post-processing variant with the highest validation
mean patient Dice is chosen if it beats "as shipped" by more than 0.001; the nested test figure
is the mean of the five test folds' means (16 patients each) of the chosen variants.
Usage: python3 decide_all.py DIR  (as decide.py)."""
import sys

from decide import HERE, evaluation_file, variant_means

out = sys.argv[1]
print("| test fold | chosen on validation | validation gain | test: as shipped | test, chosen |")
print("| --- | --- | --- | --- | --- |")
nested, shipped = [], []
for t in range(5):
    val = variant_means(evaluation_file(out, f"val-t{t}", "segmentation"))
    test = variant_means(f"{HERE}/../cv-v0.10/results/test-fold{t}-segmentation.json")
    best = max(val, key=val.get)
    gain = val[best] - val["as shipped"]
    chosen = best if gain > 0.001 else "as shipped"
    nested.append(test[chosen])
    shipped.append(test["as shipped"])
    print(f"| {t} | {chosen} | {gain:+.4f} | {test['as shipped']:.4f} | {test[chosen]:.4f} |")
print(f"\nnested test figure over 80 patients: {sum(nested) / 5:.4f} (as shipped everywhere: {sum(shipped) / 5:.4f})")
