#!/usr/bin/env python3
"""Write each patient of a fold as NIfTI volumes, the way a clinical export stores them.

For every patient of fold FOLD in FOLDS (kaggle_3m layout under DATA) it writes, in OUT:
  PATIENT_pre.nii.gz, PATIENT_flair.nii.gz, PATIENT_post.nii.gz  one 3D volume per sequence
  PATIENT_4d.nii.gz                                             the three as one 4D volume
  PATIENT_truth.nii.gz                                          the hand-drawn mask (0/1)
uint8 voxels, 1 mm voxels. Display row r is stored at NIfTI y = ny - 1 - r and column c at
x = c, with an sform that says so: x = -i (the slices are taken to show the patient's right on
the left, as DICOM viewers show axial slices), y = j (anterior up), z = k. (Until session 55 the
sform was the identity, which says the opposite left and right; tumorscan did not read it then.)
Python standard library only (PNG decoded here: 8-bit RGB or grey, non-interlaced).

usage: export_nifti.py DATA FOLDS FOLD OUT
"""
import csv, gzip, os, struct, sys, zlib


def read_png(path):
    b = open(path, "rb").read()
    assert b[:8] == b"\x89PNG\r\n\x1a\n", path
    pos, idat, w = 8, [], None
    while pos < len(b):
        n, kind = struct.unpack(">I4s", b[pos:pos + 8])
        data = b[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            w, h, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", data)
            assert depth == 8 and interlace == 0 and ctype in (0, 2), (path, depth, ctype)
            bpp = 3 if ctype == 2 else 1
        elif kind == b"IDAT":
            idat.append(data)
        pos += 12 + n
    raw = zlib.decompress(b"".join(idat))
    stride = w * bpp
    out = bytearray(stride * h)
    prev = bytearray(stride)
    for y in range(h):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            up = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + up) & 255
            elif f == 3:
                line[i] = (line[i] + ((a + up) >> 1)) & 255
            elif f == 4:
                p = a + up - c
                pa, pb, pc = abs(p - a), abs(p - up), abs(p - c)
                pr = a if pa <= pb and pa <= pc else (up if pb <= pc else c)
                line[i] = (line[i] + pr) & 255
        out[y * stride:(y + 1) * stride] = line
        prev = line
    return w, h, bpp, bytes(out)


def write_nifti(path, nx, ny, nz, nt, data):
    dim = [4 if nt > 1 else 3, nx, ny, nz, nt, 1, 1, 1]
    h = bytearray(352)
    struct.pack_into("<i", h, 0, 348)
    struct.pack_into("<8h", h, 40, *dim)
    struct.pack_into("<hh", h, 70, 2, 8)  # uint8
    struct.pack_into("<8f", h, 76, 1, 1, 1, 1, 1, 1, 1, 1)
    struct.pack_into("<f", h, 108, 352.0)
    struct.pack_into("<hh", h, 252, 0, 1)  # qform_code 0, sform_code 1
    struct.pack_into("<12f", h, 280, -1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0)
    h[344:348] = b"n+1\0"
    with gzip.open(path, "wb", compresslevel=1) as f:
        f.write(bytes(h) + bytes(data))


def main(data, folds, fold, out):
    os.makedirs(out, exist_ok=True)
    rows = list(csv.DictReader(open(folds)))
    patients = sorted(r["patient"] for r in rows if r["fold"] == fold)
    for p in patients:
        folder = next(d for d in os.listdir(data) if d.startswith(p))
        names = [f for f in os.listdir(os.path.join(data, folder)) if f.endswith(".png") and not f.endswith("_mask.png")]
        names.sort(key=lambda f: int(f.rsplit("_", 1)[1].split(".")[0]))
        slices = [read_png(os.path.join(data, folder, f)) for f in names]
        masks = [read_png(os.path.join(data, folder, f[:-4] + "_mask.png")) for f in names]
        nx, ny, nz = slices[0][0], slices[0][1], len(slices)
        seq = [bytearray(nx * ny * nz) for _ in range(3)]
        truth = bytearray(nx * ny * nz)
        for z, ((w, h, bpp, px), (_, _, mb, m)) in enumerate(zip(slices, masks)):
            assert (w, h, bpp) == (nx, ny, 3)
            for row in range(ny):
                y = ny - 1 - row
                base = nx * (y + ny * z)
                for x in range(nx):
                    i = (row * nx + x) * 3
                    for c in range(3):
                        seq[c][base + x] = px[i + c]
                    truth[base + x] = 1 if m[(row * nx + x) * mb] else 0
        for c, name in enumerate(["pre", "flair", "post"]):
            write_nifti(os.path.join(out, f"{p}_{name}.nii.gz"), nx, ny, nz, 1, seq[c])
        write_nifti(os.path.join(out, f"{p}_4d.nii.gz"), nx, ny, nz, 3, seq[0] + seq[1] + seq[2])
        write_nifti(os.path.join(out, f"{p}_truth.nii.gz"), nx, ny, nz, 1, truth)
        print(p, nz, "slices", flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:5])
