"""Compare two predict output folders (CPU vs CUDA): per-slice probability, call, pixels, masks."""
import csv, sys, os
import numpy as np
from PIL import Image
a, b = sys.argv[1], sys.argv[2]
ra = {r["file"]: r for r in csv.DictReader(open(f"{a}/predictions.csv"))}
rb = {r["file"]: r for r in csv.DictReader(open(f"{b}/predictions.csv"))}
assert ra.keys() == rb.keys(), "different slice lists"
dp = [abs(float(ra[k]["tumor_probability"]) - float(rb[k]["tumor_probability"])) for k in ra]
calls = sum(ra[k]["has_tumor"] != rb[k]["has_tumor"] for k in ra)
dpx = [abs(int(ra[k]["tumor_pixels"]) - int(rb[k]["tumor_pixels"])) for k in ra]
mdiff = 0; mtotal = 0; inter = 0; sa = 0; sb = 0
for f in sorted(os.listdir(f"{a}/masks")):
    x = np.array(Image.open(f"{a}/masks/{f}")) > 127
    y = np.array(Image.open(f"{b}/masks/{f}")) > 127
    mdiff += int((x != y).sum()); mtotal += x.size
    inter += int((x & y).sum()); sa += int(x.sum()); sb += int(y.sum())
print(f"slices {len(ra)}; tumour calls cpu {sum(r['has_tumor']=='1' for r in ra.values())} cuda {sum(r['has_tumor']=='1' for r in rb.values())}; calls differing {calls}")
print(f"probability |cpu-cuda|: max {max(dp):.2e} mean {np.mean(dp):.2e}")
print(f"tumour pixels |cpu-cuda| per slice: max {max(dpx)} total {sum(dpx)} of {sum(int(r['tumor_pixels']) for r in ra.values())}")
print(f"mask pixels differing: {mdiff} of {mtotal}; Dice(cpu mask, cuda mask) over all slices {2*inter/max(sa+sb,1):.6f}")
