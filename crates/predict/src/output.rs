//! Writing prediction results: `predictions.csv`, `masks/<stem>_mask.png`,
//! `overlays/<stem>.png`, `<volume>_mask.nii.gz` for NIfTI inputs, `<volume>_seg.dcm` (DICOM
//! Segmentation) for DICOM series, `summary.json` and
//! `report.html`. Stems and volume ids are unique over a run (see [`crate::input`]), so no
//! output overwrites another. Every file is written under a temporary name and renamed, so an
//! interrupted run never leaves a half-written file that looks complete. Existing output is
//! never overwritten without `--force`.

use crate::engine::SlicePrediction;
use crate::input::{Failure, Volume};
use anyhow::{bail, Context, Result};
use serde::Serialize;
use std::path::Path;
use tumorscan_data::dicom_seg::SegmentationSource;
use tumorscan_data::render::overlay;
use tumorscan_data::table::write_atomic;

/// Refuse an `--out` that is not a folder, or a non-empty one unless `force`; creates nothing,
/// so a run can check it before its inputs and create it only once there is something to write.
pub fn check_out_dir(out: &Path, force: bool) -> Result<()> {
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
    Ok(())
}

/// The folders [`create_out_dir`] created (those that did not exist before), so a run that
/// fails before writing anything can leave the disk as it found it.
#[derive(Debug, Default)]
pub struct CreatedDirs(Vec<std::path::PathBuf>, Option<std::path::PathBuf>);

/// Written into `--out` before anything else: a run killed before its summary.json still marks
/// its folder as predict's output, which a later run over the input tree would read as a scan.
pub const OUT_MARKER: &str = ".tumorscan-predict";

impl CreatedDirs {
    /// Remove the created folders that are still empty, deepest first (and the marker this run
    /// wrote). Never removes another file, a non-empty folder or a folder that existed before
    /// the run.
    pub fn remove_if_empty(&self) {
        if let Some(marker) = &self.1 {
            let _ = std::fs::remove_file(marker);
        }
        for d in self.0.iter().rev() {
            // Fails, harmlessly, on a folder that something was written into.
            let _ = std::fs::remove_dir(d);
        }
    }
}

