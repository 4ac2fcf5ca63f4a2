//! Cross-validation: pooling several held-out folds' results into one figure over all of their
//! patients, the way Buda et al. report per-patient Dice over their folds.

use crate::bootstrap::{mean, mean_ci, median, Interval};
use crate::calibration::{bins_table, PooledCalibration};
use crate::compare::{compare_patients, CompareError, Figure, PairedEffect};
use crate::detection::{operating_points_text, Confusion, OperatingPoint};
use serde::Serialize;
use std::collections::BTreeMap;

/// What `evaluate` records for a fold whose patients were verified to be unseen in training
/// and model selection.
pub const VERIFIED_HELD_OUT: &str = "held-out test fold: verified that no evaluated patient was used in training or model selection";

/// Whether a recorded held-out status is a verified test fold. `evaluate` may append a
/// classifier's own status (`Classifier: ...`), which must be verified too, and how the input
/// was altered (`--missing-sequence`), which leaves the fold held out ([`altered_input`]).
pub fn is_verified(held_out: &str) -> bool {
    let mut parts = held_out.split("\n\n");
    parts.next() == Some(VERIFIED_HELD_OUT)
        && parts.all(|part| match part.strip_prefix("Classifier: ") {
            Some(status) => status == VERIFIED_HELD_OUT,
            None => true,
        })
}

/// How a fold's input was altered (the `Input altered ...` note `evaluate` records for
/// `--missing-sequence`), "" for the scans as they are: results on different inputs do not pool.
pub fn altered_input(held_out: &str) -> &str {
    held_out.split("\n\n").find(|p| p.starts_with("Input altered")).unwrap_or("")
}

/// One evaluated fold's segmentation result.
#[derive(Debug, Clone)]
pub struct FoldSegmentation {
    /// Where it was read from (for messages).
    pub source: String,
    /// The fold evaluated.
    pub fold: usize,
    /// The model's description.
    pub model: String,
    /// The held-out status `evaluate` recorded.
    pub held_out: String,
    /// (patient, volumetric Dice) of the configuration evaluated.
    pub patients: Vec<(String, f64)>,
    /// (post-processing variant, mean per-patient Dice on this fold).
    pub variants: Vec<(String, f64)>,
    /// (post-processing variant, its (patient, volumetric Dice)); empty in files written before
    /// `evaluate segment` kept them.
    pub variant_patients: Vec<(String, Vec<(String, f64)>)>,
}

/// One evaluated fold's detection result (the rule the model ships with).
#[derive(Debug, Clone)]
pub struct FoldDetection {
    /// Where it was read from (for messages).
    pub source: String,
    /// The fold evaluated.
    pub fold: usize,
    /// The model's description.
    pub model: String,
    /// The held-out status `evaluate` recorded.
    pub held_out: String,
    /// The candidate rule reported.
    pub candidate: String,
    /// Its confusion counts.
    pub confusion: Confusion,
    /// Its ROC-AUC on this fold.
    pub roc_auc: f64,
    /// Patients with tumour, and how many of them had a slice called tumour.
    pub tumor_patients: u64,
    /// See `tumor_patients`.
    pub tumor_patients_detected: u64,
    /// Tumour patients with one of their tumour slices called tumour (None in files written
    /// before it was counted).
    pub tumor_patients_found: Option<u64>,
    /// The slices the rule called wrong: (patient, slice number).
    pub wrong: Vec<(String, u32)>,
    /// Calibration of its score (None in files written before it was measured).
    pub calibration: Option<PooledCalibration>,
    /// Its calls at fixed score thresholds (None in files written before they were listed).
    pub operating_points: Option<Vec<OperatingPoint>>,
    /// The patients evaluated (empty in files written before they were listed).
    pub patients: Vec<String>,
}

