"""Read tumorscan's SEG with highdicom (an independent implementation of the standard) and
compare it with the series and with predict's mask PNGs."""
import sys, pathlib
import numpy as np
from PIL import Image
import pydicom, highdicom as hd

series_dir = pathlib.Path(sys.argv[1]); out = pathlib.Path(sys.argv[2]); seg_path = out / (series_dir.name + "_seg.dcm")
src = {pydicom.dcmread(p).SOPInstanceUID: p for p in series_dir.glob("*.dcm")}
seg = hd.seg.segread(seg_path)
print("SOP class", seg.SOPClassUID, "type", seg.segmentation_type, "frames", seg.NumberOfFrames)
print("patient", seg.PatientName, seg.PatientID, "study same:", seg.StudyInstanceUID == pydicom.dcmread(next(iter(src.values()))).StudyInstanceUID)
print("segments", [(d.segment_number, d.segment_label, d.segmented_property_type.meaning) for d in seg.SegmentSequence])
uids = seg.get_source_image_uids()
print("source series referenced:", {u[1] for u in uids}, "instances", len(uids), "all in series:", all(u[2] in src for u in uids))
total = 0; mismatch = 0
for uid, path in src.items():
    arr = seg.get_pixels_by_source_instance(source_sop_instance_uids=[uid], segment_numbers=[1], assert_missing_frames_are_empty=True)[0, :, :, 0]
    png = np.asarray(Image.open(out / "masks" / f"{path.stem}_mask.png")) > 0
    mismatch += int((arr.astype(bool) != png).sum()); total += int(arr.sum())
print("tumour pixels", total, "pixels differing from the PNG masks", mismatch)
vol = seg.get_volume()
print("volume from SEG geometry:", vol.spatial_shape, "spacing", vol.spacing)
assert seg.SOPClassUID == "1.2.840.10008.5.1.4.1.1.66.4" and len(uids) == len(src) and all(u[2] in src for u in uids)
assert mismatch == 0 and total > 0
print("OK")
