#!/usr/bin/env bash
# predict on a series stored as one multi-frame (enhanced) DICOM file, checked against the same
# series stored one file per slice:
#   interop/dicom-multiframe/run.sh [WORK_DIR]      (BIN=path/to/tumorscan to use that binary)
# Writes the bundled sample patient's FLAIR as a classic MR series with pydicom
# (../dicom-seg/make_series.py), converts it with highdicom into a Legacy Converted Enhanced MR
# file (uncompressed, and JPEG 2000 lossless: one encapsulated frame each), runs `tumorscan
# predict` on the series and on each file, and compares calls and masks slice by slice; the
# multi-frame runs' SEGs are read by highdicom frame by frame (check.py). Needs Python 3 and
# network access for pip on first use.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../common.sh
source "$here/../common.sh"
interop_setup tumorscan-multiframe-check "${1:-}" pydicom==3.0.2 highdicom==0.28.2 numpy pillow pylibjpeg==2.1.0 pylibjpeg-openjpeg==2.6.0 pyjpegls==1.5.1
rm -rf "$work/series" "$work/enhanced" "$work/enhanced-j2k" "$work/enhanced-jls" "$work/out"
"$venv/bin/python" "$here/../dicom-seg/make_series.py" "$root/samples/TCGA_CS_5393_19990606" "$work/series/MR_FLAIR"
"$venv/bin/python" "$here/to_enhanced.py" "$work/series/MR_FLAIR" "$work/enhanced/MR_FLAIR.dcm"
"$venv/bin/python" "$here/to_enhanced.py" "$work/series/MR_FLAIR" "$work/enhanced-j2k/MR_FLAIR.dcm" 1.2.840.10008.1.2.4.90
"$venv/bin/python" "$here/to_enhanced.py" "$work/series/MR_FLAIR" "$work/enhanced-jls/MR_FLAIR.dcm" 1.2.840.10008.1.2.4.80
for input in series enhanced enhanced-j2k enhanced-jls; do
    "$bin" predict "$work/$input/MR_FLAIR"* --out "$work/out/$input" > "$work/out-$input.log" 2>&1 || { cat "$work/out-$input.log"; exit 1; }
    echo "$input: $(grep -E '^[0-9]+ slices' "$work/out-$input.log")"
done
"$venv/bin/python" "$here/check.py" "$work/out/series" \
    "Legacy Converted Enhanced MR:$work/enhanced/MR_FLAIR.dcm:$work/out/enhanced" \
    "same, JPEG 2000 Lossless:$work/enhanced-j2k/MR_FLAIR.dcm:$work/out/enhanced-j2k" \
    "same, JPEG-LS Lossless:$work/enhanced-jls/MR_FLAIR.dcm:$work/out/enhanced-jls"