/// Why results cannot be pooled.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PoolError {
    /// No input.
    #[error("nothing to pool")]
    Empty,
    /// A patient counted twice would weigh double.
    #[error("patient {patient} is in both {first} and {second}: pool results of different folds, each patient once")]
    DuplicatePatient {
        /// Patient id.
        patient: String,
        /// First source.
        first: String,
        /// Second source.
        second: String,
    },
    /// A variant's per-patient figures do not pair with the fold's own.
    #[error("{files}: variant {variant:?} cannot be paired with the evaluated configuration: {reason}")]
    Variant {
        /// Where the folds were read from.
        files: String,
        /// The variant.
        variant: String,
        /// Why.
        reason: CompareError,
    },
    /// A fold counted twice would weigh double.
    #[error("fold {fold} is in both {first} and {second}: pool results of different folds")]
    DuplicateFold {
        /// The fold.
        fold: usize,
        /// First source.
        first: String,
        /// Second source.
        second: String,
    },
}

/// A fold's line in a pooled table.
#[derive(Debug, Clone, Serialize)]
pub struct FoldRow {
    /// The fold.
    pub fold: usize,
    /// Where it was read from.
    pub source: String,
    /// The model's description.
    pub model: String,
    /// Whether the fold was a verified held-out test fold.
    pub verified_held_out: bool,
    /// The held-out status `evaluate` recorded.
    pub held_out: String,
    /// Patients (segmentation) or slices (detection).
    pub count: usize,
    /// Mean per-patient Dice (segmentation) or accuracy (detection).
    pub value: f64,
}

/// Segmentation pooled over folds.
#[derive(Debug, Clone, Serialize)]
pub struct PooledSegmentation {
    /// Per fold.
    pub folds: Vec<FoldRow>,
    /// Patients pooled.
    pub patients: usize,
    /// Mean per-patient Dice over all pooled patients, bootstrap 95% CI over patients.
    pub patient_dice_mean: Interval,
    /// Median per-patient Dice.
    pub patient_dice_median: f64,
    /// Lowest and highest fold mean.
    pub fold_range: (f64, f64),
    /// Post-processing variants present in every fold: pooled mean (folds weighted by patients).
    pub variants: Vec<(String, f64)>,
    /// Variants with per-patient figures in every fold, paired patient by patient with each
    /// fold's evaluated (shipped) configuration over all pooled patients.
    pub variant_effects: Vec<(String, PairedEffect)>,
    /// True when every fold was a verified held-out test fold.
    pub all_verified_held_out: bool,
}

/// Detection pooled over folds.
#[derive(Debug, Clone, Serialize)]
pub struct PooledDetection {
    /// Per fold (count = slices, value = accuracy).
    pub folds: Vec<FoldRow>,
    /// Summed confusion counts.
    pub confusion: Confusion,
    /// Accuracy of the summed counts.
    pub accuracy: f64,
    /// Sensitivity of the summed counts.
    pub sensitivity: f64,
    /// Specificity of the summed counts.
    pub specificity: f64,
    /// Precision of the summed counts.
    pub precision: f64,
    /// Mean of the folds' ROC-AUCs (scores of different models are not ranked together), over
    /// the folds where it is defined (both classes present).
    pub mean_fold_roc_auc: f64,
    /// How many folds that mean is over.
    pub roc_auc_folds: usize,
    /// Tumour patients, and how many were flagged (a slice called tumour).
    pub tumor_patients: u64,
    /// See `tumor_patients`.
    pub tumor_patients_detected: u64,
    /// How many had one of their tumour slices called tumour (None unless every fold counted it).
    pub tumor_patients_found: Option<u64>,
    /// Calibration of the pooled slices' scores (None unless every fold has it).
    pub calibration: Option<PooledCalibration>,
    /// The folds' calls at fixed score thresholds, summed (None unless every fold lists the same
    /// thresholds). Unlike a ROC curve these pool: each fold's model calls its own slices at T.
    pub operating_points: Option<Vec<OperatingPoint>>,
    /// True when every fold was a verified held-out test fold.
    pub all_verified_held_out: bool,
}

fn check_folds<'a>(folds: impl Iterator<Item = (usize, &'a str)>) -> Result<(), PoolError> {
    let mut seen: BTreeMap<usize, &str> = BTreeMap::new();
    for (fold, source) in folds {
        if let Some(first) = seen.insert(fold, source) {
            return Err(PoolError::DuplicateFold {
                fold,
                first: first.to_string(),
                second: source.to_string(),
            });
        }
    }
    Ok(())
}

