//! NIfTI-1 input (crate `nifti`) and output of predicted masks with the input's geometry.
//!
//! Axial slices are shown as the header's orientation says ([`crate::nifti_axes`]: anterior
//! up, the patient's right on the left, whatever order the voxels are stored in); the mask
//! volume is written back in the input's voxel order, so it overlays the input in 3D Slicer or
//! ITK-SNAP. A 4D volume with 3 volumes is read as the three sequences
//! (pre-contrast, FLAIR, post-contrast); a 3D volume is taken as FLAIR in all channels.
//!
//! Gzip is recognised by its magic bytes (not the file name). The header is checked before
//! anything else is allocated: rank, dimensions ([`MAX_SIDE`] per slice side, [`MAX_VOXELS`]
//! in all), data type and `vox_offset` ([`MAX_VOX_OFFSET`]); then at most the bytes the
//! header declares are read (so a gzip bomb or a lying header cannot make the reader
//! allocate more than the declared, bounded size). Each axial slice becomes one input.
//! Intensities are scaled to 8 bits by the volume's 0.5..99.5 percentile range (per-volume
//! z-scoring follows anyway). NaN or infinite voxels are an error, as are zero-sized
//! dimensions. Header/image pairs (`.hdr`/`.img`) are not supported.

use crate::nifti_axes::{mm_per_unit, Layout};
use crate::volume::{InputSlice, NiftiGeometry, Volume};
use ::nifti::{InMemNiftiVolume, NiftiHeader, NiftiType, NiftiVolume};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;

/// Largest voxel count accepted, all channels together (guards against absurd declared sizes).
pub const MAX_VOXELS: usize = 512 * 512 * 1024;
/// Largest width or height of an axial slice, as for slice images.
pub const MAX_SIDE: usize = crate::image_io::MAX_SIDE as usize;
/// Largest `vox_offset` (header plus extensions) accepted.
pub const MAX_VOX_OFFSET: usize = 16 << 20;
/// Size of a NIfTI-1 header.
const HEADER_BYTES: usize = 348;
/// Header plus the 4-byte extender: where the data of a `.nii` starts at the earliest.
const MIN_VOX_OFFSET: usize = 352;

/// A NIfTI file name without `.nii` / `.nii.gz` (in any letter case).
pub fn stem_of(file_name: &str) -> String {
    let lower = file_name.to_ascii_lowercase();
    let cut = lower
        .strip_suffix(".nii.gz")
        .or_else(|| lower.strip_suffix(".nii"))
        .map_or(file_name.len(), str::len);
    file_name[..cut].to_string()
}

/// Read a `.nii` / `.nii.gz` file.
pub fn read(path: &Path) -> Result<Volume, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("cannot read: {e}"))?;
    decode(path, BufReader::new(file))
}

/// Read a NIfTI-1 volume (plain or gzipped) from memory; `name` stands for the file path in
/// labels, stems and messages.
pub fn read_bytes(name: &str, bytes: &[u8]) -> Result<Volume, String> {
    decode(Path::new(name), bytes)
}

fn decode<R: BufRead>(path: &Path, source: R) -> Result<Volume, String> {
    let (header, dims, data) = read_plain_or_gzipped(source)?;
    to_volume(path, header, dims, &data)
}

/// [`read_raw`] on a plain or gzipped file, told apart by its first bytes.
fn read_plain_or_gzipped<R: BufRead>(mut source: R) -> Result<(NiftiHeader, Dims, Vec<f32>), String> {
    let gz = source
        .fill_buf()
        .map_err(|e| format!("cannot read: {e}"))?
        .starts_with(&[0x1f, 0x8b]);
    let (header, dims, data) = if gz {
        read_raw(flate2::bufread::MultiGzDecoder::new(source))?
    } else {
        read_raw(source)?
    };
    if let Some(i) = data.iter().position(|v| !v.is_finite()) {
        return Err(format!(
            "NIfTI holds NaN or infinite voxels (first at index {i}); clean the volume first"
        ));
    }
    Ok((header, dims, data))
}

/// Dimensions accepted from a header: x, y, z and channels (1 or 3).
#[derive(Debug, Clone, Copy)]
struct Dims {
    nx: usize,
    ny: usize,
    nz: usize,
    nc: usize,
}

impl Dims {
    fn voxels(&self) -> usize {
        self.nx * self.ny * self.nz * self.nc
    }
}

