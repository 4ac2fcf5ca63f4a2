#!/usr/bin/env bash
# predict on DICOM series stored compressed, checked against the same series uncompressed:
#   interop/dicom-compressed/run.sh [WORK_DIR]      (BIN=path/to/tumorscan to use that binary)
# Writes the bundled sample patient's FLAIR as an MR series with pydicom (as interop/dicom-seg
# does), has GDCM, OpenJPH, pydicom (pylibjpeg-openjpeg, pyjpegls) and DCMTK where installed
# rewrite it in each syntax,
# runs `tumorscan predict` on every copy and compares masks, calls and overlays with the
# uncompressed run (check.py; lossless syntaxes must match exactly). Syntaxes tumorscan does not
# read must be refused by name. Needs Python 3 and network access for pip on first use.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../common.sh
source "$here/../common.sh"
interop_setup tumorscan-compressed-check "${1:-}" pydicom==3.0.2 numpy pillow python-gdcm==3.2.6 pylibjpeg==2.1.0 pylibjpeg-openjpeg==2.6.0 pylibjpeg-libjpeg==2.5.0 pyjpegls==1.5.1 imagecodecs==2026.3.6
rm -rf "$work/series" "$work/out"
"$venv/bin/python" "$here/../dicom-seg/make_series.py" "$root/samples/TCGA_CS_5393_19990606" "$work/series/native"
read_ok="rle jpeg-lossless-sv1 jpeg-lossless jpeg-baseline jpeg2000-lossless jpeg2000 htj2k-lossless htj2k jpeg-ls-lossless jpeg-ls-near-lossless"
refused="jpeg-extended"
# DCMTK's encoders too, where installed (apt-get install dcmtk).
if command -v dcmcjpls > /dev/null && command -v dcmcjpeg > /dev/null; then read_ok="$read_ok jpeg-ls-lossless-dcmtk jpeg-lossless-sv1-dcmtk"; fi
for s in $read_ok $refused; do "$venv/bin/python" "$here/compress.py" "$work/series/native" "$work/series/$s" "$s"; done
for s in native $read_ok; do
    start=$(date +%s.%N)
    "$bin" predict "$work/series/$s" --out "$work/out/$s" > "$work/out-$s.log" 2>&1
    echo "$s: predicted in $(echo "$(date +%s.%N) - $start" | bc) s$(grep -o 'slices stored with [^:]*' "$work/out-$s.log" | sed 's/^/; note: /' || true)"
done
for s in $refused; do
    if "$bin" predict "$work/series/$s" --out "$work/out/$s" > "$work/out-$s.log" 2>&1; then
        echo "$s: read, but tumorscan should refuse it"; exit 1
    fi
    echo "$s: refused: $(grep -o 'transfer syntax .* is not read' "$work/out-$s.log" | head -1)"
done
"$venv/bin/python" "$here/check.py" "$work" $read_ok
