//! DICOM series input (crate `dicom-object`): every `.dcm` file of a folder is one slice of a
//! series, ordered by InstanceNumber. Uncompressed transfer syntaxes only (explicit or implicit
//! VR little endian); a compressed series gets a clear error asking for decompression first
//! (e.g. `gdcmconv --raw`). Monochrome slices are taken as FLAIR in all three channels and
//! scaled to 8 bits by the series' 0.5..99.5 percentile range (per-volume z-scoring follows).
//! Mixed series, sizes or pixel formats in one folder are an error.

use super::{InputSlice, Volume};
use dicom_dictionary_std::tags;
use dicom_object::{open_file, DefaultDicomObject};
use std::path::{Path, PathBuf};

const NATIVE: [&str; 2] = ["1.2.840.10008.1.2", "1.2.840.10008.1.2.1"];

struct Raw {
    path: PathBuf,
    number: i64,
    rows: usize,
    cols: usize,
    values: Vec<f32>,
    series: String,
    spacing: Option<(f64, f64)>,
    thickness: Option<f64>,
}

fn int(obj: &DefaultDicomObject, tag: dicom_core::Tag) -> Option<i64> {
    obj.element(tag).ok()?.to_int::<i64>().ok()
}

fn read_one(path: &Path) -> Result<Raw, String> {
    let obj = open_file(path).map_err(|e| format!("not a readable DICOM file: {e}"))?;
    let ts = obj.meta().transfer_syntax().trim_end_matches('\0').to_string();
    if !NATIVE.contains(&ts.as_str()) {
        return Err(format!(
            "compressed or unsupported transfer syntax {ts}: decompress the series first (e.g. gdcmconv --raw)"
        ));
    }
    let rows = int(&obj, tags::ROWS).ok_or("no Rows")? as usize;
    let cols = int(&obj, tags::COLUMNS).ok_or("no Columns")? as usize;
    let bits = int(&obj, tags::BITS_ALLOCATED).unwrap_or(16);
    let samples = int(&obj, tags::SAMPLES_PER_PIXEL).unwrap_or(1);
    let signed = int(&obj, tags::PIXEL_REPRESENTATION).unwrap_or(0) == 1;
    if rows == 0 || cols == 0 || rows > 8192 || cols > 8192 {
        return Err(format!("unsupported image size {cols}x{rows}"));
    }
    if samples != 1 || !(bits == 8 || bits == 16) {
        return Err(format!(
            "unsupported pixel format ({samples} samples, {bits} bits): expected monochrome 8 or 16 bit"
        ));
    }
    let data = obj
        .element(tags::PIXEL_DATA)
        .map_err(|_| "no pixel data".to_string())?
        .to_bytes()
        .map_err(|e| format!("unreadable pixel data: {e}"))?;
    let n = rows * cols;
    let need = n * (bits as usize / 8);
    if data.len() < need {
        return Err(format!("pixel data holds {} bytes, {need} expected (truncated?)", data.len()));
    }
    let slope = obj
        .element(tags::RESCALE_SLOPE)
        .ok()
        .and_then(|e| e.to_float64().ok())
        .unwrap_or(1.0) as f32;
    let intercept = obj
        .element(tags::RESCALE_INTERCEPT)
        .ok()
        .and_then(|e| e.to_float64().ok())
        .unwrap_or(0.0) as f32;
    let values: Vec<f32> = match (bits, signed) {
        (8, _) => data[..n].iter().map(|&v| v as f32).collect(),
        (_, false) => data[..need]
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]) as f32)
            .collect(),
        (_, true) => data[..need]
            .chunks_exact(2)
            .map(|c| i16::from_le_bytes([c[0], c[1]]) as f32)
            .collect(),
    };
    let values = values.into_iter().map(|v| v * slope + intercept).collect();
    let spacing = obj
        .element(tags::PIXEL_SPACING)
        .ok()
        .and_then(|e| e.to_multi_float64().ok())
        .filter(|v| v.len() == 2 && v[0] > 0.0 && v[1] > 0.0)
        .map(|v| (v[1], v[0]));
    Ok(Raw {
        path: path.to_path_buf(),
        number: int(&obj, tags::INSTANCE_NUMBER).unwrap_or(0),
        rows,
        cols,
        values,
        series: obj
            .element(tags::SERIES_INSTANCE_UID)
            .ok()
            .and_then(|e| e.to_str().ok().map(|s| s.trim_end_matches('\0').to_string()))
            .unwrap_or_default(),
        spacing,
        thickness: obj
            .element(tags::SLICE_THICKNESS)
            .ok()
            .and_then(|e| e.to_float64().ok())
            .filter(|t| *t > 0.0),
    })
}

/// Read the `.dcm` files of one folder as a series.
pub fn read_series(dir: &Path, files: &[PathBuf]) -> Result<Volume, String> {
    let mut raws = Vec::new();
    for f in files {
        raws.push(read_one(f).map_err(|e| format!("{}: {e}", f.display()))?);
    }
    let first = raws.first().ok_or("no DICOM files")?;
    if let Some(odd) = raws.iter().find(|r| r.series != first.series) {
        return Err(format!(
            "inconsistent DICOM series: {} belongs to series {} but {} to {}",
            odd.path.display(),
            odd.series,
            first.path.display(),
            first.series
        ));
    }
    if let Some(odd) = raws.iter().find(|r| (r.rows, r.cols) != (first.rows, first.cols)) {
        return Err(format!(
            "inconsistent DICOM series: {} is {}x{} but {} is {}x{}",
            odd.path.display(),
            odd.cols,
            odd.rows,
            first.path.display(),
            first.cols,
            first.rows
        ));
    }
    let thickness = first.thickness;
    raws.sort_by(|a, b| a.number.cmp(&b.number).then_with(|| a.path.cmp(&b.path)));
    let mut all: Vec<f32> = raws.iter().flat_map(|r| r.values.iter().copied().step_by(7)).collect();
    all.sort_by(|a, b| a.total_cmp(b));
    let q = |p: f64| all[((all.len() - 1) as f64 * p).round() as usize];
    let (lo, hi) = (q(0.005), q(0.995));
    let scale = if hi > lo { 255.0 / (hi - lo) } else { 0.0 };
    let slices = raws
        .into_iter()
        .enumerate()
        .map(|(i, r)| {
            let rgb = r
                .values
                .iter()
                .flat_map(|&v| [((v - lo) * scale).clamp(0.0, 255.0).round() as u8; 3])
                .collect();
            InputSlice {
                label: r.path.display().to_string(),
                stem: r
                    .path
                    .file_stem()
                    .map(|s| s.to_string_lossy().to_string())
                    .unwrap_or_else(|| format!("slice{i}")),
                number: r.number.max(0) as u32,
                width: r.cols as u32,
                height: r.rows as u32,
                rgb,
                spacing_mm: r.spacing,
                truth: None,
                notes: vec!["monochrome DICOM used as FLAIR in all three channels".into()],
            }
        })
        .collect();
    let id = dir
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| "dicom".into());
    Ok(Volume {
        id,
        source: dir.to_path_buf(),
        slices,
        nifti: None,
        slice_thickness_mm: thickness,
    })
}
