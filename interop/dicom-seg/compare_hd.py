"""Build highdicom's SEG of the same masks over the same series and list the attributes each
writes that the other does not (top level, shared and per-frame functional groups, segment)."""
import sys, pathlib
import numpy as np
from PIL import Image
import pydicom, highdicom as hd
from pydicom.sr.codedict import codes

series_dir = pathlib.Path(sys.argv[1]); out = pathlib.Path(sys.argv[2])
imgs = sorted((pydicom.dcmread(p) for p in series_dir.glob("*.dcm")), key=lambda d: int(d.InstanceNumber))
masks = np.stack([np.asarray(Image.open(out / "masks" / f"IM{int(d.InstanceNumber):04d}_mask.png")) > 0 for d in imgs])
desc = hd.seg.SegmentDescription(
    segment_number=1, segment_label="Tumour",
    segmented_property_category=codes.SCT.MorphologicallyAbnormalStructure,
    segmented_property_type=codes.SCT.Neoplasm,
    algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
    algorithm_identification=hd.AlgorithmIdentificationSequence(name="tumorscan", version="v0.10", family=codes.cid7162.ArtificialIntelligence),
)
ref = hd.seg.Segmentation(source_images=imgs, pixel_array=masks, segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
    segment_descriptions=[desc], series_instance_uid=hd.UID(), series_number=1000, sop_instance_uid=hd.UID(), instance_number=1,
    manufacturer="tumorscan", manufacturer_model_name="tumorscan", software_versions="0.1", device_serial_number="0", omit_empty_frames=False)
ours = pydicom.dcmread(out / (series_dir.name + "_seg.dcm"))
def kw(ds): return {e.keyword or str(e.tag) for e in ds}
def diff(name, a, b):
    print(f"{name}: highdicom only {sorted(kw(a) - kw(b))}; ours only {sorted(kw(b) - kw(a))}")
diff("top", ref, ours)
diff("shared", ref.SharedFunctionalGroupsSequence[0], ours.SharedFunctionalGroupsSequence[0])
for k in ("PixelMeasuresSequence", "PlaneOrientationSequence"):
    if k in ref.SharedFunctionalGroupsSequence[0] and k in ours.SharedFunctionalGroupsSequence[0]:
        diff(" shared." + k, ref.SharedFunctionalGroupsSequence[0][k].value[0], ours.SharedFunctionalGroupsSequence[0][k].value[0])
diff("frame", ref.PerFrameFunctionalGroupsSequence[0], ours.PerFrameFunctionalGroupsSequence[0])
rf, of = ref.PerFrameFunctionalGroupsSequence[0], ours.PerFrameFunctionalGroupsSequence[0]
diff(" frame.FrameContent", rf.FrameContentSequence[0], of.FrameContentSequence[0])
diff(" frame.Derivation", rf.DerivationImageSequence[0], of.DerivationImageSequence[0])
diff(" frame.Source", rf.DerivationImageSequence[0].SourceImageSequence[0], of.DerivationImageSequence[0].SourceImageSequence[0])
diff("segment", ref.SegmentSequence[0], ours.SegmentSequence[0])
diff("dim index", ref.DimensionIndexSequence[0], ours.DimensionIndexSequence[0])
print("frame content ours", of.FrameContentSequence[0], "\nref", rf.FrameContentSequence[0])
for k in ("ImageType", "SOPClassUID", "Modality", "SegmentationType", "SpecificCharacterSet", "PixelSpacing"):
    print(k, getattr(ref, k, None), "|", getattr(ours, k, None))
print("ref dims", [(d.DimensionIndexPointer, d.FunctionalGroupPointer) for d in ref.DimensionIndexSequence])
print("our dims", [(d.DimensionIndexPointer, d.FunctionalGroupPointer) for d in ours.DimensionIndexSequence])
print("ref measures", ref.SharedFunctionalGroupsSequence[0].PixelMeasuresSequence[0])
print("our measures", ours.SharedFunctionalGroupsSequence[0].PixelMeasuresSequence[0])
# highdicom orders its frames by position, tumorscan in its volume's slice order: compare by source image.
ours_hd = hd.seg.segread(out / (series_dir.name + "_seg.dcm"))
ref_hd = hd.seg.Segmentation.from_dataset(ref)
same = all(
    np.array_equal(
        a.get_pixels_by_source_instance(source_sop_instance_uids=[d.SOPInstanceUID], segment_numbers=[1])[0],
        ours_hd.get_pixels_by_source_instance(source_sop_instance_uids=[d.SOPInstanceUID], segment_numbers=[1])[0],
    )
    for d in imgs for a in [ref_hd]
)
print("every source slice's mask equal in highdicom's SEG and tumorscan's:", same)
assert same
