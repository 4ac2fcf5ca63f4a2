//! NIfTI-1 input (crate `nifti`) and output of predicted masks with the input's geometry.
//!
//! Axial slices are shown with rows flipped from NIfTI's y order (anterior up, as viewers
//! draw them); the mask volume is flipped back when written, so it overlays the input in
//! 3D Slicer or ITK-SNAP. A 4D volume with 3 volumes is read as the three sequences
//! (pre-contrast, FLAIR, post-contrast); a 3D volume is taken as FLAIR in all channels.

use super::{InputSlice, NiftiGeometry, Volume};
use nifti::{NiftiObject, ReaderOptions};
use std::io::Write;
use std::path::Path;

/// Largest voxel count accepted (guards against absurd declared sizes).
const MAX_VOXELS: usize = 512 * 512 * 1024;

/// Read a `.nii` / `.nii.gz` file.
pub fn read(path: &Path) -> Result<Volume, String> {
    let header = nifti::NiftiHeader::from_file(path).map_err(|e| format!("not a readable NIfTI-1 file: {e}"))?;
    let d = header.dim;
    let rank = d[0] as usize;
    if !(2..=4).contains(&rank) {
        return Err(format!(
            "unsupported NIfTI rank {rank}: expected a 3D volume (or 4D with 3 sequences)"
        ));
    }
    let (nx, ny) = (d[1] as usize, d[2] as usize);
    let nz = if rank >= 3 { d[3] as usize } else { 1 };
    let nc = if rank == 4 { d[4] as usize } else { 1 };
    if nx == 0 || ny == 0 || nz == 0 || nc == 0 {
        return Err(format!("NIfTI has a zero-sized dimension ({nx}x{ny}x{nz}x{nc})"));
    }
    if rank == 4 && nc != 3 && nc != 1 {
        return Err(format!(
            "4D NIfTI with {nc} volumes: expected 3 (pre-contrast, FLAIR, post-contrast)"
        ));
    }
    if nx.saturating_mul(ny).saturating_mul(nz).saturating_mul(nc) > MAX_VOXELS || nx > 8192 || ny > 8192 {
        return Err(format!("NIfTI declares {nx}x{ny}x{nz}x{nc} voxels, more than tumorscan accepts"));
    }
    let obj = ReaderOptions::new()
        .read_file(path)
        .map_err(|e| format!("cannot read NIfTI data: {e}"))?;
    let data: Vec<f32> = obj
        .into_volume()
        .into_nifti_typed_data::<f32>()
        .map_err(|e| format!("cannot convert NIfTI data: {e}"))?;
    if data.len() < nx * ny * nz * nc {
        return Err("NIfTI data is shorter than its header declares (truncated?)".into());
    }
    if let Some(i) = data.iter().position(|v| !v.is_finite()) {
        return Err(format!(
            "NIfTI holds NaN or infinite voxels (first at index {i}); clean the volume first"
        ));
    }
    // Map to 8 bits per channel by the volume's 0.5..99.5 percentile range.
    let plane = nx * ny * nz;
    let mut channels: Vec<Vec<u8>> = Vec::new();
    for c in 0..nc {
        let vals = &data[c * plane..(c + 1) * plane];
        let mut sorted: Vec<f32> = vals.iter().copied().step_by((plane / 200_000).max(1)).collect();
        sorted.sort_by(|a, b| a.total_cmp(b));
        let q = |p: f64| sorted[((sorted.len() - 1) as f64 * p).round() as usize];
        let (lo, hi) = (q(0.005), q(0.995));
        let scale = if hi > lo { 255.0 / (hi - lo) } else { 0.0 };
        channels.push(vals.iter().map(|&v| ((v - lo) * scale).clamp(0.0, 255.0).round() as u8).collect());
    }
    let stem = path
        .file_name()
        .map(|n| n.to_string_lossy().trim_end_matches(".gz").trim_end_matches(".nii").to_string())
        .unwrap_or_default();
    let spacing = (header.pixdim[1] as f64, header.pixdim[2] as f64);
    let spacing_ok = spacing.0 > 0.0 && spacing.1 > 0.0 && spacing.0.is_finite() && spacing.1.is_finite();
    let slices = (0..nz)
        .map(|z| {
            let mut rgb = vec![0u8; nx * ny * 3];
            for row in 0..ny {
                let y = ny - 1 - row; // anterior up
                for x in 0..nx {
                    let src = x + nx * (y + ny * z);
                    for k in 0..3 {
                        let c = if nc == 3 { k } else { 0 };
                        rgb[(row * nx + x) * 3 + k] = channels[c][src];
                    }
                }
            }
            InputSlice {
                label: format!("{}#{}", path.display(), z),
                stem: format!("{stem}_z{z:03}"),
                number: z as u32,
                width: nx as u32,
                height: ny as u32,
                rgb,
                spacing_mm: spacing_ok.then_some(spacing),
                truth: None,
                notes: if nc == 1 {
                    vec!["single-channel volume used as FLAIR in all three channels".into()]
                } else {
                    vec![]
                },
            }
        })
        .collect();
    let thickness = header.pixdim[3] as f64;
    Ok(Volume {
        id: stem,
        source: path.to_path_buf(),
        slices,
        nifti: Some(NiftiGeometry {
            header: Box::new(header),
            dims: (nx, ny, nz),
        }),
        slice_thickness_mm: (thickness > 0.0 && thickness.is_finite()).then_some(thickness),
    })
}