/// Each patient in one source only: one counted twice would weigh double.
fn check_patients<'a>(sources: impl Iterator<Item = (&'a str, &'a [String])>) -> Result<(), PoolError> {
    let mut owner: BTreeMap<&str, &str> = BTreeMap::new();
    for (source, patients) in sources {
        for p in patients {
            if let Some(first) = owner.insert(p, source) {
                return Err(PoolError::DuplicatePatient {
                    patient: p.clone(),
                    first: first.to_string(),
                    second: source.to_string(),
                });
            }
        }
    }
    Ok(())
}

/// Pool segmentation results of different folds; each patient must appear once.
pub fn pool_segmentation(folds: &[FoldSegmentation], seed: u64) -> Result<PooledSegmentation, PoolError> {
    if folds.is_empty() {
        return Err(PoolError::Empty);
    }
    check_folds(folds.iter().map(|f| (f.fold, f.source.as_str())))?;
    let ids: Vec<Vec<String>> = folds.iter().map(|f| f.patients.iter().map(|p| p.0.clone()).collect()).collect();
    check_patients(folds.iter().zip(&ids).map(|(f, ids)| (f.source.as_str(), ids.as_slice())))?;
    let dice: Vec<f64> = folds.iter().flat_map(|f| f.patients.iter().map(|p| p.1)).collect();
    let rows: Vec<FoldRow> = folds
        .iter()
        .map(|f| FoldRow {
            fold: f.fold,
            source: f.source.clone(),
            model: f.model.clone(),
            verified_held_out: is_verified(&f.held_out),
            held_out: f.held_out.clone(),
            count: f.patients.len(),
            value: mean(&f.patients.iter().map(|p| p.1).collect::<Vec<_>>()),
        })
        .collect();
    let variants = folds[0]
        .variants
        .iter()
        .filter_map(|(name, _)| {
            let (mut sum, mut n) = (0.0, 0usize);
            for f in folds {
                let (_, v) = f.variants.iter().find(|(m, _)| m == name)?;
                sum += v * f.patients.len() as f64;
                n += f.patients.len();
            }
            Some((name.clone(), sum / n as f64))
        })
        .collect();
    let variant_effects = variant_effects(folds, seed)?;
    let fold_means = rows.iter().map(|r| r.value);
    Ok(PooledSegmentation {
        patients: dice.len(),
        patient_dice_mean: mean_ci(&dice, seed),
        patient_dice_median: median(&dice),
        fold_range: (
            fold_means.clone().fold(f64::INFINITY, f64::min),
            fold_means.fold(f64::NEG_INFINITY, f64::max),
        ),
        variants,
        variant_effects,
        all_verified_held_out: rows.iter().all(|r| r.verified_held_out),
        folds: rows,
    })
}

/// Each variant that every fold kept per patient, paired with the folds' evaluated configuration
/// over all of their patients (in the first fold's order of variants).
fn variant_effects(folds: &[FoldSegmentation], seed: u64) -> Result<Vec<(String, PairedEffect)>, PoolError> {
    let base: Vec<Figure> = folds
        .iter()
        .flat_map(|f| f.patients.iter().map(|(p, d)| (p.clone(), f.fold, *d)))
        .collect();
    let mut effects = Vec::new();
    'variant: for (name, _) in &folds[0].variant_patients {
        let mut cand: Vec<Figure> = Vec::with_capacity(base.len());
        for f in folds {
            let Some((_, per)) = f.variant_patients.iter().find(|(m, _)| m == name) else {
                continue 'variant;
            };
            cand.extend(per.iter().map(|(p, d)| (p.clone(), f.fold, *d)));
        }
        let paired = compare_patients(&base, &cand, seed).map_err(|reason| PoolError::Variant {
            files: folds.iter().map(|f| f.source.as_str()).collect::<Vec<_>>().join(", "),
            variant: name.clone(),
            reason,
        })?;
        effects.push((name.clone(), paired.effect()));
    }
    Ok(effects)
}

