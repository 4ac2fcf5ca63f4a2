//! Gathering prediction inputs into volumes.
//!
//! - A slice file (.tif/.tiff/.png/.jpg/.jpeg) or a folder (every non-`_mask` image below it).
//!   Slices are grouped into volumes by their folder, which is the unit of intensity
//!   normalisation (per patient, as in training). A volume of a single slice is normalised on
//!   that slice alone: the documented fallback when no neighbours are given.
//! - `_mask` files are ground truth, never input; when one sits beside a slice it is kept for
//!   comparison in the report.
//! - NIfTI volumes (.nii, .nii.gz): every axial slice; see [`crate::input::nifti_volume`].
//! - DICOM series: the `.dcm` files of one folder; see [`crate::input::dicom`].
//!
//! Files that cannot be read are returned as failures (with the reason) while the rest go on.

use rayon::prelude::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use tumorscan_data::image_io::{read_mask, read_slice, ChannelPolicy};
use tumorscan_data::layout::parse_slice_stem;

/// Extensions taken as 2D slices.
pub const SLICE_EXTENSIONS: [&str; 5] = ["tif", "tiff", "png", "jpg", "jpeg"];

/// DICOM series input (moved to `tumorscan_data::dicom`; re-exported here).
pub use tumorscan_data::dicom;
/// NIfTI input and mask output (moved to `tumorscan_data::nifti`; re-exported here).
pub use tumorscan_data::nifti;
pub use tumorscan_data::volume::{InputSlice, NiftiGeometry, Volume};

/// An input that failed, with the reason.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Failure {
    /// Path.
    pub path: String,
    /// Why.
    pub error: String,
}

fn ext_of(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().to_ascii_lowercase())
        .map(|n| {
            if n.ends_with(".nii.gz") {
                "nii.gz".into()
            } else {
                n.rsplit_once('.').map(|(_, e)| e.to_string()).unwrap_or_default()
            }
        })
        .unwrap_or_default()
}

fn is_mask(p: &Path) -> bool {
    p.file_stem().map(|s| s.to_string_lossy().ends_with("_mask")).unwrap_or(false)
}

fn walk(dir: &Path, skip: Option<&Path>, files: &mut Vec<PathBuf>, failures: &mut Vec<Failure>) {
    // Never read our own output folder back as input (predicting a folder into a subfolder).
    if skip.is_some_and(|s| dir.canonicalize().ok().as_deref() == Some(s)) {
        return;
    }
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            return failures.push(Failure {
                path: dir.display().to_string(),
                error: format!("cannot read folder: {e}"),
            })
        }
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| !p.file_name().map(|n| n.to_string_lossy().starts_with('.')).unwrap_or(true))
        .collect();
    paths.sort();
    for p in paths {
        if p.is_dir() {
            walk(&p, skip, files, failures);
        } else {
            let ext = ext_of(&p);
            if (SLICE_EXTENSIONS.contains(&ext.as_str()) && !is_mask(&p)) || ext == "nii" || ext == "nii.gz" || ext == "dcm" {
                files.push(p);
            }
        }
    }
}