/// Write 0/1 masks (one per axial slice, in display orientation) as a gzipped NIfTI-1 uint8
/// volume with the input's voxel size and orientation.
pub fn write_mask(path: &Path, geom: &NiftiGeometry, masks: &[Vec<u8>]) -> std::io::Result<()> {
    let h = &geom.header;
    let (nx, ny, nz) = geom.dims;
    let mut hdr = vec![0u8; 352];
    let put_i16 = |b: &mut Vec<u8>, o: usize, v: i16| b[o..o + 2].copy_from_slice(&v.to_le_bytes());
    let put_f32 = |b: &mut Vec<u8>, o: usize, v: f32| b[o..o + 4].copy_from_slice(&v.to_le_bytes());
    hdr[0..4].copy_from_slice(&348i32.to_le_bytes());
    let dims = [3i16, nx as i16, ny as i16, nz as i16, 1, 1, 1, 1];
    for (i, v) in dims.iter().enumerate() {
        put_i16(&mut hdr, 40 + 2 * i, *v);
    }
    put_i16(&mut hdr, 70, 2); // datatype: uint8
    put_i16(&mut hdr, 72, 8); // bitpix
    for i in 0..8 {
        put_f32(&mut hdr, 76 + 4 * i, if i < 4 { h.pixdim[i] } else { 1.0 });
    }
    put_f32(&mut hdr, 108, 352.0); // vox_offset
    put_f32(&mut hdr, 112, 1.0); // scl_slope
    hdr[123] = h.xyzt_units;
    put_f32(&mut hdr, 124, 1.0); // cal_max
    let descrip = b"tumorscan tumour mask";
    hdr[148..148 + descrip.len()].copy_from_slice(descrip);
    put_i16(&mut hdr, 252, h.qform_code);
    put_i16(&mut hdr, 254, h.sform_code);
    for (i, v) in [h.quatern_b, h.quatern_c, h.quatern_d, h.quatern_x, h.quatern_y, h.quatern_z]
        .iter()
        .enumerate()
    {
        put_f32(&mut hdr, 256 + 4 * i, *v);
    }
    for (r, row) in [h.srow_x, h.srow_y, h.srow_z].iter().enumerate() {
        for (i, v) in row.iter().enumerate() {
            put_f32(&mut hdr, 280 + 16 * r + 4 * i, *v);
        }
    }
    hdr[344..348].copy_from_slice(b"n+1\0");
    let mut data = vec![0u8; nx * ny * nz];
    for (z, m) in masks.iter().enumerate().take(nz) {
        for row in 0..ny {
            let y = ny - 1 - row;
            for x in 0..nx {
                data[x + nx * (y + ny * z)] = m[row * nx + x];
            }
        }
    }
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&hdr)?;
    gz.write_all(&data)?;
    let bytes = gz.finish()?;
    tumorscan_data::table::write_atomic(path, &bytes)
}
