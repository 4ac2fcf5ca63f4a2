"""PLAN.md's addendum: rank the outlined slices too (calls unchanged). Reads
results/<prefix>-fold{1..4}-slices.csv (default prefix: val) or the folders given:
python3 explore_outlined.py [DIR_WITH_slices.csv ...]"""
import csv, os, sys
from collections import defaultdict
HERE = os.path.dirname(os.path.abspath(__file__))
MIN_PX = 8

def load(path):
    pats = defaultdict(list)
    for r in csv.DictReader(open(path)):
        pats[r['patient']].append(dict(slice=int(r['slice']), truth=int(r['truth_pixels']) > 0,
                                       px=int(r['cleaned_pixels']), mp=float(r['max_probability'])))
    for p in pats.values():
        p.sort(key=lambda x: x['slice'])
    return pats

def auc(items):
    allv = sorted(items, key=lambda x: x[0]); n = len(allv); r = [0.0] * n; i = 0
    while i < n:
        j = i
        while j < n and allv[j][0] == allv[i][0]:
            j += 1
        for k in range(i, j):
            r[k] = (i + j + 1) / 2
        i = j
    P = sum(1 for _, t in allv if t); N = n - P
    return (sum(r[k] for k in range(n) if allv[k][1]) - P * (P + 1) / 2) / (P * N)

def scores(p, kind):
    """(score tuple, truth) per slice; tuples compare lexicographically = the ranking."""
    n = len(p); out = []
    has = [s['px'] >= MIN_PX for s in p]
    for i, s in enumerate(p):
        nb = [has[j] for j in (i - 1, i + 1) if 0 <= j < n]
        own = min(s['mp'], 0.4999) if not has[i] else s['mp']
        if not has[i]:
            key = (0, 1 if any(nb) else 0, 0, 0.0, own)      # the shipped context bands
        elif kind == 'context':
            key = (1, 0, 0, 0.0, own)
        elif kind == 'interior':
            key = (1, 0, 1 if (len(nb) == 2 and all(nb)) else 0, 0.0, own)
        elif kind == 'size':
            key = (1, 0, 0, s['px'], own)
        elif kind == 'interior+size':
            key = (1, 0, 1 if (len(nb) == 2 and all(nb)) else 0, s['px'], own)
        out.append((key, s['truth']))
    return out

dirs = sys.argv[1:] or [os.path.join(HERE, 'results', f'val-fold{v}-slices.csv') for v in (1, 2, 3, 4)]
folds = [load(d if d.endswith('.csv') else os.path.join(d, 'slices.csv')) for d in dirs]
for kind in ('context', 'interior', 'size', 'interior+size'):
    aucs = [auc([x for p in f.values() for x in scores(p, kind)]) for f in folds]
    print(f"{kind:14} mean ROC-AUC {sum(aucs)/len(aucs):.4f}  folds {' / '.join(f'{a:.4f}' for a in aucs)}")