/// Check the header before anything sized by it is allocated.
fn check_header(header: &NiftiHeader) -> Result<(Dims, usize), String> {
    let d = header.dim;
    let rank = d[0] as usize;
    if !(2..=4).contains(&rank) {
        return Err(format!(
            "unsupported NIfTI rank {rank}: expected a 3D volume (or 4D with 3 sequences)"
        ));
    }
    // The crate reads the signed 16-bit dimensions unsigned: -5 would pass as 65531.
    if let Some(&v) = d[1..=rank].iter().find(|&&v| (v as i16) < 0) {
        return Err(format!("NIfTI has a negative dimension ({})", v as i16));
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
    if nx > MAX_SIDE || ny > MAX_SIDE || nx * ny * nz * nc > MAX_VOXELS {
        return Err(format!("NIfTI declares {nx}x{ny}x{nz}x{nc} voxels, more than tumorscan accepts"));
    }
    let datatype = header
        .data_type()
        .map_err(|_| format!("unknown NIfTI data type code {}", header.datatype))?;
    let bytes_per_voxel = match datatype {
        NiftiType::Uint8
        | NiftiType::Int8
        | NiftiType::Uint16
        | NiftiType::Int16
        | NiftiType::Uint32
        | NiftiType::Int32
        | NiftiType::Uint64
        | NiftiType::Int64
        | NiftiType::Float32
        | NiftiType::Float64 => datatype.size_of(),
        other => return Err(format!("unsupported NIfTI data type {other:?}: expected integer or real voxels")),
    };
    Ok((Dims { nx, ny, nz, nc }, bytes_per_voxel))
}

/// How a NIfTI file (plain or gzipped, in memory) will be read, from its header alone and with
/// the same checks as [`read_bytes`]: `[width, height, slices, channels]` of its axial slices as
/// shown, so that a caller can refuse a volume too large for it before anything sized by the
/// header is decompressed.
pub fn declared_dims(bytes: &[u8]) -> Result<[usize; 4], String> {
    let header = |source: &mut dyn Read| {
        read_header(source).map(|(_, h, d, _)| {
            let (width, height, slices) = Layout::of_header(&h, (d.nx, d.ny, d.nz)).0.shown();
            [width, height, slices, d.nc]
        })
    };
    if bytes.starts_with(&[0x1f, 0x8b]) {
        header(&mut flate2::bufread::MultiGzDecoder::new(bytes))
    } else {
        header(&mut &bytes[..])
    }
}

/// Read and check the header: the header bytes read, the header, its dimensions and bytes per voxel.
fn read_header<R: Read + ?Sized>(source: &mut R) -> Result<(Vec<u8>, NiftiHeader, Dims, usize), String> {
    let mut head = Vec::with_capacity(MIN_VOX_OFFSET);
    (&mut *source)
        .take(HEADER_BYTES as u64)
        .read_to_end(&mut head)
        .map_err(|e| format!("not a readable NIfTI-1 file: {e}"))?;
    if head.len() < HEADER_BYTES {
        return Err(format!(
            "not a readable NIfTI-1 file: {} bytes, shorter than the {HEADER_BYTES}-byte header",
            head.len()
        ));
    }
    let header = NiftiHeader::from_reader(&head[..]).map_err(|e| format!("not a readable NIfTI-1 file: {e}"))?;
    if &header.magic == b"ni1\0" {
        return Err("NIfTI header without image data (.hdr/.img pair): convert it to a single .nii or .nii.gz file".into());
    }
    let (dims, bytes_per_voxel) = check_header(&header)?;
    Ok((head, header, dims, bytes_per_voxel))
}

/// Read and check the header, then exactly the voxel bytes it declares (no more).
fn read_raw<R: Read>(mut source: R) -> Result<(NiftiHeader, Dims, Vec<f32>), String> {
    let (head, mut header, dims, bytes_per_voxel) = read_header(&mut source)?;
    // `vox_offset` below 352 (some writers leave 0) means "right after the header".
    if header.vox_offset.is_nan() || header.vox_offset > MAX_VOX_OFFSET as f32 {
        return Err(format!(
            "NIfTI vox_offset {} is not a usable data offset (at most {MAX_VOX_OFFSET} accepted)",
            header.vox_offset
        ));
    }
    let offset = (header.vox_offset.max(0.0) as usize).max(MIN_VOX_OFFSET);
    let data_bytes = dims.voxels() * bytes_per_voxel;
    let mut raw = head;
    source
        .take((offset + data_bytes - HEADER_BYTES) as u64)
        .read_to_end(&mut raw)
        .map_err(|e| format!("cannot read NIfTI data: {e}"))?;
    if raw.len() < offset + data_bytes {
        return Err("NIfTI data is shorter than its header declares (truncated?)".into());
    }
    // The data type decides the voxel size; a disagreeing `bitpix` is ignored.
    header.bitpix = (bytes_per_voxel * 8) as i16;
    let volume =
        InMemNiftiVolume::from_reader(&raw[offset..offset + data_bytes], &header).map_err(|e| format!("cannot read NIfTI data: {e}"))?;
    drop(raw);
    if volume.dim().iter().map(|&d| d as usize).product::<usize>() != dims.voxels() {
        return Err("NIfTI dimensions are inconsistent".into());
    }
    let data = to_f32(volume, header.scl_slope, header.scl_inter)?;
    if data.len() < dims.voxels() {
        return Err("NIfTI data is shorter than its header declares (truncated?)".into());
    }
    Ok((header, dims, data))
}

/// Voxels as f32, with the header's `scl_slope` / `scl_inter` applied when the slope is set.
fn to_f32(volume: InMemNiftiVolume, slope: f32, inter: f32) -> Result<Vec<f32>, String> {
    fn cast<T: ::nifti::DataElement>(v: InMemNiftiVolume, f: impl Fn(T) -> f32) -> Result<Vec<f32>, String> {
        let data = v
            .into_nifti_typed_data::<T>()
            .map_err(|e| format!("cannot convert NIfTI data: {e}"))?;
        Ok(data.into_iter().map(f).collect())
    }
    let mut data = match volume.data_type() {
        NiftiType::Uint8 => cast(volume, |v: u8| v as f32),
        NiftiType::Int8 => cast(volume, |v: i8| v as f32),
        NiftiType::Uint16 => cast(volume, |v: u16| v as f32),
        NiftiType::Int16 => cast(volume, |v: i16| v as f32),
        NiftiType::Uint32 => cast(volume, |v: u32| v as f32),
        NiftiType::Int32 => cast(volume, |v: i32| v as f32),
        NiftiType::Uint64 => cast(volume, |v: u64| v as f32),
        NiftiType::Int64 => cast(volume, |v: i64| v as f32),
        NiftiType::Float32 => cast(volume, |v: f32| v),
        NiftiType::Float64 => cast(volume, |v: f64| v as f32),
        other => Err(format!("unsupported NIfTI data type {other:?}")),
    }?;
    if slope != 0.0 && (slope != 1.0 || inter != 0.0) {
        for v in &mut data {
            *v = *v * slope + inter;
        }
    }
    Ok(data)
}

fn to_volume(path: &Path, header: NiftiHeader, dims: Dims, data: &[f32]) -> Result<Volume, String> {
    let Dims { nx, ny, nz, nc } = dims;
    // Map to 8 bits per channel by the volume's 0.5..99.5 percentile range, taken over every
    // voxel so that it does not depend on the order the voxels are stored in.
    let plane = nx * ny * nz;
    let mut channels: Vec<Vec<u8>> = Vec::new();
    for c in 0..nc {
        let vals = &data[c * plane..(c + 1) * plane];
        let mut all = vals.to_vec();
        let mut q = |p: f64| {
            *all.select_nth_unstable_by(((plane - 1) as f64 * p).round() as usize, f32::total_cmp)
                .1
        };
        let (lo, hi) = (q(0.005), q(0.995));
        let scale = if hi > lo { 255.0 / (hi - lo) } else { 0.0 };
        channels.push(vals.iter().map(|&v| ((v - lo) * scale).clamp(0.0, 255.0).round() as u8).collect());
    }
    let stem = path.file_name().map(|n| stem_of(&n.to_string_lossy())).unwrap_or_default();
    let (layout, orientation_notes) = Layout::of_header(&header, (nx, ny, nz));
    let (width, height, _) = layout.shown();
    if width > MAX_SIDE || height > MAX_SIDE {
        return Err(format!(
            "its slices, shown axially, would be {width}x{height} pixels, more than tumorscan accepts ({MAX_SIDE} a side)"
        ));
    }
    let mm = mm_per_unit(header.xyzt_units);
    let [across, down, through] = layout.axes().map(|v| header.pixdim[v + 1] as f64 * mm);
    let spacing_ok = across > 0.0 && down > 0.0 && across.is_finite() && down.is_finite();
    let shown: Vec<Vec<Vec<u8>>> = channels.into_iter().map(|c| layout.slices(&c)).collect();
    let mut notes = orientation_notes.clone();
    if nc == 1 {
        notes.push("single-channel volume used as FLAIR in all three channels".into());
    }
    let slices = (0..shown[0].len())
        .map(|z| {
            let rgb = (0..width * height)
                .flat_map(|p| (0..3).map(move |k| (p, if nc == 3 { k } else { 0 })))
                .map(|(p, c)| shown[c][z][p])
                .collect();
            InputSlice {
                label: format!("{}#{}", path.display(), z),
                stem: format!("{stem}_z{z:03}"),
                number: z as u32,
                width: width as u32,
                height: height as u32,
                rgb,
                spacing_mm: spacing_ok.then_some((across, down)),
                position_mm: None,
                orientation: None,
                truth: None,
                notes: notes.clone(),
            }
        })
        .collect();
    Ok(Volume {
        id: stem,
        source: path.to_path_buf(),
        slices,
        nifti: Some(NiftiGeometry {
            header: Box::new(header),
            dims: (nx, ny, nz),
            layout,
        }),
        dicom: None,
        slice_thickness_mm: (through > 0.0 && through.is_finite()).then_some(through),
        notes: orientation_notes,
    })
}

/// A ground-truth mask volume: non-zero voxels are tumour (a BraTS label map's labels all count,
/// its whole tumour being the FLAIR abnormality). Read with the same checks as an image
/// volume, without its intensity scaling; one 0/1 mask per axial slice, in display
/// orientation (as [`read`] shows the slices).
pub fn read_mask(path: &Path) -> Result<(NiftiGeometry, Vec<Vec<u8>>), String> {
    let file = std::fs::File::open(path).map_err(|e| format!("cannot read: {e}"))?;
    mask_from(BufReader::new(file))
}

/// [`read_mask`] of a file held in memory.
pub fn read_mask_bytes(bytes: &[u8]) -> Result<(NiftiGeometry, Vec<Vec<u8>>), String> {
    mask_from(bytes)
}

fn mask_from<R: BufRead>(source: R) -> Result<(NiftiGeometry, Vec<Vec<u8>>), String> {
    let (header, dims, data) = read_plain_or_gzipped(source)?;
    let Dims { nx, ny, nz, nc } = dims;
    if nc != 1 {
        return Err(format!("a mask volume has one value per voxel, this one {nc}"));
    }
    let (layout, _) = Layout::of_header(&header, (nx, ny, nz));
    let tumour: Vec<u8> = data.iter().map(|&v| u8::from(v != 0.0)).collect();
    let masks = layout.slices(&tumour);
    let geometry = NiftiGeometry {
        header: Box::new(header),
        dims: (nx, ny, nz),
        layout,
    };
    Ok((geometry, masks))
}

/// Write 0/1 masks (one per axial slice, in display orientation) as a gzipped NIfTI-1 uint8
/// volume with the input's voxel size and orientation.
pub fn write_mask(path: &Path, geom: &NiftiGeometry, masks: &[Vec<u8>]) -> std::io::Result<()> {
    crate::table::write_atomic(path, &mask_file_bytes(geom, masks)?)
}

/// The bytes of the `.nii.gz` file [`write_mask`] writes.
pub fn mask_file_bytes(geom: &NiftiGeometry, masks: &[Vec<u8>]) -> std::io::Result<Vec<u8>> {
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
    let data = geom.layout.voxels(masks);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&hdr)?;
    gz.write_all(&data)?;
    gz.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::phantom::nifti_header as header;

    fn nii_f32(dims: &[i16], data: &[f32]) -> Vec<u8> {
        let mut b = header(dims, 16, 32);
        for v in data {
            b.extend_from_slice(&v.to_le_bytes());
        }
        b
    }

    fn gz(bytes: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(bytes).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn plain_and_gzipped_volumes_read_alike_with_anterior_up() {
        let (nx, ny, nz) = (4usize, 3usize, 2usize);
        let data: Vec<f32> = (0..nx * ny * nz).map(|i| i as f32).collect();
        let raw = nii_f32(&[nx as i16, ny as i16, nz as i16], &data);
        let a = read_bytes("dir/flair.nii", &raw).unwrap();
        // Gzip is found by its magic, whatever the name says.
        let b = read_bytes("dir/flair.nii", &gz(&raw)).unwrap();
        assert_eq!(a.id, "flair");
        assert_eq!(a.slices.len(), nz);
        assert_eq!(a.slices[1].label, "dir/flair.nii#1");
        assert_eq!(a.slices[1].stem, "flair_z001");
        assert_eq!((a.slices[0].width, a.slices[0].height), (nx as u32, ny as u32));
        assert_eq!(a.slices[0].spacing_mm, Some((0.9f32 as f64, 0.9f32 as f64)));
        assert_eq!(a.slice_thickness_mm, Some(3.0));
        assert_eq!(a.nifti.as_ref().unwrap().dims, (nx, ny, nz));
        for (s, t) in a.slices.iter().zip(&b.slices) {
            assert_eq!(s.rgb, t.rgb);
        }
        // Display row 0 is the last NIfTI row (y = ny - 1): brighter than display row ny - 1.
        let px = |row: usize| a.slices[0].rgb[row * nx * 3];
        assert!(px(0) > px(ny - 1));
        assert_eq!(a.slices[0].rgb[0..3], [px(0); 3], "single channel copied to RGB");
    }

    /// Voxel sizes in metres were taken as millimetres (areas a million times too small).
    #[test]
    fn voxel_sizes_follow_the_header_units() {
        let mut raw = nii_f32(&[2, 2, 1], &[0.0, 1.0, 2.0, 3.0]);
        for (i, v) in [1.0f32, 0.0009, 0.0008, 0.003].iter().enumerate() {
            raw[76 + 4 * i..80 + 4 * i].copy_from_slice(&v.to_le_bytes());
        }
        raw[123] = 1 | 8; // metres, seconds
        let v = read_bytes("m.nii", &raw).unwrap();
        let (across, down) = v.slices[0].spacing_mm.unwrap();
        assert!((across - 0.9).abs() < 1e-4 && (down - 0.8).abs() < 1e-4, "{across} {down}");
        assert!((v.slice_thickness_mm.unwrap() - 3.0).abs() < 1e-4);
        raw[123] = 2; // millimetres: as given
        assert_eq!(
            read_bytes("m.nii", &raw).unwrap().slices[0].spacing_mm,
            Some((0.0009f32 as f64, 0.0008f32 as f64))
        );
    }

    #[test]
    fn stems_drop_the_extension_in_any_letter_case() {
        assert_eq!(stem_of("SCAN.NII.GZ"), "SCAN");
        assert_eq!(stem_of("a.b.nii"), "a.b");
        assert_eq!(stem_of("notes.txt"), "notes.txt");
    }

    #[test]
    fn label_maps_read_as_masks_in_display_orientation() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("seg.nii.gz");
        // 2 x 2 x 1: labels 0, 1 on NIfTI row y = 0 and 4, 2 on y = 1 (BraTS-like labels).
        std::fs::write(&path, gz(&nii_f32(&[2, 2, 1], &[0.0, 1.0, 4.0, 2.0]))).unwrap();
        let (geometry, masks) = read_mask(&path).unwrap();
        assert_eq!(geometry.dims, (2, 2, 1));
        // Display row 0 is NIfTI row y = 1: every label counts as tumour.
        assert_eq!(masks, [vec![1, 1, 0, 1]]);
        std::fs::write(&path, nii_f32(&[2, 2, 1], &[0.0, f32::NAN, 0.0, 0.0])).unwrap();
        assert!(read_mask(&path).unwrap_err().contains("NaN"));
    }

    #[test]
    fn four_d_with_three_volumes_is_rgb() {
        let (nx, ny, nz) = (2usize, 2usize, 1usize);
        let mut data = vec![0f32; nx * ny * nz * 3];
        for c in 0..3 {
            for i in 0..4 {
                data[c * 4 + i] = (i * (c + 1)) as f32;
            }
        }
        let v = read_bytes("t.nii", &nii_f32(&[2, 2, 1, 3], &data)).unwrap();
        assert_eq!(v.slices.len(), 1);
        assert!(v.slices[0].notes.is_empty());
        assert_eq!(v.slices[0].rgb.len(), 12);
    }

    #[test]
    fn integer_types_vox_offset_and_bitpix_are_honoured() {
        let mut b = header(&[2, 2, 1], 4, 99); // int16 with a wrong bitpix
        b[108..112].copy_from_slice(&368f32.to_le_bytes());
        b.extend_from_slice(&[0xAA; 16]); // padding up to vox_offset
        for v in [0i16, 100, 200, 300] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        let v = read_bytes("i.nii", &b).unwrap();
        let s = &v.slices[0];
        // Rows flipped: display (0,0) is NIfTI (0,1) = 200.
        assert!(s.rgb[0] > s.rgb[6], "{:?}", s.rgb);
    }

    #[test]
    fn bad_headers_are_refused_before_reading_data() {
        let zero = nii_f32(&[4, 0, 2], &[]);
        assert!(read_bytes("z.nii", &zero).unwrap_err().contains("zero"));
        let huge = header(&[8192, 8192, 8192], 16, 32);
        assert!(read_bytes("h.nii", &huge).unwrap_err().contains("more than tumorscan accepts"));
        let wide = header(&[9000, 1, 1], 16, 32);
        assert!(read_bytes("w.nii", &wide).unwrap_err().contains("more than tumorscan accepts"));
        let mut far = header(&[2, 2, 1], 16, 32);
        far[108..112].copy_from_slice(&1e30f32.to_le_bytes());
        assert!(read_bytes("f.nii", &far).unwrap_err().contains("vox_offset"));
        let rank5 = header(&[2, 2, 1, 3, 2], 16, 32);
        assert!(read_bytes("r.nii", &rank5).unwrap_err().contains("rank"));
        let complex = header(&[2, 2, 1], 32, 64);
        assert!(read_bytes("c.nii", &complex).unwrap_err().contains("data type"));
        let mut pair = header(&[2, 2, 1], 16, 32);
        pair[344..348].copy_from_slice(b"ni1\0");
        assert!(read_bytes("p.nii", &pair).unwrap_err().contains(".hdr/.img"));
        assert!(read_bytes("s.nii", b"short").unwrap_err().contains("shorter than"));
        assert!(read_bytes("e.nii", b"").is_err());
        assert!(read_bytes("g.nii.gz", &[0x1f, 0x8b, 8, 0, 0]).is_err());
        // -5 was read as 65531 and blamed as too large.
        let negative = header(&[4, 4, -5], 16, 32);
        assert!(read_bytes("n.nii", &negative).unwrap_err().contains("negative dimension (-5)"));
        // Slices that reorientation would make wider than the side limit (9000 sagittal
        // slices of 40 x 40 become 9000 x 40 axial ones).
        let mut long = nii_f32(&[40, 40, 9000], &vec![0.0; 40 * 40 * 9000]);
        long[254..256].copy_from_slice(&1i16.to_le_bytes());
        for (i, v) in [0.0f32, 0.0, -1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0].iter().enumerate() {
            long[280 + 4 * i..284 + 4 * i].copy_from_slice(&v.to_le_bytes());
        }
        assert!(read_bytes("l.nii", &long).unwrap_err().contains("9000x40"));
    }

    #[test]
    fn truncated_and_non_finite_volumes_are_refused() {
        let data: Vec<f32> = (0..8).map(|i| i as f32).collect();
        let mut b = nii_f32(&[2, 2, 2], &data);
        b.truncate(b.len() - 1);
        assert!(read_bytes("t.nii", &b).unwrap_err().contains("truncated"));
        assert!(read_bytes("t.nii.gz", &gz(&b)).unwrap_err().contains("truncated"));
        let mut d = data.clone();
        d[5] = f32::NAN;
        assert!(read_bytes("n.nii", &nii_f32(&[2, 2, 2], &d)).unwrap_err().contains("NaN"));
    }

    #[test]
    fn written_masks_read_back_in_display_orientation() {
        let dir = tempfile::tempdir().unwrap();
        let (nx, ny, nz) = (3usize, 2usize, 2usize);
        let src = dir.path().join("in.nii.gz");
        std::fs::write(&src, gz(&nii_f32(&[3, 2, 2], &[0.0; 12]))).unwrap();
        let v = read(&src).unwrap();
        assert_eq!(v.source, src);
        let masks: Vec<Vec<u8>> = (0..nz).map(|z| (0..nx * ny).map(|i| ((i + z) % 2) as u8).collect()).collect();
        let out = dir.path().join("out_mask.nii.gz");
        write_mask(&out, v.nifti.as_ref().unwrap(), &masks).unwrap();
        let back = read(&out).unwrap();
        assert_eq!(back.nifti.as_ref().unwrap().dims, (nx, ny, nz));
        assert_eq!(back.slices[0].spacing_mm, v.slices[0].spacing_mm);
        for (z, m) in masks.iter().enumerate() {
            let got: Vec<u8> = back.slices[z].rgb.chunks(3).map(|p| (p[0] > 127) as u8).collect();
            assert_eq!(&got, m, "slice {z}");
        }
        assert!(read(&dir.path().join("missing.nii")).unwrap_err().contains("cannot read"));
    }
}
