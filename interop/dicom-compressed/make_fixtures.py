"""Write the compressed DICOM test fixtures of crates/data/tests/dicom_compressed.rs: a small
synthetic phantom (no patient data) in each transfer syntax, encoded by GDCM, pydicom (with
pylibjpeg-openjpeg and pyjpegls, CharLS's Python binding) or OpenJPH (imagecodecs; HTJ2K), and
beside each file the read ones are the pixels pydicom decodes it to (int32 little endian,
row-major), which the Rust test compares with tumorscan's own decoding.
    make_fixtures.py OUT_DIR
"""
import sys, pathlib
import numpy as np
import pydicom
from pydicom import uid
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from compress import gdcm_compress  # noqa: E402
out = pathlib.Path(sys.argv[1]); out.mkdir(parents=True, exist_ok=True)
ROWS, COLS = 40, 56  # not square, so rows and columns cannot be swapped unnoticed


def phantom(bits, signed):
    """A bright disc on a ramp with noise, in `bits` stored bits."""
    rng = np.random.default_rng(bits + 100 * signed)
    y, x = np.mgrid[:ROWS, :COLS]
    hi = 2 ** bits - 1
    img = 0.3 * hi * x / COLS + 0.5 * hi * (((y - 22) ** 2 + (x - 30) ** 2) < 100) + rng.normal(0, hi * 0.02, (ROWS, COLS))
    img = np.clip(img, 0, hi)
    if signed:
        img = img - hi / 2
    return np.round(img).astype(np.int16 if signed else (np.uint8 if bits <= 8 else np.uint16))


def dataset(px, bits_stored):
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = uid.MRImageStorage
    meta.MediaStorageSOPInstanceUID = uid.generate_uid(entropy_srcs=["tumorscan fixture", str(px.dtype), str(bits_stored)])
    meta.TransferSyntaxUID = uid.ExplicitVRLittleEndian
    ds = Dataset(); ds.file_meta = meta
    ds.SOPClassUID = uid.MRImageStorage; ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = "1.2.826.0.1.3680043.10.1"; ds.SeriesInstanceUID = "1.2.826.0.1.3680043.10.2"
    ds.FrameOfReferenceUID = "1.2.826.0.1.3680043.10.3"; ds.PatientName = "Phantom^Compressed"; ds.PatientID = "PH2"
    ds.Modality = "MR"; ds.InstanceNumber = 1
    ds.ImagePositionPatient = [0, 0, 0]; ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]; ds.PixelSpacing = [1, 1]
    ds.SliceThickness = 3
    ds.SamplesPerPixel = 1; ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = px.shape
    ds.BitsAllocated = px.dtype.itemsize * 8; ds.BitsStored = bits_stored; ds.HighBit = bits_stored - 1
    ds.PixelRepresentation = int(px.dtype.kind == "i")
    ds.PixelData = px.tobytes()
    return ds


def enhanced_mr(first, n, bits_stored):
    """An Enhanced MR data set of `n` frames shaped as `first`, pixel data still to be set."""
    ds = dataset(first, bits_stored)
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = uid.EnhancedMRImageStorage
    ds.NumberOfFrames = n
    return ds


