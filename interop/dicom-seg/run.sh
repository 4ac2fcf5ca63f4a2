#!/usr/bin/env bash
# predict's DICOM Segmentation checked by independent DICOM software (pydicom, highdicom):
#   interop/dicom-seg/run.sh [WORK_DIR]      (BIN=path/to/tumorscan to use that binary)
# Writes the bundled sample patient's FLAIR as an MR series with pydicom (its own UIDs, geometry
# and a non-ASCII patient name), runs `tumorscan predict` on it, then reads the SEG back with
# highdicom (source instances, each slice's mask against predict's PNGs, volume geometry),
# compares its attributes with highdicom's own SEG of the same masks, and rereads and rewrites it
# under pydicom's strict validation. Needs Python 3 and network access for pip on first use.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../common.sh
source "$here/../common.sh"
interop_setup tumorscan-seg-check "${1:-}" pydicom==3.0.2 highdicom==0.28.2 numpy pillow
rm -rf "$work/series" "$work/out"
"$venv/bin/python" "$here/make_series.py" "$root/samples/TCGA_CS_5393_19990606" "$work/series/MR_FLAIR"
"$bin" predict "$work/series/MR_FLAIR" --out "$work/out"
"$venv/bin/python" "$here/check_seg.py" "$work/series/MR_FLAIR" "$work/out"
"$venv/bin/python" "$here/compare_hd.py" "$work/series/MR_FLAIR" "$work/out"
"$venv/bin/python" "$here/strict.py" "$work/out/MR_FLAIR_seg.dcm"
