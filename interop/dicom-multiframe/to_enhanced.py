"""Convert a classic MR series (one file per slice) into one Legacy Converted Enhanced MR
multi-frame file with highdicom, as a PACS or converter does, optionally compressed:
    to_enhanced.py SERIES_DIR OUT_FILE [TRANSFER_SYNTAX_UID]
highdicom orders the frames along the stack and writes each frame's position in its own Plane
Position functional group (orientation, spacing and rescale shared)."""
import sys, pathlib
import pydicom
import highdicom as hd

src, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
ts = sys.argv[3] if len(sys.argv) > 3 else None
legacy = [pydicom.dcmread(f) for f in sorted(src.glob("*.dcm"))]
image = hd.legacy.LegacyConvertedEnhancedMRImage(
    legacy,
    series_instance_uid=hd.UID(),
    series_number=legacy[0].SeriesNumber,
    sop_instance_uid=hd.UID(),
    instance_number=1,
    transfer_syntax_uid=ts,
)
out.parent.mkdir(parents=True, exist_ok=True)
image.save_as(out)
back = pydicom.dcmread(out)
print(f"{out.name}: {back.NumberOfFrames} frames, {back.SOPClassUID.name}, {back.file_meta.TransferSyntaxUID.name}, {out.stat().st_size} bytes")