# name: (pixels, bits stored, transfer syntax, encoder, extra)
CASES = {
    "rle-u12": (phantom(12, False), 12, uid.RLELossless, "pydicom", {}),
    "rle-u8": (phantom(8, False), 8, uid.RLELossless, "pydicom", {}),
    "rle-s16": (phantom(12, True), 16, uid.RLELossless, "pydicom", {}),
    "jpeg-lossless-sv1-u12": (phantom(12, False), 12, uid.JPEGLosslessSV1, "gdcm", {}),
    "jpeg-lossless-sv1-s16": (phantom(12, True), 16, uid.JPEGLosslessSV1, "gdcm", {}),
    "jpeg-lossless-u16": (phantom(16, False), 16, uid.JPEGLossless, "gdcm", {}),
    "jpeg-baseline-u8": (phantom(8, False), 8, uid.JPEGBaseline8Bit, "gdcm", {}),
    "jpeg2000-lossless-u12": (phantom(12, False), 12, uid.JPEG2000Lossless, "pydicom", {}),
    "jpeg2000-lossless-s16": (phantom(12, True), 16, uid.JPEG2000Lossless, "pydicom", {}),
    "jpeg2000-u12": (phantom(12, False), 12, uid.JPEG2000, "pydicom", {"j2k_cr": [10]}),
    "jpeg-ls-lossless-u12": (phantom(12, False), 12, uid.JPEGLSLossless, "pydicom", {}),
    "jpeg-ls-lossless-s16": (phantom(12, True), 16, uid.JPEGLSLossless, "pydicom", {}),
    # CharLS (pyjpegls) allowed an error of up to 3 per sample.
    "jpeg-ls-near-lossless-u12": (phantom(12, False), 12, uid.JPEGLSNearLossless, "pydicom", {"jls_error": 3}),
    # HTJ2K by OpenJPH (imagecodecs); OpenJPH writes RPCL order, and TLM markers when asked.
    "htj2k-lossless-u12": (phantom(12, False), 12, uid.HTJ2KLossless, "openjph", {"reversible": True}),
    "htj2k-lossless-rpcl-s16": (phantom(12, True), 16, uid.HTJ2KLosslessRPCL, "openjph", {"reversible": True, "tlm": True}),
    "htj2k-u12": (phantom(12, False), 12, uid.HTJ2K, "openjph", {"reversible": False, "level": 0.001}),
    "jpeg-extended-u12": (phantom(12, False), 12, uid.JPEGExtended12Bit, "gdcm", {}),
}
# Transfer syntaxes tumorscan refuses by name: only the file is written.
REFUSED = {"jpeg-extended-u12"}
for name, (px, stored, ts, encoder, extra) in CASES.items():
    path = out / f"{name}.dcm"
    ds = dataset(px, stored)
    if encoder == "gdcm":
        ds.save_as(path, enforce_file_format=True)
        gdcm_compress(path, path, ts)
    elif encoder == "openjph":
        import imagecodecs
        ds.PixelData = encapsulate([imagecodecs.htj2k_encode(px, **extra)])
        ds.file_meta.TransferSyntaxUID = ts
        ds.save_as(path, enforce_file_format=True)
    else:
        ds.compress(ts, **extra)
        ds.save_as(path, enforce_file_format=True)
    back = pydicom.dcmread(path)
    assert back.file_meta.TransferSyntaxUID == ts, name
    if name in REFUSED:
        print(f"{name}: {path.stat().st_size} bytes, {ts} (tumorscan refuses it)")
        continue
    decoded = back.pixel_array.astype(np.int32)
    if ts in (uid.RLELossless, uid.JPEGLosslessSV1, uid.JPEGLossless, uid.JPEG2000Lossless, uid.JPEGLSLossless, uid.HTJ2KLossless, uid.HTJ2KLosslessRPCL):
        assert np.array_equal(decoded, px.astype(np.int32)), f"{name} is not lossless"
    decoded.astype("<i4").tofile(out / f"{name}.pixels")
    print(f"{name}: {path.stat().st_size} bytes, {ts}, max |decoded - original| {np.abs(decoded - px.astype(np.int32)).max()}")

# One JPEG 2000 frame split over two fragments (encoders may cut a frame anywhere).
ds = pydicom.dcmread(out / "jpeg2000-lossless-u12.dcm")
frame = next(pydicom.encaps.generate_frames(ds.PixelData, number_of_frames=1))
ds.PixelData = encapsulate([frame], fragments_per_frame=2)
ds.save_as(out / "jpeg2000-lossless-u12-two-fragments.dcm", enforce_file_format=True)
back = pydicom.dcmread(out / "jpeg2000-lossless-u12-two-fragments.dcm")
assert len(list(pydicom.encaps.generate_fragments(back.PixelData))) == 3  # the offset table and two fragments
assert np.array_equal(back.pixel_array, CASES["jpeg2000-lossless-u12"][0])
(out / "jpeg2000-lossless-u12-two-fragments.pixels").write_bytes((out / "jpeg2000-lossless-u12.pixels").read_bytes())
print("jpeg2000-lossless-u12-two-fragments: one frame in 2 fragments")

# Three frames of JPEG 2000 with an Extended Offset Table (7FE0,0001-0002, VR OV), which
# dicom-rs 0.8 misparses; tumorscan drops the optional table before parsing.
frames = np.stack([CASES["jpeg2000-lossless-u12"][0] + 100 * k for k in range(3)]).astype(np.uint16)
ds = enhanced_mr(frames[0], len(frames), 12)
ds.PixelData = frames.tobytes()
ds.compress(uid.JPEG2000Lossless, encapsulate_ext=True)
ds.save_as(out / "jpeg2000-lossless-u12-3-frames-eot.dcm", enforce_file_format=True)
back = pydicom.dcmread(out / "jpeg2000-lossless-u12-3-frames-eot.dcm")
assert "ExtendedOffsetTable" in back and np.array_equal(back.pixel_array, frames)
back.pixel_array.astype("<i4").tofile(out / "jpeg2000-lossless-u12-3-frames-eot.pixels")
print("jpeg2000-lossless-u12-3-frames-eot: 3 frames with an Extended Offset Table")