/// Pool detection results of different folds by summing their confusion counts.
pub fn pool_detection(folds: &[FoldDetection]) -> Result<PooledDetection, PoolError> {
    if folds.is_empty() {
        return Err(PoolError::Empty);
    }
    check_folds(folds.iter().map(|f| (f.fold, f.source.as_str())))?;
    check_patients(folds.iter().map(|f| (f.source.as_str(), f.patients.as_slice())))?;
    let mut c = Confusion::default();
    for f in folds {
        c.tp += f.confusion.tp;
        c.fp += f.confusion.fp;
        c.tn += f.confusion.tn;
        c.fn_ += f.confusion.fn_;
    }
    let rows: Vec<FoldRow> = folds
        .iter()
        .map(|f| {
            let k = f.confusion;
            FoldRow {
                fold: f.fold,
                source: f.source.clone(),
                model: format!("{} ({})", f.model, f.candidate),
                verified_held_out: is_verified(&f.held_out),
                held_out: f.held_out.clone(),
                count: (k.tp + k.fp + k.tn + k.fn_) as usize,
                value: k.accuracy(),
            }
        })
        .collect();
    // A fold of one class only has no ROC-AUC; it would make the mean NaN.
    let defined_aucs: Vec<f64> = folds.iter().map(|f| f.roc_auc).filter(|a| a.is_finite()).collect();
    Ok(PooledDetection {
        confusion: c,
        accuracy: c.accuracy(),
        sensitivity: c.recall(),
        specificity: c.specificity(),
        precision: c.precision(),
        mean_fold_roc_auc: mean(&defined_aucs),
        roc_auc_folds: defined_aucs.len(),
        tumor_patients: folds.iter().map(|f| f.tumor_patients).sum(),
        tumor_patients_detected: folds.iter().map(|f| f.tumor_patients_detected).sum(),
        tumor_patients_found: folds.iter().map(|f| f.tumor_patients_found).sum(),
        calibration: folds
            .iter()
            .map(|f| f.calibration.as_ref())
            .collect::<Option<Vec<_>>>()
            .and_then(|c| PooledCalibration::pool(&c)),
        operating_points: pool_operating_points(folds),
        all_verified_held_out: rows.iter().all(|r| r.verified_held_out),
        folds: rows,
    })
}

/// The folds' operating points summed threshold by threshold, where all list the same ones.
fn pool_operating_points(folds: &[FoldDetection]) -> Option<Vec<OperatingPoint>> {
    let lists = folds.iter().map(|f| f.operating_points.as_ref()).collect::<Option<Vec<_>>>()?;
    let first = lists.first()?;
    let thresholds = |l: &Vec<OperatingPoint>| l.iter().map(|p| p.threshold).collect::<Vec<_>>();
    if lists.iter().any(|l| thresholds(l) != thresholds(first)) {
        return None;
    }
    Some(
        first
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let mut c = Confusion::default();
                for l in &lists {
                    let k = l[i].confusion;
                    (c.tp, c.fp, c.tn, c.fn_) = (c.tp + k.tp, c.fp + k.fp, c.tn + k.tn, c.fn_ + k.fn_);
                }
                OperatingPoint {
                    threshold: p.threshold,
                    confusion: c,
                }
            })
            .collect(),
    )
}

fn folds(n: usize) -> String {
    if n == 1 {
        "1 fold".into()
    } else {
        format!("{n} folds")
    }
}

fn status_line(all_verified: bool, rows: &[FoldRow]) -> String {
    if all_verified {
        "Every fold is a verified held-out test fold of its model.\n".to_string()
    } else {
        // Folds with the same status share one line: "folds 1, 2 (VALIDATION fold ...)".
        let mut by_status: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for r in rows.iter().filter(|r| !r.verified_held_out) {
            by_status.entry(&r.held_out).or_default().push(r.fold.to_string());
        }
        let not: Vec<String> = by_status
            .iter()
            .map(|(status, f)| format!("{} {} ({status})", if f.len() == 1 { "fold" } else { "folds" }, f.join(", ")))
            .collect();
        format!("NOT a test result: {}.\n", not.join("; "))
    }
}

fn fold_table(rows: &[FoldRow], count: &str, value: &str) -> String {
    let mut s = format!("| fold | model | {count} | {value} | held out |\n| --- | --- | --- | --- | --- |\n");
    for r in rows {
        let status = if r.verified_held_out { "verified" } else { "NO" };
        s.push_str(&format!("| {} | {} | {} | {:.3} | {status} |\n", r.fold, r.model, r.count, r.value));
    }
    s
}

