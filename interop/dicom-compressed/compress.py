"""Rewrite every .dcm of a folder in a compressed transfer syntax, with encoders independent of
tumorscan: GDCM for the JPEG family, OpenJPH (imagecodecs) for HTJ2K, pydicom
(pylibjpeg-openjpeg, pyjpegls, its own RLE) for the rest. Lossless syntaxes are checked to decode (pydicom, pylibjpeg) to the
input's pixels.
    compress.py SRC_DIR DST_DIR SYNTAX       SYNTAX: one of the keys of SYNTAXES below
"""
import sys, pathlib
import numpy as np
import pydicom
from pydicom import uid

# name: (transfer syntax UID, encoder, lossless)
SYNTAXES = {
    "rle": (uid.RLELossless, "pydicom", True),
    "jpeg-lossless-sv1": (uid.JPEGLosslessSV1, "gdcm", True),
    "jpeg-lossless": (uid.JPEGLossless, "gdcm", True),
    "jpeg-baseline": (uid.JPEGBaseline8Bit, "gdcm", False),
    "jpeg-extended": (uid.JPEGExtended12Bit, "gdcm", False),
    "jpeg2000-lossless": (uid.JPEG2000Lossless, "pydicom", True),
    "jpeg2000": (uid.JPEG2000, "pydicom", False),
    "jpeg-ls-lossless": (uid.JPEGLSLossless, "pydicom", True),
    "jpeg-ls-near-lossless": (uid.JPEGLSNearLossless, "pydicom", False),
    # DCMTK's own encoders, where installed (Debian's dcmtk): its JPEG-LS pads odd-length
    # streams with a 0xFF fill byte before the end marker.
    "jpeg-ls-lossless-dcmtk": (uid.JPEGLSLossless, "dcmcjpls", True),
    "jpeg-lossless-sv1-dcmtk": (uid.JPEGLosslessSV1, "dcmcjpeg", True),
    "htj2k-lossless": (uid.HTJ2KLossless, "openjph", True),
    "htj2k": (uid.HTJ2K, "openjph", False),
}


def to_8_bits(ds):
    """The stored values scaled from BitsStored to 8 bits, as the baseline JPEG series holds them."""
    return np.round(ds.pixel_array * 255.0 / (2 ** ds.BitsStored - 1)).astype(np.uint8)


def gdcm_compress(src, dst, ts_uid):
    import gdcm
    reader = gdcm.ImageReader(); reader.SetFileName(str(src))
    assert reader.Read(), src
    change = gdcm.ImageChangeTransferSyntax()
    change.SetTransferSyntax(gdcm.TransferSyntax(gdcm.TransferSyntax.GetTSType(ts_uid)))
    change.SetInput(reader.GetImage())
    assert change.Change(), f"gdcm could not encode {src} as {ts_uid}"
    writer = gdcm.ImageWriter(); writer.SetFileName(str(dst))
    writer.SetFile(reader.GetFile()); writer.SetImage(change.GetOutput())
    assert writer.Write(), dst


def main():
    src, dst, name = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2]), sys.argv[3]
    ts_uid, encoder, lossless = SYNTAXES[name]
    dst.mkdir(parents=True, exist_ok=False)
    for f in sorted(src.glob("*.dcm")):
        out = dst / f.name
        ds = pydicom.dcmread(f)
        if encoder in ("dcmcjpls", "dcmcjpeg"):
            import subprocess
            subprocess.run([encoder, str(f), str(out)], check=True)
        elif encoder == "gdcm":
            if name == "jpeg-baseline" and ds.BitsAllocated != 8:
                # Baseline JPEG holds 8-bit samples: the series is scaled to 8 bits first.
                ds.PixelData = to_8_bits(ds).tobytes()
                ds.BitsAllocated = ds.BitsStored = 8; ds.HighBit = 7
                ds.save_as(out, enforce_file_format=True)
                gdcm_compress(out, out, ts_uid)
            else:
                gdcm_compress(f, out, ts_uid)
        elif encoder == "openjph":
            # HTJ2K by OpenJPH (imagecodecs): reversible, or irreversible at quantisation step 0.001.
            import imagecodecs
            from pydicom.encaps import encapsulate
            args = {"reversible": True} if lossless else {"reversible": False, "level": 0.001}
            ds.PixelData = encapsulate([imagecodecs.htj2k_encode(ds.pixel_array, **args)])
            ds.file_meta.TransferSyntaxUID = ts_uid
            ds.save_as(out, enforce_file_format=True)
        else:
            # Lossy JPEG 2000 at about 20:1 (one quality layer), JPEG-LS with an error of up to 3
            # per sample (CharLS's NEAR); the rest lossless.
            extra = {"jpeg2000": {"j2k_cr": [20]}, "jpeg-ls-near-lossless": {"jls_error": 3}}
            ds.compress(ts_uid, **extra.get(name, {}))
            ds.save_as(out, enforce_file_format=True)
        back = pydicom.dcmread(out)
        assert back.file_meta.TransferSyntaxUID == ts_uid, (out, back.file_meta.TransferSyntaxUID)
        if lossless:
            assert np.array_equal(back.pixel_array, pydicom.dcmread(f).pixel_array), f"{out} does not decode to its input"
    print(f"{name}: {len(list(dst.glob('*.dcm')))} files as {ts_uid}")


if __name__ == "__main__":
    main()