# Two JPEG-LS frames in one file, the second near-lossless (NEAR 3) though the file says JPEG-LS
# Lossless: only that frame was coded lossily.
frames = [next(pydicom.encaps.generate_frames(pydicom.dcmread(out / f"{n}.dcm").PixelData, number_of_frames=1))
          for n in ("jpeg-ls-lossless-u12", "jpeg-ls-near-lossless-u12")]
ds = enhanced_mr(CASES["jpeg-ls-lossless-u12"][0], 2, 12)
ds.PixelData = encapsulate(frames)
ds.file_meta.TransferSyntaxUID = uid.JPEGLSLossless
ds.save_as(out / "jpeg-ls-2-frames-second-near.dcm", enforce_file_format=True)
back = pydicom.dcmread(out / "jpeg-ls-2-frames-second-near.dcm")
back.pixel_array.astype("<i4").tofile(out / "jpeg-ls-2-frames-second-near.pixels")
print("jpeg-ls-2-frames-second-near: 2 JPEG-LS frames, the second near-lossless")

# Three JPEG-LS frames in two fragments each and no offset table: told apart by the fragments
# that open with SOI, as DCMTK does.
frames = np.stack([CASES["jpeg-ls-lossless-u12"][0] + 100 * k for k in range(3)]).astype(np.uint16)
ds = enhanced_mr(frames[0], len(frames), 12)
ds.PixelData = frames.tobytes()
ds.compress(uid.JPEGLSLossless)
coded = list(pydicom.encaps.generate_frames(ds.PixelData, number_of_frames=3))
ds.PixelData = encapsulate(coded, fragments_per_frame=2, has_bot=False)
ds.save_as(out / "jpeg-ls-3-frames-6-fragments-no-table.dcm", enforce_file_format=True)
back = pydicom.dcmread(out / "jpeg-ls-3-frames-6-fragments-no-table.dcm")
assert len(list(pydicom.encaps.generate_fragments(back.PixelData))) == 7 and np.array_equal(back.pixel_array, frames)
back.pixel_array.astype("<i4").tofile(out / "jpeg-ls-3-frames-6-fragments-no-table.pixels")
print("jpeg-ls-3-frames-6-fragments-no-table: 3 frames of 2 fragments, empty offset table")

# DCMTK's encoders (dcmcjpls / dcmcjpeg 3.6.7, Debian's dcmtk), where installed: dcmcjpls pads an
# odd-length JPEG-LS stream with a 0xFF fill byte before its EOI, and both code 12 bits stored
# under HighBit 15 as whole 16-bit words (precision 16). Beside each: the stored (12-bit) values.
import shutil, subprocess  # noqa: E402
if shutil.which("dcmcjpls") and shutil.which("dcmcjpeg"):
    px = CASES["jpeg-ls-lossless-u12"][0]
    for name, tool, words, high_bit in [
        ("jpeg-ls-lossless-u12-dcmtk-fill", "dcmcjpls", px, 11),
        ("jpeg-ls-lossless-u12-high-bit-15-dcmtk", "dcmcjpls", px << 4, 15),
        ("jpeg-lossless-sv1-u12-high-bit-15-dcmtk", "dcmcjpeg", px << 4, 15),
    ]:
        ds = dataset(words, 12)
        ds.HighBit = high_bit
        native = out / f"{name}-native.dcm"
        ds.save_as(native, enforce_file_format=True)
        subprocess.run([tool, str(native), str(out / f"{name}.dcm")], check=True)
        native.unlink()
        back = pydicom.dcmread(out / f"{name}.dcm")
        frame = next(pydicom.encaps.generate_frames(back.PixelData, number_of_frames=1))
        precision = frame[frame.index(b"\xff\xf7" if tool == "dcmcjpls" else b"\xff\xc3") + 4]
        print(f"{name}: {len(frame)} bytes, {back.file_meta.TransferSyntaxUID}, ends {frame[-4:].hex()}, precision {precision}")
        px.astype("<i4").tofile(out / f"{name}.pixels")
    assert b"\xff\xff\xd9" in (out / "jpeg-ls-lossless-u12-dcmtk-fill.dcm").read_bytes(), "no fill byte before EOI"
else:
    print("dcmcjpls / dcmcjpeg not found: DCMTK's fixtures not written")
