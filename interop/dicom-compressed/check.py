"""Compare `tumorscan predict` on a series stored in compressed transfer syntaxes with its run on
the uncompressed series: masks (PNG), per-slice calls and tumour pixels, overlays; and how far the
stored pixels themselves moved (decoded by pydicom, independently of tumorscan).
    check.py WORK_DIR NAME...       (WORK_DIR/series/NAME and WORK_DIR/out/NAME; 'native' is the reference)
Exit 1 if a lossless syntax differs from the reference in anything."""
import sys, csv, pathlib
import numpy as np
import pydicom
from PIL import Image

work = pathlib.Path(sys.argv[1]); names = sys.argv[2:]
LOSSLESS = {"rle", "jpeg-lossless-sv1", "jpeg-lossless", "jpeg2000-lossless", "htj2k-lossless", "jpeg-ls-lossless",
            "jpeg-ls-lossless-dcmtk", "jpeg-lossless-sv1-dcmtk"}


def rows(name):
    with open(work / "out" / name / "predictions.csv") as f:
        return {pathlib.Path(r["file"]).name: r for r in csv.DictReader(f)}


def stack(name, sub):
    folder = work / "out" / name / sub
    return {p.name: np.asarray(Image.open(p)) for p in sorted(folder.glob("*.png"))}


def pixels(name):
    return {p.name: pydicom.dcmread(p).pixel_array.astype(np.int64) for p in sorted((work / "series" / name).glob("*.dcm"))}


ref_rows, ref_masks, ref_over, ref_px = rows("native"), stack("native", "masks"), stack("native", "overlays"), pixels("native")
bad = False
print(f"{'syntax':<24} {'max |pixel diff|':>16} {'slices called':>13} {'calls differ':>12} {'tumour px':>9} {'mask Dice vs uncompressed':>25} {'overlays equal':>14}")
print(f"{'native (reference)':<24} {0:>16} {sum(r['has_tumor'] == '1' for r in ref_rows.values()):>13} {0:>12} {sum(int(r['tumor_pixels']) for r in ref_rows.values()):>9} {1.0:>25.4f} {'yes':>14}")
for name in names:
    got_rows, masks, over, px = rows(name), stack(name, "masks"), stack(name, "overlays"), pixels(name)
    # Baseline JPEG holds 8 bits: its input was the 12-bit series scaled to 0..255 first.
    ref = {k: np.round(v * 255.0 / (2 ** 12 - 1)) for k, v in ref_px.items()} if name == "jpeg-baseline" else ref_px
    diff = max(float(np.abs(px[k] - ref[k]).max()) for k in ref)
    calls = sum(got_rows[k]["has_tumor"] != ref_rows[k]["has_tumor"] for k in ref_rows)
    tumour = sum(int(r["tumor_pixels"]) for r in got_rows.values())
    a = np.stack([ref_masks[k] > 0 for k in sorted(ref_masks)]); b = np.stack([masks[k] > 0 for k in sorted(ref_masks)])
    dice = 2 * (a & b).sum() / max(a.sum() + b.sum(), 1)
    same_over = all(np.array_equal(over[k], ref_over[k]) for k in ref_over)
    print(f"{name:<24} {diff:>16.1f} {sum(r['has_tumor'] == '1' for r in got_rows.values()):>13} {calls:>12} {tumour:>9} {dice:>25.4f} {'yes' if same_over else 'no':>14}")
    if name in LOSSLESS and (diff != 0 or calls or dice != 1.0 or not same_over):
        bad = True
        print(f"  {name} is lossless but differs from the uncompressed series")
sys.exit(1 if bad else 0)
