"""Compare `tumorscan predict` on a multi-frame file with its run on the classic series the file
was converted from, slice by slice at the same position, and read the multi-frame run's DICOM
Segmentation with highdicom: each source frame's mask must equal predict's PNG for that frame.
    check.py CLASSIC_OUT NAME:MULTIFRAME_FILE:OUT ...
Exit 1 on any difference."""
import sys, csv, pathlib
import numpy as np
import pydicom
import highdicom as hd
from PIL import Image


def rows(out):
    with open(pathlib.Path(out) / "predictions.csv") as f:
        return list(csv.DictReader(f))


def along_z(ds, frame=None):
    """A slice's or frame's position along z (the series is axial), as the key that pairs them."""
    position = ds.PerFrameFunctionalGroupsSequence[frame - 1].PlanePositionSequence[0].ImagePositionPatient if frame else ds.ImagePositionPatient
    return round(float(position[2]), 2)


classic = pathlib.Path(sys.argv[1])
# Slices in order along z: the converter may store the frames the other way round.
ref = sorted(rows(classic), key=lambda r: along_z(pydicom.dcmread(r["file"])))
ref_masks = [np.asarray(Image.open(classic / r["mask_file"])) > 0 for r in ref]
bad = False
print(f"{'input':<28} {'slices':>6} {'called':>6} {'calls differ':>12} {'tumour px':>9} {'masks equal':>11} {'SEG frames = PNGs':>17}")
print(f"{'classic series':<28} {len(ref):>6} {sum(r['has_tumor'] == '1' for r in ref):>6} {0:>12} {sum(int(r['tumor_pixels']) for r in ref):>9} {'-':>11} {'-':>17}")
for arg in sys.argv[2:]:
    name, source, out = arg.split(":")
    out = pathlib.Path(out)
    src = pydicom.dcmread(source)
    got = sorted(rows(out), key=lambda r: along_z(src, int(r["file"].rsplit("#", 1)[1])))
    masks = [np.asarray(Image.open(out / r["mask_file"])) > 0 for r in got]
    calls = sum(a["has_tumor"] != b["has_tumor"] for a, b in zip(ref, got))
    same = len(got) == len(ref) and all(np.array_equal(a, b) for a, b in zip(ref_masks, masks))
    # The SEG, through highdicom: the mask of each frame of the source instance, by frame number.
    seg = hd.seg.segread(next(out.glob("*_seg.dcm")))
    frame_of = {int(r["file"].rsplit("#", 1)[1]): m for r, m in zip(got, masks)}
    numbers = sorted(frame_of)
    pixels = seg.get_pixels_by_source_frame(src.SOPInstanceUID, source_frame_numbers=numbers, combine_segments=True)
    seg_ok = all(np.array_equal(pixels[i] > 0, frame_of[k]) for i, k in enumerate(numbers))
    print(f"{name:<28} {len(got):>6} {sum(r['has_tumor'] == '1' for r in got):>6} {calls:>12} {sum(int(r['tumor_pixels']) for r in got):>9} {'yes' if same else 'NO':>11} {'yes' if seg_ok else 'NO':>17}")
    bad |= calls > 0 or not same or not seg_ok
sys.exit(1 if bad else 0)