impl PooledSegmentation {
    /// Markdown: the pooled figure, then the folds and the variants.
    pub fn markdown(&self) -> String {
        let mut s = format!(
            "## Segmentation pooled over {} ({} patients)\n\n{}\nMean per-patient Dice {} (bootstrap over patients), median {:.3}; fold means {:.3} to {:.3}.\n\n",
            folds(self.folds.len()),
            self.patients,
            status_line(self.all_verified_held_out, &self.folds),
            self.patient_dice_mean,
            self.patient_dice_median,
            self.fold_range.0,
            self.fold_range.1,
        );
        s.push_str(&fold_table(&self.folds, "patients", "mean patient Dice"));
        if self.variant_effects.is_empty() {
            // Files written before per-patient variant figures were kept: means only.
            if !self.variants.is_empty() {
                s.push_str("\n| post-processing variant | pooled mean patient Dice |\n| --- | --- |\n");
                for (name, v) in &self.variants {
                    s.push_str(&format!("| {name} | {v:.3} |\n"));
                }
            }
        } else {
            s.push_str(&format!(
                "\n| post-processing variant | pooled mean patient Dice | {} |\n| --- | --- | --- | --- |\n",
                PairedEffect::COLUMNS
            ));
            for (name, v) in &self.variants {
                let effect = self.variant_effects.iter().find(|(m, _)| m == name).map(|(_, e)| e);
                s.push_str(&format!("| {name} | {v:.3} | {} |\n", PairedEffect::cells(effect)));
            }
        }
        s
    }
}

