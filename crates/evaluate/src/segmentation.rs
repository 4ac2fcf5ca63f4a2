//! Segmentation evaluation as in Buda et al.: per-patient volumetric Dice (intersections and
//! sizes summed over all of a patient's slices), with per-slice metrics beside it.
//!
//! Empty cases: a patient whose truth and prediction are both empty scores Dice 1; a patient
//! with an empty truth and a non-empty prediction scores 0. Per-slice Dice, IoU, Tversky and
//! HD95 are reported on tumour slices only (so never both empty): a missed tumour slice (empty
//! prediction) scores Dice, IoU and Tversky 0 and has no HD95, so the HD95 mean is over the
//! slices with a prediction. Tumour-free slices are reported as false-positive slices and pixels.

use crate::bootstrap::{mean, mean_ci, median, Interval};
use crate::overlap::{hd95, Counts};
use serde::Serialize;
use std::collections::BTreeMap;

/// Truth and prediction for one slice (both 0/1, same size).
#[derive(Debug, Clone)]
pub struct SlicePair<'a> {
    /// Patient id.
    pub patient: &'a str,
    /// Slice number.
    pub slice: u32,
    /// Width.
    pub width: usize,
    /// Height.
    pub height: usize,
    /// Ground truth.
    pub truth: &'a [u8],
    /// Prediction.
    pub prediction: &'a [u8],
}

/// Metrics of one tumour slice.
#[derive(Debug, Clone, Serialize)]
pub struct SliceScore {
    /// Patient id.
    pub patient: String,
    /// Slice number.
    pub slice: u32,
    /// Tumour pixels in the truth.
    pub truth_pixels: u64,
    /// Dice.
    pub dice: f64,
    /// IoU.
    pub iou: f64,
    /// Tversky index TP / (TP + 0.3 FP + 0.7 FN) (alpha 0.3 on FP, beta 0.7 on FN, as in
    /// Abraham & Khan).
    pub tversky: f64,
    /// HD95 in pixels; `None` when the prediction is empty.
    pub hd95: Option<f64>,
}

/// Per-patient volumetric result.
#[derive(Debug, Clone, Serialize)]
pub struct PatientScore {
    /// Patient id.
    pub patient: String,
    /// Volumetric Dice.
    pub dice: f64,
    /// Truth tumour pixels over all slices.
    pub truth_pixels: u64,
    /// Predicted tumour pixels over all slices.
    pub predicted_pixels: u64,
}

/// The full segmentation report.
#[derive(Debug, Clone, Serialize)]
pub struct SegmentationReport {
    /// Patients evaluated.
    pub patients: usize,
    /// Slices evaluated.
    pub slices: usize,
    /// Mean per-patient volumetric Dice with 95% bootstrap CI over patients.
    pub patient_dice_mean: Interval,
    /// Median per-patient volumetric Dice.
    pub patient_dice_median: f64,
    /// Patients without tumour in the truth (scored 1 if the prediction is empty, else 0).
    pub patients_without_tumor: usize,
    /// Mean Dice over tumour slices.
    pub slice_dice_mean: f64,
    /// Mean IoU over tumour slices.
    pub slice_iou_mean: f64,
    /// Mean Tversky (alpha 0.3 FP, beta 0.7 FN) over tumour slices.
    pub slice_tversky_mean: f64,
    /// Mean HD95 (pixels) over tumour slices with a non-empty prediction.
    pub slice_hd95_mean: f64,
    /// Tumour slices whose prediction is empty.
    pub missed_tumor_slices: usize,
    /// Tumour slices.
    pub tumor_slices: usize,
    /// Tumour-free slices.
    pub empty_slices: usize,
    /// Tumour-free slices with any predicted pixel.
    pub false_positive_slices: usize,
    /// Predicted pixels on tumour-free slices.
    pub false_positive_pixels: u64,
    /// Per patient.
    pub per_patient: Vec<PatientScore>,
    /// Per tumour slice.
    pub per_slice: Vec<SliceScore>,
}

