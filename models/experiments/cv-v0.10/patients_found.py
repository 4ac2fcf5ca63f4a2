"""Tumour patients found on a tumour slice (at least one tumour slice called tumour) over the
five test folds of a cross-validation results folder: the shipped rule's missed tumour slices
(detection.json, misclassified with truth true) against each patient's tumour slices
(`tumorscan dataset index`). Usage: patients_found.py INDEX.csv RESULTS_DIR"""
import csv, json, sys, collections
index, results = sys.argv[1], sys.argv[2]
tumour = collections.Counter()
for r in csv.DictReader(open(index)):
    if r['has_tumor'] == '1':
        tumour[r['patient']] += 1
found = flagged = patients = 0
unfound = []
for k in range(5):
    d = json.load(open(f'{results}/test-fold{k}-detection.json'))
    rule = d['best_on_validation']
    rep = next(c['report'] for c in d['candidates'] if c['name'] == rule)
    missed = collections.Counter(m['patient'] for m in rep['misclassified'] if m['truth'])
    seg = json.load(open(f'{results}/test-fold{k}-segmentation.json'))
    ids = [p['patient'] for p in seg['report']['per_patient']]
    fold_tumour = [p for p in ids if tumour[p] > 0]
    patients += len(fold_tumour)
    flagged += rep['tumor_patients_detected']
    for p in fold_tumour:
        if missed[p] < tumour[p]:
            found += 1
        else:
            unfound.append((k, p, tumour[p]))
print(f'{results}: tumour patients {patients}, flagged {flagged}, found on a tumour slice {found}; not found: {unfound}')