impl PooledDetection {
    /// Markdown: the pooled counts, then the folds.
    pub fn markdown(&self) -> String {
        let c = self.confusion;
        let mut s = format!(
            "## Detection pooled over {} ({} slices)\n\n{}\n| metric | value |\n| --- | --- |\n| accuracy | {:.3} |\n| sensitivity | {:.3} |\n| specificity | {:.3} |\n| precision | {:.3} |\n| confusion (tp / fp / tn / fn) | {} / {} / {} / {} |\n| mean of the folds' ROC-AUC{} | {:.3} |\n| tumour patients found (a tumour slice called tumour) | {} of {} |\n| tumour patients flagged (any slice called tumour) | {} of {} |\n\n",
            folds(self.folds.len()),
            c.tp + c.fp + c.tn + c.fn_,
            status_line(self.all_verified_held_out, &self.folds),
            self.accuracy,
            self.sensitivity,
            self.specificity,
            self.precision,
            c.tp,
            c.fp,
            c.tn,
            c.fn_,
            if self.roc_auc_folds < self.folds.len() {
                format!(" ({} of {} folds: the others hold one class only)", self.roc_auc_folds, self.folds.len())
            } else {
                String::new()
            },
            self.mean_fold_roc_auc,
            self.tumor_patients_found.map_or("not counted".to_string(), |n| n.to_string()),
            self.tumor_patients,
            self.tumor_patients_detected,
            self.tumor_patients,
        );
        if let Some(c) = &self.calibration {
            s.push_str(&format!(
                "Calibration of the pooled slices' scores: Brier score {:.4}, expected calibration error {:.4}.\n\n{}\n",
                c.brier,
                c.ece,
                bins_table(&c.bins)
            ));
        }
        if let Some(points) = &self.operating_points {
            s.push_str(&format!(
                "The folds' calls at other thresholds of the score, summed (score >= threshold is tumour):\n\n```\n{}```\n\n",
                operating_points_text(points)
            ));
        }
        s.push_str(&fold_table(&self.folds, "slices", "accuracy"));
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fold(fold: usize, patients: &[(&str, f64)], raw: f64) -> FoldSegmentation {
        FoldSegmentation {
            source: format!("f{fold}"),
            fold,
            model: "m".into(),
            held_out: VERIFIED_HELD_OUT.into(),
            patients: patients.iter().map(|(p, d)| (p.to_string(), *d)).collect(),
            variants: vec![("raw".into(), raw)],
            variant_patients: Vec::new(),
        }
    }

    #[test]
    fn pairs_variants_patient_by_patient_across_folds() {
        // Fold 0 kept per-patient variant figures for "raw" and "tta"; fold 1 only for "raw".
        let with = |f: FoldSegmentation, per: &[(&str, &[(&str, f64)])]| FoldSegmentation {
            variants: per
                .iter()
                .map(|(n, ps)| (n.to_string(), ps.iter().map(|p| p.1).sum::<f64>() / ps.len() as f64))
                .collect(),
            variant_patients: per
                .iter()
                .map(|(n, ps)| (n.to_string(), ps.iter().map(|(p, d)| (p.to_string(), *d)).collect()))
                .collect(),
            ..f
        };
        let f0 = with(
            fold(0, &[("a", 0.4), ("b", 0.6)], 0.0),
            &[("raw", &[("a", 0.5), ("b", 0.6)]), ("tta", &[("a", 0.4), ("b", 0.7)])],
        );
        let f1 = with(fold(1, &[("c", 0.9)], 0.0), &[("raw", &[("c", 0.7)])]);
        let p = pool_segmentation(&[f0.clone(), f1.clone()], 1).unwrap();
        // "raw": differences +0.1, 0, -0.2 over the three patients; "tta" is not in fold 1.
        assert_eq!(p.variant_effects.len(), 1);
        let (name, e) = &p.variant_effects[0];
        assert_eq!(name, "raw");
        assert!((e.difference.value - (-0.1 / 3.0)).abs() < 1e-12);
        assert_eq!((e.better, e.worse, e.tied), (1, 1, 1));
        assert!(p.markdown().contains("| raw | 0.600 | -0.033 ["), "{}", p.markdown());
        // A variant's figures for other patients than the fold's are refused, naming it.
        let other = with(fold(1, &[("c", 0.9)], 0.0), &[("raw", &[("d", 0.7)])]);
        let err = pool_segmentation(&[f0, other], 1).unwrap_err();
        assert!(matches!(err, PoolError::Variant { ref variant, .. } if variant == "raw"), "{err}");
        // Older files (no per-patient figures): means only, as before.
        let old = pool_segmentation(&[fold(0, &[("a", 0.4)], 0.4), fold(1, &[("c", 0.9)], 0.9)], 1).unwrap();
        assert!(old.variant_effects.is_empty());
        assert!(old.markdown().contains("| post-processing variant | pooled mean patient Dice |\n"));
    }

    #[test]
    fn pools_patients_not_fold_means() {
        // Fold means 0.5 and 0.9 average 0.7, but the three patients' mean is 0.633.
        let p = pool_segmentation(&[fold(0, &[("a", 0.4), ("b", 0.6)], 0.4), fold(1, &[("c", 0.9)], 1.0)], 1).unwrap();
        assert_eq!(p.patients, 3);
        assert!((p.patient_dice_mean.value - 1.9 / 3.0).abs() < 1e-12);
        assert!((p.patient_dice_median - 0.6).abs() < 1e-12);
        assert_eq!(p.fold_range, (0.5, 0.9));
        // Variants weigh each fold by its patients: (0.4 * 2 + 1.0) / 3.
        assert!((p.variants[0].1 - 0.6).abs() < 1e-12);
        assert!(p.patient_dice_mean.low <= p.patient_dice_mean.value && p.patient_dice_mean.value <= p.patient_dice_mean.high);
        assert!(p.all_verified_held_out);
        assert!(p.markdown().contains("| 1 | m | 1 | 0.900 | verified |"));
        // A robustness run (input altered) on a held-out fold is still held out.
        let altered = FoldSegmentation {
            held_out: format!("{VERIFIED_HELD_OUT}\n\nInput altered (robustness check, --missing-sequence both)"),
            ..fold(2, &[("d", 0.5)], 0.5)
        };
        assert!(
            pool_segmentation(&[fold(0, &[("a", 0.4)], 0.4), altered], 1)
                .unwrap()
                .all_verified_held_out
        );
    }

    #[test]
    fn refuses_a_patient_or_fold_twice_and_flags_validation_folds() {
        let err = pool_segmentation(&[fold(0, &[("a", 0.4)], 0.4), fold(1, &[("a", 0.9)], 0.9)], 1).unwrap_err();
        assert!(matches!(err, PoolError::DuplicatePatient { ref patient, .. } if patient == "a"));
        let err = pool_segmentation(&[fold(0, &[("a", 0.4)], 0.4), fold(0, &[("b", 0.9)], 0.9)], 1).unwrap_err();
        assert!(matches!(err, PoolError::DuplicateFold { fold: 0, .. }));
        assert_eq!(pool_segmentation(&[], 1).unwrap_err(), PoolError::Empty);
        let val = |f: usize, p: &str| FoldSegmentation {
            held_out: "VALIDATION fold".into(),
            ..fold(f, &[(p, 0.9)], 0.9)
        };
        let p = pool_segmentation(&[fold(0, &[("a", 0.4)], 0.4), val(1, "b")], 1).unwrap();
        assert!(!p.all_verified_held_out);
        assert!(p.markdown().contains("NOT a test result: fold 1 (VALIDATION fold)."));
        let p = pool_segmentation(&[val(1, "b"), val(2, "c")], 1).unwrap();
        assert!(p.markdown().contains("NOT a test result: folds 1, 2 (VALIDATION fold)."));
    }

    #[test]
    fn detection_sums_confusion_counts() {
        let det = |fold, tp, fp, tn, fn_, auc| FoldDetection {
            source: format!("d{fold}"),
            fold,
            model: "m".into(),
            held_out: VERIFIED_HELD_OUT.into(),
            candidate: "rule".into(),
            confusion: Confusion { tp, fp, tn, fn_ },
            roc_auc: auc,
            tumor_patients: 2,
            tumor_patients_detected: 1,
            tumor_patients_found: Some(1),
            wrong: Vec::new(),
            calibration: None,
            operating_points: None,
            patients: vec![],
        };
        let p = pool_detection(&[det(0, 8, 1, 10, 1, 0.9), det(1, 2, 0, 7, 1, 1.0)]).unwrap();
        assert_eq!(
            p.confusion,
            Confusion {
                tp: 10,
                fp: 1,
                tn: 17,
                fn_: 2
            }
        );
        assert!((p.accuracy - 27.0 / 30.0).abs() < 1e-12);
        assert!((p.sensitivity - 10.0 / 12.0).abs() < 1e-12);
        assert!((p.specificity - 17.0 / 18.0).abs() < 1e-12);
        assert!((p.mean_fold_roc_auc - 0.95).abs() < 1e-12);
        assert_eq!(p.roc_auc_folds, 2);
        assert_eq!(
            (p.tumor_patients, p.tumor_patients_detected, p.tumor_patients_found),
            (4, 2, Some(2))
        );
        // A fold file written before patients were counted as found: the total is not counted.
        let old = FoldDetection {
            tumor_patients_found: None,
            ..det(1, 2, 0, 7, 1, 1.0)
        };
        let p = pool_detection(&[det(0, 8, 1, 10, 1, 0.9), old]).unwrap();
        assert_eq!(p.tumor_patients_found, None);
        assert!(p
            .markdown()
            .contains("| tumour patients found (a tumour slice called tumour) | not counted of 4 |"));
        // A fold of one class has no ROC-AUC: the mean is over the others, and says so.
        let one_class = pool_detection(&[det(0, 8, 1, 10, 1, 0.9), det(1, 0, 0, 7, 0, f64::NAN)]).unwrap();
        assert!((one_class.mean_fold_roc_auc - 0.9).abs() < 1e-12 && one_class.roc_auc_folds == 1);
        let md = one_class.markdown();
        assert!(
            md.contains("ROC-AUC (1 of 2 folds: the others hold one class only) | 0.900"),
            "{md}"
        );
        assert!(p.markdown().contains("| 10 / 1 / 17 / 2 |"));
        // Files written before calibration was measured pool without it, and so does a mix.
        assert!(p.calibration.is_none());
        assert!(!p.markdown().contains("Calibration"));
        let bins = |slices, tumor_slices| {
            let mut b = crate::calibration::reliability(&[]);
            (b[9].slices, b[9].score_sum, b[9].tumor_slices) = (slices, slices as f64, tumor_slices);
            b
        };
        let calibrated = |fold, slices, tumor| FoldDetection {
            calibration: Some(PooledCalibration::of_fold(0.1, bins(slices, tumor))),
            ..det(fold, 1, 0, 0, 0, 1.0)
        };
        let p = pool_detection(&[calibrated(0, 10, 9), calibrated(1, 30, 30)]).unwrap();
        let c = p.calibration.as_ref().unwrap();
        assert_eq!((c.bins[9].slices, c.bins[9].tumor_slices), (40, 39));
        assert!((c.ece - 1.0 / 40.0).abs() < 1e-12 && (c.brier - 0.1).abs() < 1e-12);
        assert!(p.markdown().contains("Brier score 0.1000, expected calibration error 0.0250"));
        assert!(pool_detection(&[calibrated(0, 10, 9), det(1, 2, 0, 7, 1, 1.0)])
            .unwrap()
            .calibration
            .is_none());
    }

    /// A classifier tuned on the fold, or a patient in two detection results, went unnoticed.
    #[test]
    fn verification_covers_the_classifier_and_detection_counts_each_patient_once() {
        let classifier = |status: &str| format!("{VERIFIED_HELD_OUT}\n\nClassifier: {status}");
        assert!(is_verified(&classifier(VERIFIED_HELD_OUT)));
        assert!(!is_verified(&classifier("VALIDATION fold: used for model selection")));
        assert!(!is_verified(&format!("{VERIFIED_HELD_OUT} and more")));
        let altered = format!("{VERIFIED_HELD_OUT}\n\nInput altered (robustness check, --missing-sequence both): x");
        assert!(is_verified(&altered) && altered_input(&altered).contains("both"));
        assert_eq!(altered_input(VERIFIED_HELD_OUT), "");
        let det = |fold: usize, patients: &[&str]| FoldDetection {
            source: format!("f{fold}"),
            fold,
            model: "m".into(),
            held_out: VERIFIED_HELD_OUT.into(),
            candidate: "c".into(),
            confusion: Confusion::default(),
            roc_auc: 1.0,
            tumor_patients: 0,
            tumor_patients_detected: 0,
            tumor_patients_found: Some(0),
            wrong: vec![],
            calibration: None,
            operating_points: None,
            patients: patients.iter().map(|p| p.to_string()).collect(),
        };
        assert!(pool_detection(&[det(0, &["a", "b"]), det(1, &["c"])]).is_ok());
        let err = pool_detection(&[det(0, &["a", "b"]), det(1, &["b"])]).unwrap_err();
        assert!(matches!(err, PoolError::DuplicatePatient { .. }), "{err}");
    }

    #[test]
    fn operating_points_sum_threshold_by_threshold() {
        let point = |threshold, tp, fn_| OperatingPoint {
            threshold,
            confusion: Confusion { tp, fp: 1, tn: 5, fn_ },
        };
        let det = |fold, points: Option<Vec<OperatingPoint>>| FoldDetection {
            source: format!("d{fold}"),
            fold,
            model: "m".into(),
            held_out: VERIFIED_HELD_OUT.into(),
            candidate: "rule".into(),
            confusion: Confusion::default(),
            roc_auc: 1.0,
            tumor_patients: 1,
            tumor_patients_detected: 1,
            tumor_patients_found: Some(1),
            wrong: Vec::new(),
            calibration: None,
            operating_points: points,
            patients: vec![],
        };
        let a = det(0, Some(vec![point(0.2, 4, 0), point(0.5, 3, 1)]));
        let b = det(1, Some(vec![point(0.2, 2, 1), point(0.5, 1, 2)]));
        let p = pool_detection(&[a.clone(), b]).unwrap();
        let pts = p.operating_points.as_ref().unwrap();
        let summed = |tp, fn_| Confusion { tp, fp: 2, tn: 10, fn_ };
        assert_eq!((pts[0].threshold, pts[0].confusion), (0.2, summed(6, 1)));
        assert_eq!((pts[1].threshold, pts[1].confusion), (0.5, summed(4, 3)));
        assert!(p.markdown().contains("     0.20       0.857       0.833"), "{}", p.markdown());
        // An older file without them, or other thresholds: not pooled.
        assert!(pool_detection(&[a.clone(), det(1, None)]).unwrap().operating_points.is_none());
        let other = det(1, Some(vec![point(0.3, 2, 1), point(0.5, 1, 2)]));
        assert!(pool_detection(&[a, other]).unwrap().operating_points.is_none());
    }
}
