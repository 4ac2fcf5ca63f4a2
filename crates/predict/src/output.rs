//! Writing prediction results: `predictions.csv`, `masks/<stem>_mask.png`,
//! `overlays/<stem>.png`, `<volume>_mask.nii.gz` for NIfTI inputs, `summary.json` and
//! `report.html`. Every file is written under a temporary name and renamed, so an
//! interrupted run never leaves a half-written file that looks complete. Existing output is
//! never overwritten without `--force`.

use crate::engine::SlicePrediction;
use crate::input::{Failure, Volume};
use anyhow::{bail, Context, Result};
use serde::Serialize;
use std::path::Path;
use tumorscan_data::render::overlay;
use tumorscan_data::table::write_atomic;

/// Refuse a non-empty output folder unless `force`; create it otherwise.
pub fn prepare_out_dir(out: &Path, force: bool) -> Result<()> {
    if out.exists() {
        if !out.is_dir() {
            bail!("{} exists and is not a folder", out.display());
        }
        let non_empty = std::fs::read_dir(out)
            .with_context(|| format!("reading {}", out.display()))?
            .next()
            .is_some();
        if non_empty && !force {
            bail!(
                "{} already exists and is not empty; choose another --out or pass --force to overwrite tumorscan's files in it",
                out.display()
            );
        }
    }
    for sub in ["", "masks", "overlays"] {
        std::fs::create_dir_all(out.join(sub)).with_context(|| format!("creating {}", out.join(sub).display()))?;
    }
    Ok(())
}

fn png_bytes(img: image::DynamicImage) -> Result<Vec<u8>> {
    let mut buf = std::io::Cursor::new(Vec::new());
    img.write_to(&mut buf, image::ImageFormat::Png)?;
    Ok(buf.into_inner())
}

/// The overlay picture of one slice (prediction red, ground truth green when known).
fn overlay_png(volume: &Volume, index: usize, pred: &SlicePrediction) -> Result<Vec<u8>> {
    let s = &volume.slices[index];
    let img = overlay(&s.rgb, s.width, s.height, s.truth.as_deref(), Some(&pred.mask));
    png_bytes(img.into())
}

/// Write the mask and overlay PNGs of one volume's predictions; returns the encoded overlays
/// (one per slice) so the report can reuse them instead of encoding them again.
pub fn write_volume_images(out: &Path, volume: &Volume, preds: &[SlicePrediction]) -> Result<Vec<Vec<u8>>> {
    let mut overlays = Vec::with_capacity(preds.len());
    for (i, p) in preds.iter().enumerate() {
        let mask = image::GrayImage::from_raw(p.width, p.height, p.mask.iter().map(|&v| v * 255).collect()).context("mask size")?;
        write_atomic(&out.join("masks").join(format!("{}_mask.png", p.stem)), &png_bytes(mask.into())?)?;
        let overlay = overlay_png(volume, i, p)?;
        write_atomic(&out.join("overlays").join(format!("{}.png", p.stem)), &overlay)?;
        overlays.push(overlay);
    }
    if let Some(geom) = &volume.nifti {
        let masks: Vec<Vec<u8>> = preds.iter().map(|p| p.mask.clone()).collect();
        crate::input::nifti::write_mask(&out.join(format!("{}_mask.nii.gz", volume.id)), geom, &masks)?;
    }
    Ok(overlays)
}

/// Write `predictions.csv` (one row per slice).
pub fn write_predictions_csv(path: &Path, preds: &[SlicePrediction]) -> Result<()> {
    tumorscan_data::table::write_csv(path, preds).with_context(|| format!("writing {}", path.display()))
}

/// Per-volume summary.
#[derive(Debug, Clone, Serialize)]
pub struct VolumeSummary {
    /// Volume (patient) id.
    pub volume: String,
    /// Slices.
    pub slices: usize,
    /// Slices called tumour.
    pub tumor_slices: usize,
    /// Tumour pixels over all slices.
    pub tumor_pixels: u64,
    /// Tumour area summed over slices, mm^2 (when spacing is known).
    pub tumor_area_mm2: Option<f64>,
    /// Tumour volume in mL (when spacing and slice thickness are known).
    pub tumor_volume_ml: Option<f64>,
    /// Largest tumour probability.
    pub max_probability: f64,
}

/// The run summary (`summary.json`, `--json`).
#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    /// Model identity.
    pub model: String,
    /// Slices predicted.
    pub slices: usize,
    /// Slices called tumour.
    pub tumor_slices: usize,
    /// Per volume.
    pub volumes: Vec<VolumeSummary>,
    /// Inputs that failed.
    pub failures: Vec<Failure>,
    /// Shard processed (`I/N`), if any.
    pub shard: Option<String>,
    /// The user's `--threshold` on `tumor_probability`, where it replaced the model's rule.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f64>,
    /// Seconds spent.
    pub seconds: f64,
}

/// Summarise one volume's predictions.
pub fn summarize_volume(volume: &Volume, preds: &[SlicePrediction]) -> VolumeSummary {
    let area: Option<f64> = preds.iter().map(|p| p.tumor_area_mm2).sum();
    VolumeSummary {
        volume: volume.id.clone(),
        slices: preds.len(),
        tumor_slices: preds.iter().filter(|p| p.has_tumor == 1).count(),
        tumor_pixels: preds.iter().map(|p| p.tumor_pixels).sum(),
        tumor_area_mm2: area.map(|a| (a * 100.0).round() / 100.0),
        tumor_volume_ml: area
            .zip(volume.slice_thickness_mm)
            .map(|(a, t)| (a * t / 1000.0 * 1000.0).round() / 1000.0),
        max_probability: preds.iter().map(|p| p.tumor_probability).fold(0.0, f64::max),
    }
}

/// Write JSON atomically.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    write_atomic(path, serde_json::to_string_pretty(value)?.as_bytes()).with_context(|| format!("writing {}", path.display()))
}