/// Evaluate a set of slice pairs.
pub fn evaluate_segmentation(pairs: &[SlicePair], seed: u64) -> SegmentationReport {
    let mut by_patient: BTreeMap<&str, (Counts, u64, u64)> = BTreeMap::new();
    let mut per_slice = Vec::new();
    let (mut empty, mut fp_slices, mut fp_pixels) = (0, 0, 0u64);
    for p in pairs {
        let c = Counts::of(p.prediction, p.truth);
        let e = by_patient.entry(p.patient).or_default();
        e.0 = e.0 + c;
        e.1 += c.tp + c.fn_;
        e.2 += c.tp + c.fp;
        if c.tp + c.fn_ == 0 {
            empty += 1;
            if c.fp > 0 {
                fp_slices += 1;
                fp_pixels += c.fp;
            }
        } else {
            per_slice.push(SliceScore {
                patient: p.patient.to_string(),
                slice: p.slice,
                truth_pixels: c.tp + c.fn_,
                dice: c.dice().unwrap_or(0.0),
                iou: c.iou().unwrap_or(0.0),
                tversky: c.tversky(0.3, 0.7).unwrap_or(0.0),
                hd95: hd95(p.prediction, p.truth, p.width, p.height),
            });
        }
    }
    let per_patient: Vec<PatientScore> = by_patient
        .iter()
        .map(|(id, (c, t, pr))| PatientScore {
            patient: id.to_string(),
            dice: c.dice().unwrap_or(1.0),
            truth_pixels: *t,
            predicted_pixels: *pr,
        })
        .collect();
    let dices: Vec<f64> = per_patient.iter().map(|p| p.dice).collect();
    let col = |f: &dyn Fn(&SliceScore) -> f64| mean(&per_slice.iter().map(f).collect::<Vec<_>>());
    let hds: Vec<f64> = per_slice.iter().filter_map(|s| s.hd95).collect();
    SegmentationReport {
        patients: per_patient.len(),
        slices: pairs.len(),
        patient_dice_mean: mean_ci(&dices, seed),
        patient_dice_median: median(&dices),
        patients_without_tumor: per_patient.iter().filter(|p| p.truth_pixels == 0).count(),
        slice_dice_mean: col(&|s| s.dice),
        slice_iou_mean: col(&|s| s.iou),
        slice_tversky_mean: col(&|s| s.tversky),
        slice_hd95_mean: mean(&hds),
        missed_tumor_slices: per_slice.iter().filter(|s| s.hd95.is_none()).count(),
        tumor_slices: per_slice.len(),
        empty_slices: empty,
        false_positive_slices: fp_slices,
        false_positive_pixels: fp_pixels,
        per_patient,
        per_slice,
    }
}

impl SegmentationReport {
    /// A markdown table of the headline numbers.
    pub fn markdown(&self, title: &str) -> String {
        let mut s = format!("### {title}\n\n| metric | value |\n| --- | --- |\n");
        let mut row = |k: &str, v: String| s.push_str(&format!("| {k} | {v} |\n"));
        row("patients / slices", format!("{} / {}", self.patients, self.slices));
        row("mean per-patient Dice [95% CI]", self.patient_dice_mean.to_string());
        row("median per-patient Dice", format!("{:.3}", self.patient_dice_median));
        row("patients without tumour", self.patients_without_tumor.to_string());
        row("tumour slices: mean Dice", format!("{:.3}", self.slice_dice_mean));
        row("tumour slices: mean IoU", format!("{:.3}", self.slice_iou_mean));
        row(
            "tumour slices: mean Tversky, TP / (TP + 0.3 FP + 0.7 FN)",
            format!("{:.3}", self.slice_tversky_mean),
        );
        row(
            "tumour slices: mean HD95 (px; over those with a prediction, the missed ones excluded)",
            format!("{:.2}", self.slice_hd95_mean),
        );
        row(
            "tumour slices missed (empty prediction)",
            format!("{} of {}", self.missed_tumor_slices, self.tumor_slices),
        );
        row(
            "tumour-free slices with false positives",
            format!(
                "{} of {} ({} px)",
                self.false_positive_slices, self.empty_slices, self.false_positive_pixels
            ),
        );
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volumetric_dice_sums_over_slices() {
        let t1 = [1, 1, 0, 0];
        let p1 = [1, 0, 0, 0];
        let t2 = [0, 0, 0, 0];
        let p2 = [0, 0, 1, 0];
        let pairs = vec![
            SlicePair {
                patient: "a",
                slice: 1,
                width: 2,
                height: 2,
                truth: &t1,
                prediction: &p1,
            },
            SlicePair {
                patient: "a",
                slice: 2,
                width: 2,
                height: 2,
                truth: &t2,
                prediction: &p2,
            },
            SlicePair {
                patient: "b",
                slice: 1,
                width: 2,
                height: 2,
                truth: &t2,
                prediction: &t2,
            },
        ];
        let r = evaluate_segmentation(&pairs, 0);
        // Patient a: TP 1, FN 1, FP 1 -> 2/4; patient b: both empty -> 1.
        assert_eq!(r.per_patient[0].dice, 0.5);
        assert_eq!(r.per_patient[1].dice, 1.0);
        assert_eq!(r.patient_dice_mean.value, 0.75);
        assert_eq!(
            (r.tumor_slices, r.empty_slices, r.false_positive_slices, r.false_positive_pixels),
            (1, 2, 1, 1)
        );
        assert!((r.per_slice[0].dice - 2.0 / 3.0).abs() < 1e-12);
        assert!(r.markdown("t").contains("0.750"));
    }
}