/// Read every input into volumes, skipping the folder `exclude` (the output folder) when
/// walking folders. Returns the volumes and the inputs that failed.
pub fn collect_inputs(inputs: &[PathBuf], exclude: Option<&Path>) -> (Vec<Volume>, Vec<Failure>) {
    let skip = exclude.and_then(|e| e.canonicalize().ok());
    let skip = skip.as_deref();
    let mut files = Vec::new();
    let mut failures = Vec::new();
    for inp in inputs {
        match std::fs::metadata(inp) {
            Err(e) => failures.push(Failure {
                path: inp.display().to_string(),
                error: format!("cannot read: {e}"),
            }),
            Ok(m) if m.is_dir() => {
                let before = files.len();
                walk(inp, skip, &mut files, &mut failures);
                if files.len() == before {
                    failures.push(Failure {
                        path: inp.display().to_string(),
                        error: "folder holds no slice images (.tif/.png/.jpg, not _mask), NIfTI volumes or DICOM (.dcm) files".into(),
                    });
                }
            }
            Ok(_) => {
                let ext = ext_of(inp);
                if is_mask(inp) {
                    failures.push(Failure {
                        path: inp.display().to_string(),
                        error: "is a ground-truth mask (_mask), not an input slice".into(),
                    });
                } else if SLICE_EXTENSIONS.contains(&ext.as_str()) || ext == "nii" || ext == "nii.gz" || ext == "dcm" {
                    files.push(inp.clone());
                } else {
                    failures.push(Failure {
                        path: inp.display().to_string(),
                        error: format!("unsupported file type '.{ext}': expected .tif, .tiff, .png, .jpg, .nii, .nii.gz or .dcm"),
                    });
                }
            }
        }
    }
    files.sort();
    files.dedup();
    let (dicom_files, files): (Vec<PathBuf>, Vec<PathBuf>) = files.into_iter().partition(|p| ext_of(p) == "dcm");
    let (volume_files, slice_files): (Vec<PathBuf>, Vec<PathBuf>) = files.into_iter().partition(|p| ext_of(p).starts_with("nii"));
    // DICOM: one series per folder.
    let mut series: BTreeMap<PathBuf, Vec<PathBuf>> = BTreeMap::new();
    for f in dicom_files {
        series
            .entry(f.parent().map(Path::to_path_buf).unwrap_or_default())
            .or_default()
            .push(f);
    }
    let mut volumes = Vec::new();
    for f in volume_files {
        match crate::input::nifti_volume(&f) {
            Ok(v) => volumes.push(v),
            Err(e) => failures.push(Failure {
                path: f.display().to_string(),
                error: e,
            }),
        }
    }
    for (dir, files) in series {
        match crate::input::dicom::read_series(&dir, &files) {
            Ok(v) => volumes.push(v),
            Err(e) => failures.push(Failure {
                path: dir.display().to_string(),
                error: e,
            }),
        }
    }
    let decoded: Vec<(PathBuf, Result<InputSlice, String>)> = slice_files
        .par_iter()
        .map(|p| {
            let r = read_slice(p, ChannelPolicy::Lenient).map_err(|e| e.to_string()).map(|img| {
                let stem = p.file_stem().map(|s| s.to_string_lossy().to_string()).unwrap_or_default();
                let number = parse_slice_stem(&stem).map(|(_, n, _)| n).unwrap_or(0);
                let truth = mask_beside(p)
                    .and_then(|m| read_mask(&m).ok())
                    .filter(|m| (m.width, m.height) == (img.width, img.height))
                    .map(|m| m.data);
                InputSlice::from_image(p.display().to_string(), stem, number, img, truth)
            });
            (p.clone(), r)
        })
        .collect();
    let mut groups: BTreeMap<PathBuf, Vec<InputSlice>> = BTreeMap::new();
    for (p, r) in decoded {
        match r {
            Ok(s) => groups
                .entry(p.parent().map(Path::to_path_buf).unwrap_or_default())
                .or_default()
                .push(s),
            Err(e) => failures.push(Failure {
                path: p.display().to_string(),
                error: e,
            }),
        }
    }
    for (dir, mut slices) in groups {
        slices.sort_by(|a, b| a.number.cmp(&b.number).then_with(|| a.label.cmp(&b.label)));
        let id = dir
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_else(|| ".".into());
        volumes.push(Volume {
            id,
            source: dir,
            slices,
            nifti: None,
            slice_thickness_mm: None,
        });
    }
    unique_stems(&mut volumes);
    (volumes, failures)
}

fn mask_beside(p: &Path) -> Option<PathBuf> {
    let stem = p.file_stem()?.to_string_lossy();
    let ext = p.extension()?.to_string_lossy();
    let m = p.with_file_name(format!("{stem}_mask.{ext}"));
    m.exists().then_some(m)
}

/// Make output stems unique across the run (`name`, `name-2`, ...).
fn unique_stems(volumes: &mut [Volume]) {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for v in volumes.iter_mut() {
        for s in v.slices.iter_mut() {
            let n = seen.entry(s.stem.clone()).or_insert(0);
            *n += 1;
            if *n > 1 {
                s.stem = format!("{}-{}", s.stem, n);
            }
        }
    }
}

/// Read a NIfTI-1 volume (.nii or .nii.gz) as axial slices; see [`tumorscan_data::nifti`].
pub fn nifti_volume(path: &Path) -> Result<Volume, String> {
    nifti::read(path)
}
