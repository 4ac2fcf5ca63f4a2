"""Write the sample patient's FLAIR (green channel of each TIFF) as a DICOM MR series with pydicom,
independently of tumorscan's phantom writer."""
import sys, pathlib, datetime
import numpy as np
from PIL import Image
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import generate_uid, ExplicitVRLittleEndian, MRImageStorage

src = pathlib.Path(sys.argv[1]); dst = pathlib.Path(sys.argv[2]); dst.mkdir(parents=True)
study, series, frame = generate_uid(), generate_uid(), generate_uid()
tifs = sorted([t for t in src.glob("*.tif") if not t.stem.endswith("_mask")], key=lambda p: int(p.stem.rsplit("_", 1)[1]))
for k, t in enumerate(tifs, 1):
    flair = np.asarray(Image.open(t).convert("RGB"))[:, :, 1].astype(np.uint16) * 4
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = MRImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset(); ds.file_meta = meta
    ds.SOPClassUID = MRImageStorage; ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.PatientName = "Müller^Zoë"; ds.SpecificCharacterSet = "ISO_IR 192"
    ds.PatientID = "TCGA_CS_5393"; ds.PatientBirthDate = ""; ds.PatientSex = "F"
    ds.StudyInstanceUID = study; ds.SeriesInstanceUID = series; ds.FrameOfReferenceUID = frame
    ds.StudyDate = "19990606"; ds.StudyTime = "120000"; ds.ReferringPhysicianName = ""; ds.StudyID = "1"; ds.AccessionNumber = "A1"
    ds.Modality = "MR"; ds.SeriesNumber = 3; ds.InstanceNumber = k; ds.Manufacturer = "test"
    ds.PositionReferenceIndicator = ""
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.ImagePositionPatient = [-120.0, -110.5, 30.0 + 3.3 * k]
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.PixelSpacing = [0.9375, 0.9375]; ds.SliceThickness = 3.3
    ds.SamplesPerPixel = 1; ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = flair.shape; ds.BitsAllocated = 16; ds.BitsStored = 12; ds.HighBit = 11; ds.PixelRepresentation = 0
    ds.ScanningSequence = "SE"; ds.SequenceVariant = "NONE"; ds.ScanOptions = ""; ds.MRAcquisitionType = "2D"
    ds.EchoTime = 100; ds.RepetitionTime = 9000; ds.EchoTrainLength = 1
    ds.PixelData = flair.tobytes()
    ds.save_as(dst / f"IM{k:04d}.dcm", enforce_file_format=True)
print(len(tifs), "slices written")
