#!/usr/bin/env python3
"""Store export_nifti.py's volumes again in other voxel orders, as other converters write them.

For every PATIENT_4d.nii.gz and PATIENT_truth.nii.gz in SRC (stored x = -i, y = j, z = k: the
patient's left along i, anterior along j, superior along k), writes into OUT/<order>/ the same
voxels, with the sform that says where each lies:
  lps       i to the left, j posterior, k superior (DICOM's row order; ITK's default)
  ras       i to the right, j anterior, k superior (nibabel's canonical order)
  sagittal  i anterior, j superior, k to the left: the axial slices stored as sagittal ones
Every voxel keeps its place in the patient, so a reader that follows the header shows each
order as the same axial slices. Python standard library only.

usage: restore.py SRC OUT
"""
import gzip, os, struct, sys

ORDERS = {
    # name: sform rows (x, y, z) over voxel axes (i, j, k) of the new file
    "lps": [[-1, 0, 0], [0, -1, 0], [0, 0, 1]],
    "ras": [[1, 0, 0], [0, 1, 0], [0, 0, 1]],
    "sagittal": [[0, 0, -1], [1, 0, 0], [0, 1, 0]],
}


def read(path):
    b = gzip.open(path).read()
    dim = struct.unpack_from("<8h", b, 40)
    nt = dim[4] if dim[0] == 4 else 1
    return bytearray(b[:352]), dim[1], dim[2], dim[3], nt, b[352:]


def restore(order, nx, ny, nz, nt, data):
    """Voxels of `order` and its dims, from the source's (i fastest)."""
    out = bytearray()
    plane = nx * ny
    for t in range(nt):
        vol = data[t * plane * nz:(t + 1) * plane * nz]
        if order == "lps":  # rows reversed
            for k in range(nz):
                for j in reversed(range(ny)):
                    out += vol[k * plane + j * nx:k * plane + (j + 1) * nx]
        elif order == "ras":  # columns reversed
            for k in range(nz):
                for j in range(ny):
                    out += vol[k * plane + j * nx:k * plane + (j + 1) * nx][::-1]
        else:  # sagittal: new i = old j, new j = old k, new k = old i
            for i in range(nx):
                for k in range(nz):
                    out += vol[k * plane + i:(k + 1) * plane:nx]
    dims = (ny, nz, nx) if order == "sagittal" else (nx, ny, nz)
    return dims, bytes(out)


def main(src, out):
    for name in sorted(os.listdir(src)):
        if not (name.endswith("_4d.nii.gz") or name.endswith("_truth.nii.gz")):
            continue
        head, nx, ny, nz, nt, data = read(os.path.join(src, name))
        for order, rows in ORDERS.items():
            dims, voxels = restore(order, nx, ny, nz, nt, data)
            h = bytearray(head)
            struct.pack_into("<3h", h, 42, *dims)
            struct.pack_into("<hh", h, 252, 0, 1)  # qform_code 0, sform_code 1
            # Offsets that keep each voxel where the source puts it (x = -i, y = j, z = k).
            offset = {"lps": (0, ny - 1, 0), "ras": (-(nx - 1), 0, 0)}.get(order, (0, 0, 0))
            struct.pack_into("<12f", h, 280, *[v for r, o in zip(rows, offset) for v in (*r, o)])
            os.makedirs(os.path.join(out, order), exist_ok=True)
            with gzip.open(os.path.join(out, order, name), "wb", compresslevel=1) as f:
                f.write(bytes(h) + voxels)
        print(name, flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
