"""Read every element of a DICOM file and write it again under pydicom's strict (RAISE)
validation of values against their VRs."""
import io, sys
import pydicom
from pydicom import config

config.settings.reading_validation_mode = config.RAISE
config.settings.writing_validation_mode = config.RAISE
ds = pydicom.dcmread(sys.argv[1])

def walk(d):
    for e in d:
        if e.VR == "SQ":
            for item in e.value:
                walk(item)
        else:
            _ = e.value

walk(ds)
buf = io.BytesIO()
ds.save_as(buf)
original = open(sys.argv[1], "rb").read()
print(f"strict read and rewrite: {len(buf.getvalue())} bytes, identical to the file: {buf.getvalue() == original}")