/// Create `out`, `out/masks` and `out/overlays`; returns the folders that were new.
pub fn create_out_dir(out: &Path) -> Result<CreatedDirs> {
    let mut created = Vec::new();
    // Every missing ancestor too, so nothing the run made is left behind by a failure.
    let mut missing: Vec<&Path> = out.ancestors().take_while(|a| !a.as_os_str().is_empty() && !a.exists()).collect();
    missing.reverse();
    created.extend(missing.into_iter().map(Path::to_path_buf));
    for sub in ["masks", "overlays"] {
        let d = out.join(sub);
        if !d.exists() {
            created.push(d);
        }
    }
    for sub in ["", "masks", "overlays"] {
        std::fs::create_dir_all(out.join(sub)).with_context(|| format!("creating {}", out.join(sub).display()))?;
    }
    let marker = out.join(OUT_MARKER);
    let new_marker = (!marker.exists()).then(|| marker.clone());
    std::fs::write(&marker, b"written by tumorscan predict: this folder is its output, not MRI input\n")
        .with_context(|| format!("writing {}", marker.display()))?;
    Ok(CreatedDirs(created, new_marker))
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

/// What [`write_volume_images`] wrote beside the slices' own files.
pub struct VolumeImages {
    /// The encoded overlays, one per slice, for the report to reuse instead of encoding them again.
    pub overlays: Vec<Vec<u8>>,
    /// What the user is told about the volume's outputs (a DICOM series' SEG not written, and why).
    pub notes: Vec<String>,
}

/// Write the mask and overlay PNGs of one volume's predictions, and its mask as a volume in the
/// input's own format: `<volume>_mask.nii.gz` for NIfTI, `<volume>_seg.dcm` (a DICOM
/// Segmentation referring to the series) for a DICOM series.
pub fn write_volume_images(out: &Path, volume: &Volume, preds: &[SlicePrediction], seg: &SegmentationSource) -> Result<VolumeImages> {
    let mut overlays = Vec::with_capacity(preds.len());
    for (i, p) in preds.iter().enumerate() {
        let mask = image::GrayImage::from_raw(p.width, p.height, p.mask.iter().map(|&v| v * 255).collect()).context("mask size")?;
        write_atomic(&out.join(mask_file(&p.stem)), &png_bytes(mask.into())?)?;
        let overlay = overlay_png(volume, i, p)?;
        write_atomic(&out.join("overlays").join(format!("{}.png", p.stem)), &overlay)?;
        overlays.push(overlay);
    }
    let masks = || preds.iter().map(|p| p.mask.clone()).collect::<Vec<_>>();
    if let Some(geom) = &volume.nifti {
        crate::input::nifti::write_mask(&out.join(format!("{}_mask.nii.gz", volume.id)), geom, &masks())?;
    }
    let mut notes = Vec::new();
    if let Some(series) = &volume.dicom {
        match tumorscan_data::dicom_seg::seg_file_bytes(series, &volume.slices, &masks(), seg) {
            Ok(bytes) => write_atomic(&out.join(format!("{}_seg.dcm", volume.id)), &bytes)?,
            Err(why) => notes.push(format!("no DICOM Segmentation written: {why}")),
        }
    }
    Ok(VolumeImages { overlays, notes })
}

/// The columns of `predictions.csv`, in order: [`SlicePrediction`]'s fields, then `mask_file`.
/// Written even when there are no rows (an empty shard), so `merge` can check every file.
pub const PREDICTION_COLUMNS: [&str; 15] = [
    "file",
    "volume",
    "slice",
    "tumor_probability",
    "has_tumor",
    "tumor_pixels",
    "tumor_area_mm2",
    "bbox_x",
    "bbox_y",
    "bbox_width",
    "bbox_height",
    "width",
    "height",
    "notes",
    "mask_file",
];

/// The mask PNG of a slice, relative to the output folder: the stem is made unique over the
/// run, so it may differ from the input file's name (`..._1-2_mask.png`).
pub fn mask_file(stem: &str) -> String {
    format!("masks/{stem}_mask.png")
}

/// The extra column after [`SlicePrediction`]'s own (serialized as a tuple with it).
#[derive(Serialize)]
struct MaskColumn {
    mask_file: String,
}

/// Write `predictions.csv`: the header (always) and one row per slice.
pub fn write_predictions_csv(path: &Path, preds: &[SlicePrediction]) -> Result<()> {
    let write = || -> Result<()> {
        let mut w = csv::WriterBuilder::new().has_headers(false).from_writer(Vec::new());
        w.write_record(PREDICTION_COLUMNS)?;
        for p in preds {
            w.serialize((
                p,
                MaskColumn {
                    mask_file: mask_file(&p.stem),
                },
            ))?;
        }
        write_atomic(path, &w.into_inner().map_err(|e| anyhow::anyhow!("{e}"))?)?;
        Ok(())
    };
    write().with_context(|| format!("writing {}", path.display()))
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
    /// The prediction against the ground truth, when every slice came with one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ground_truth: Option<TruthScore>,
    /// What concerns the whole volume (stored in another plane, turned, oblique), as on stderr.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// A volume's prediction against its ground truth (`_mask` files beside its slices, a BraTS
/// case's segmentation, or `--truth`).
#[derive(Debug, Clone, Serialize)]
pub struct TruthScore {
    /// Volumetric Dice over the volume's slices, as `evaluate segment` counts a patient (1 when
    /// truth and prediction are both empty).
    pub dice: f64,
    /// Tumour pixels in the ground truth.
    pub truth_tumor_pixels: u64,
    /// Slices whose ground truth shows tumour.
    pub truth_tumor_slices: usize,
    /// Of those, the slices not called tumour.
    pub missed_tumor_slices: usize,
    /// Slices called tumour whose ground truth shows none.
    pub false_tumor_slices: usize,
}

/// The volumes scored against their ground truth, together: what `evaluate segment` and
/// `evaluate detect` would report for them (mean per-volume Dice, slice calls).
#[derive(Debug, Clone, Serialize)]
pub struct RunTruth {
    /// Volumes scored (every slice with its ground truth).
    pub volumes: usize,
    /// Mean of their volumetric Dice.
    pub mean_dice: f64,
    /// Their slices.
    pub slices: usize,
    /// Share of those slices called as their ground truth shows (tumour or not).
    pub slice_accuracy: f64,
    /// Slices whose ground truth shows tumour.
    pub truth_tumor_slices: usize,
    /// Of those, the slices not called tumour.
    pub missed_tumor_slices: usize,
    /// Slices called tumour whose ground truth shows none.
    pub false_tumor_slices: usize,
}

/// Pool the scored volumes; `None` when none was scored.
pub fn summarize_truth(volumes: &[VolumeSummary]) -> Option<RunTruth> {
    let scored: Vec<(usize, &TruthScore)> = volumes
        .iter()
        .filter_map(|v| v.ground_truth.as_ref().map(|t| (v.slices, t)))
        .collect();
    if scored.is_empty() {
        return None;
    }
    let sum = |f: fn(&TruthScore) -> usize| scored.iter().map(|(_, t)| f(t)).sum::<usize>();
    let slices: usize = scored.iter().map(|(n, _)| n).sum();
    let (missed, false_) = (sum(|t| t.missed_tumor_slices), sum(|t| t.false_tumor_slices));
    Some(RunTruth {
        volumes: scored.len(),
        mean_dice: scored.iter().map(|(_, t)| t.dice).sum::<f64>() / scored.len() as f64,
        slices,
        slice_accuracy: (slices - missed - false_) as f64 / slices.max(1) as f64,
        truth_tumor_slices: sum(|t| t.truth_tumor_slices),
        missed_tumor_slices: missed,
        false_tumor_slices: false_,
    })
}

/// Score a volume's predictions against its ground truth; `None` unless every slice has one.
fn score_against_truth(volume: &Volume, preds: &[SlicePrediction]) -> Option<TruthScore> {
    use tumorscan_evaluate::overlap::Counts;
    let mut counts = Counts::default();
    let mut score = TruthScore {
        dice: 0.0,
        truth_tumor_pixels: 0,
        truth_tumor_slices: 0,
        missed_tumor_slices: 0,
        false_tumor_slices: 0,
    };
    for (s, p) in volume.slices.iter().zip(preds) {
        let truth = s.truth.as_deref().filter(|t| t.len() == p.mask.len())?;
        let c = Counts::of(&p.mask, truth);
        let truth_pixels = c.tp + c.fn_;
        score.truth_tumor_pixels += truth_pixels;
        match (truth_pixels > 0, p.has_tumor == 1) {
            (true, false) => score.missed_tumor_slices += 1,
            (false, true) => score.false_tumor_slices += 1,
            _ => {}
        }
        score.truth_tumor_slices += usize::from(truth_pixels > 0);
        counts = counts + c;
    }
    score.dice = counts.dice().unwrap_or(1.0);
    Some(score)
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
    /// The volumes scored against their ground truth, together ([`summarize_truth`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ground_truth: Option<RunTruth>,
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
        ground_truth: (!volume.slices.is_empty()).then(|| score_against_truth(volume, preds)).flatten(),
        notes: volume.notes.clone(),
    }
}

/// Write JSON atomically.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    write_atomic(path, serde_json::to_string_pretty(value)?.as_bytes()).with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::test_prediction;
    use crate::input::InputSlice;

    #[test]
    fn predictions_csv_has_its_header_even_without_rows_and_names_each_mask() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("predictions.csv");
        write_predictions_csv(&path, &[]).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            format!("{}\n", PREDICTION_COLUMNS.join(","))
        );
        write_predictions_csv(&path, &[test_prediction("a_1-2")]).unwrap();
        let mut r = csv::Reader::from_path(&path).unwrap();
        assert_eq!(r.headers().unwrap(), &csv::StringRecord::from(PREDICTION_COLUMNS.to_vec()));
        let row = r.records().next().unwrap().unwrap();
        assert_eq!(row.len(), PREDICTION_COLUMNS.len());
        assert_eq!(&row[PREDICTION_COLUMNS.len() - 1], "masks/a_1-2_mask.png");
        // The fixed header names what the rows hold: serde's own header agrees.
        let mut w = csv::Writer::from_writer(Vec::new());
        w.serialize((test_prediction("x"), MaskColumn { mask_file: String::new() }))
            .unwrap();
        let text = String::from_utf8(w.into_inner().unwrap()).unwrap();
        assert_eq!(text.lines().next().unwrap(), PREDICTION_COLUMNS.join(","));
    }

    #[test]
    fn a_volume_is_scored_against_its_ground_truth_only_when_every_slice_has_one() {
        let slice = |truth: Option<Vec<u8>>| InputSlice {
            label: "s".into(),
            stem: "s".into(),
            number: 1,
            width: 2,
            height: 2,
            rgb: vec![0; 12],
            spacing_mm: None,
            position_mm: None,
            orientation: None,
            truth,
            notes: Vec::new(),
        };
        let pred = |mask: [u8; 4]| SlicePrediction {
            has_tumor: u8::from(mask.iter().any(|&v| v != 0)),
            mask: mask.to_vec(),
            ..test_prediction("s")
        };
        let volume = |truths: Vec<Option<Vec<u8>>>| Volume {
            id: "v".into(),
            source: "v".into(),
            slices: truths.into_iter().map(slice).collect(),
            nifti: None,
            dicom: None,
            slice_thickness_mm: None,
            notes: Vec::new(),
        };
        // Slice 1: TP 1, FN 1; slice 2: a missed tumour (FN 1); slice 3: a false call (FP 1).
        let v = volume(vec![Some(vec![1, 1, 0, 0]), Some(vec![0, 0, 0, 1]), Some(vec![0; 4])]);
        let preds = [pred([1, 0, 0, 0]), pred([0; 4]), pred([0, 1, 0, 0])];
        let t = summarize_volume(&v, &preds).ground_truth.unwrap();
        assert!((t.dice - 2.0 / 5.0).abs() < 1e-12, "2 TP / (2 TP + FP + FN) = 2 / 5: {}", t.dice);
        assert_eq!(
            (
                t.truth_tumor_pixels,
                t.truth_tumor_slices,
                t.missed_tumor_slices,
                t.false_tumor_slices
            ),
            (3, 2, 1, 1)
        );
        // Both empty counts as agreement; one slice without truth leaves the volume unscored.
        let empty = summarize_volume(&volume(vec![Some(vec![0; 4])]), &[pred([0; 4])]);
        assert_eq!(empty.ground_truth.as_ref().unwrap().dice, 1.0);
        let partial = summarize_volume(&volume(vec![Some(vec![0; 4]), None]), &[pred([0; 4]), pred([0; 4])]);
        assert!(partial.ground_truth.is_none());
        // Pooled: the mean of the volumes' Dice, and the slices of scored volumes only.
        let first = summarize_volume(&v, &preds);
        let run = summarize_truth(&[first, empty, partial]).unwrap();
        assert_eq!(
            (run.volumes, run.slices, run.missed_tumor_slices, run.false_tumor_slices),
            (2, 4, 1, 1)
        );
        assert!((run.mean_dice - (0.4 + 1.0) / 2.0).abs() < 1e-12);
        assert_eq!(run.slice_accuracy, 0.5);
        assert!(summarize_truth(&[]).is_none());
    }

    #[test]
    fn created_folders_are_removed_only_when_new_and_empty() {
        let d = tempfile::tempdir().unwrap();
        let out = d.path().join("a/b");
        let created = create_out_dir(&out).unwrap();
        assert!(out.join("masks").is_dir() && out.join("overlays").is_dir());
        created.remove_if_empty();
        assert!(!d.path().join("a").exists(), "everything this run made is gone");
        // An existing folder, and one with a result in it, stay.
        std::fs::create_dir(d.path().join("kept")).unwrap();
        let created = create_out_dir(&d.path().join("kept")).unwrap();
        std::fs::write(d.path().join("kept/masks/m.png"), b"x").unwrap();
        created.remove_if_empty();
        assert!(d.path().join("kept/masks/m.png").exists());
        assert!(!d.path().join("kept/overlays").exists());
    }
}
