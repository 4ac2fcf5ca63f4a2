//! Detection (tumour / no tumour per slice) evaluation: threshold metrics, ROC-AUC, a
//! scikit-learn-style classification report, calibration of the score, bootstrap CIs over
//! patients, and patient-level detection.

use crate::bootstrap::{bootstrap_ci, Interval};
use crate::calibration::{calibration, Calibration};
use serde::Serialize;
use std::collections::BTreeMap;

/// One scored slice.
#[derive(Debug, Clone, Serialize)]
pub struct Scored {
    /// Patient id.
    pub patient: String,
    /// Slice number.
    pub slice: u32,
    /// Tumour probability (or any score, higher = more tumour).
    pub score: f64,
    /// Truth: slice shows tumour.
    pub truth: bool,
    /// Truth tumour pixels (for listing misses).
    pub truth_pixels: u64,
}

/// Confusion counts at a threshold.
#[derive(Debug, Clone, Copy, Default, Serialize, serde::Deserialize, PartialEq)]
pub struct Confusion {
    /// Tumour called tumour.
    pub tp: u64,
    /// Tumour-free called tumour.
    pub fp: u64,
    /// Tumour-free called tumour-free.
    pub tn: u64,
    /// Tumour called tumour-free.
    pub fn_: u64,
}

impl Confusion {
    /// Count at `threshold` (score >= threshold is tumour).
    pub fn at(items: &[&Scored], threshold: f64) -> Self {
        let mut c = Self::default();
        for s in items {
            match (s.score >= threshold, s.truth) {
                (true, true) => c.tp += 1,
                (true, false) => c.fp += 1,
                (false, false) => c.tn += 1,
                (false, true) => c.fn_ += 1,
            }
        }
        c
    }
    fn ratio(a: u64, b: u64) -> f64 {
        if b == 0 {
            0.0
        } else {
            a as f64 / b as f64
        }
    }
    /// Accuracy.
    pub fn accuracy(&self) -> f64 {
        Self::ratio(self.tp + self.tn, self.tp + self.tn + self.fp + self.fn_)
    }
    /// Precision (tumour class).
    pub fn precision(&self) -> f64 {
        Self::ratio(self.tp, self.tp + self.fp)
    }
    /// Recall / sensitivity.
    pub fn recall(&self) -> f64 {
        Self::ratio(self.tp, self.tp + self.fn_)
    }
    /// Specificity.
    pub fn specificity(&self) -> f64 {
        Self::ratio(self.tn, self.tn + self.fp)
    }
    /// F1 of the tumour class.
    pub fn f1(&self) -> f64 {
        let (p, r) = (self.precision(), self.recall());
        if p + r == 0.0 {
            0.0
        } else {
            2.0 * p * r / (p + r)
        }
    }
}

/// ROC-AUC by the Mann-Whitney statistic (ties count one half). NaN with one class only.
pub fn roc_auc(items: &[&Scored]) -> f64 {
    let mut v: Vec<(f64, bool)> = items.iter().map(|s| (s.score, s.truth)).collect();
    v.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (npos, nneg) = (v.iter().filter(|x| x.1).count() as f64, v.iter().filter(|x| !x.1).count() as f64);
    if npos == 0.0 || nneg == 0.0 {
        return f64::NAN;
    }
    // Average ranks over ties.
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < v.len() {
        let mut j = i;
        while j + 1 < v.len() && v[j + 1].0 == v[i].0 {
            j += 1;
        }
        let avg = (i + j) as f64 / 2.0 + 1.0;
        rank_sum += v[i..=j].iter().filter(|x| x.1).count() as f64 * avg;
        i = j + 1;
    }
    (rank_sum - npos * (npos + 1.0) / 2.0) / (npos * nneg)
}

/// ROC curve points (false-positive rate, true-positive rate), from (0,0) to (1,1).
pub fn roc_curve(items: &[&Scored]) -> Vec<(f64, f64)> {
    let mut v: Vec<(f64, bool)> = items.iter().map(|s| (s.score, s.truth)).collect();
    v.sort_by(|a, b| b.0.total_cmp(&a.0));
    let (npos, nneg) = (
        v.iter().filter(|x| x.1).count().max(1) as f64,
        v.iter().filter(|x| !x.1).count().max(1) as f64,
    );
    let (mut tp, mut fp) = (0.0, 0.0);
    let mut pts = vec![(0.0, 0.0)];
    for (i, (s, t)) in v.iter().enumerate() {
        if *t {
            tp += 1.0
        } else {
            fp += 1.0
        }
        if i + 1 == v.len() || v[i + 1].0 != *s {
            pts.push((fp / nneg, tp / npos));
        }
    }
    pts
}

/// Per-class line of the classification report.
#[derive(Debug, Clone, Serialize)]
pub struct ClassLine {
    /// Class name.
    pub class: String,
    /// Precision.
    pub precision: f64,
    /// Recall.
    pub recall: f64,
    /// F1.
    pub f1: f64,
    /// Support.
    pub support: u64,
}

/// Score thresholds at which every report lists its calls: the places `predict --threshold`
/// can be set, from the sensitive end (slices without an outline, under the built-in rule's 0.5)
/// to the sure one.
pub const OPERATING_THRESHOLDS: [f64; 11] = [0.1, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.99];

/// The calls at one score threshold.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, serde::Deserialize)]
pub struct OperatingPoint {
    /// Score threshold (score >= threshold is tumour).
    pub threshold: f64,
    /// Counts at it.
    pub confusion: Confusion,
}

/// The calls of `items` at each of [`OPERATING_THRESHOLDS`].
pub fn operating_points(items: &[&Scored]) -> Vec<OperatingPoint> {
    OPERATING_THRESHOLDS
        .iter()
        .map(|&threshold| OperatingPoint {
            threshold,
            confusion: Confusion::at(items, threshold),
        })
        .collect()
}

/// Operating points as fixed-width text, one line a threshold.
pub fn operating_points_text(points: &[OperatingPoint]) -> String {
    let mut s = format!(
        "{:>9} {:>11} {:>11} {:>9} {:>5} {:>5} {:>5} {:>5}\n",
        "threshold", "sensitivity", "specificity", "accuracy", "tp", "fp", "tn", "fn"
    );
    for p in points {
        let c = &p.confusion;
        s.push_str(&format!(
            "{:>9.2} {:>11.3} {:>11.3} {:>9.3} {:>5} {:>5} {:>5} {:>5}\n",
            p.threshold,
            c.recall(),
            c.specificity(),
            c.accuracy(),
            c.tp,
            c.fp,
            c.tn,
            c.fn_
        ));
    }
    s
}

/// The whole detection report.
#[derive(Debug, Clone, Serialize)]
pub struct DetectionReport {
    /// Threshold used (score >= threshold means tumour).
    pub threshold: f64,
    /// Slices.
    pub slices: usize,
    /// Accuracy with 95% CI over patients.
    pub accuracy: Interval,
    /// Precision with CI.
    pub precision: Interval,
    /// Recall (sensitivity) with CI.
    pub recall: Interval,
    /// Specificity with CI.
    pub specificity: Interval,
    /// F1 with CI.
    pub f1: Interval,
    /// ROC-AUC with CI.
    pub roc_auc: Interval,
    /// Accuracy of answering "no tumour" everywhere.
    pub all_negative_accuracy: f64,
    /// Confusion counts.
    pub confusion: Confusion,
    /// Classification report lines: no tumour, tumour, macro avg, weighted avg.
    pub report: Vec<ClassLine>,
    /// Tumour patients.
    pub tumor_patients: usize,
    /// Tumour patients with at least one slice called tumour ("flagged"): a patient whose tumour
    /// slices are all missed counts when a tumour-free slice of theirs is called tumour.
    pub tumor_patients_detected: usize,
    /// Tumour patients with at least one of their tumour slices called tumour: the tumour
    /// itself was found (a patient flagged only by false positives does not count).
    pub tumor_patients_found: usize,
    /// Tumour-free patients with a slice called tumour.
    pub clean_patients_flagged: usize,
    /// Misclassified slices.
    pub misclassified: Vec<Scored>,
    /// ROC curve points.
    pub roc: Vec<(f64, f64)>,
    /// The calls at [`OPERATING_THRESHOLDS`] of the score.
    pub operating_points: Vec<OperatingPoint>,
    /// How well the score reads as a probability.
    pub calibration: Calibration,
}

/// Group slices by patient for bootstrap resampling.
fn by_patient(items: &[Scored]) -> Vec<Vec<&Scored>> {
    let mut m: BTreeMap<&str, Vec<&Scored>> = BTreeMap::new();
    for s in items {
        m.entry(&s.patient).or_default().push(s);
    }
    m.into_values().collect()
}

/// Evaluate scored slices at a threshold.
pub fn evaluate_detection(items: &[Scored], threshold: f64, seed: u64) -> DetectionReport {
    let all: Vec<&Scored> = items.iter().collect();
    let groups = by_patient(items);
    let ci = |f: &dyn Fn(&[&Scored]) -> f64| {
        bootstrap_ci(
            &groups,
            |gs| f(&gs.iter().flat_map(|g| g.iter().copied()).collect::<Vec<_>>()),
            1000,
            seed,
        )
    };
    let c = Confusion::at(&all, threshold);
    let neg = Confusion {
        tp: c.tn,
        tn: c.tp,
        fp: c.fn_,
        fn_: c.fp,
    };
    let support = [c.tn + c.fp, c.tp + c.fn_];
    let total = (support[0] + support[1]).max(1) as f64;
    let lines = [("no tumour", neg, support[0]), ("tumour", c, support[1])];
    let mut report: Vec<ClassLine> = lines
        .iter()
        .map(|(n, cc, s)| ClassLine {
            class: n.to_string(),
            precision: cc.precision(),
            recall: cc.recall(),
            f1: cc.f1(),
            support: *s,
        })
        .collect();
    let avg = |w: &dyn Fn(usize) -> f64, name: &str| {
        let f = |g: &dyn Fn(&ClassLine) -> f64| (0..2).map(|i| w(i) * g(&report[i])).sum::<f64>();
        ClassLine {
            class: name.into(),
            precision: f(&|l| l.precision),
            recall: f(&|l| l.recall),
            f1: f(&|l| l.f1),
            support: support[0] + support[1],
        }
    };
    let macro_avg = avg(&|_| 0.5, "macro avg");
    let weighted = avg(&|i| support[i] as f64 / total, "weighted avg");
    report.push(macro_avg);
    report.push(weighted);
    let tumor_groups: Vec<&Vec<&Scored>> = groups.iter().filter(|g| g.iter().any(|s| s.truth)).collect();
    DetectionReport {
        threshold,
        slices: items.len(),
        accuracy: ci(&|s| Confusion::at(s, threshold).accuracy()),
        precision: ci(&|s| Confusion::at(s, threshold).precision()),
        recall: ci(&|s| Confusion::at(s, threshold).recall()),
        specificity: ci(&|s| Confusion::at(s, threshold).specificity()),
        f1: ci(&|s| Confusion::at(s, threshold).f1()),
        roc_auc: ci(&|s| roc_auc(s)),
        all_negative_accuracy: support[0] as f64 / total,
        confusion: c,
        report,
        tumor_patients: tumor_groups.len(),
        tumor_patients_detected: tumor_groups.iter().filter(|g| g.iter().any(|s| s.score >= threshold)).count(),
        tumor_patients_found: tumor_groups
            .iter()
            .filter(|g| g.iter().any(|s| s.truth && s.score >= threshold))
            .count(),
        clean_patients_flagged: groups
            .iter()
            .filter(|g| !g.iter().any(|s| s.truth) && g.iter().any(|s| s.score >= threshold))
            .count(),
        misclassified: items.iter().filter(|s| (s.score >= threshold) != s.truth).cloned().collect(),
        roc: roc_curve(&all),
        operating_points: operating_points(&all),
        calibration: calibration(&groups, seed),
    }
}

/// Choose the threshold that maximises accuracy on (validation) scores, placed midway between
/// the scores it separates (any threshold in that gap calls the validation slices alike; its
/// lowest end, the lowest score called tumour, would miss a new slice scoring a hair under it);
/// ties between gaps go to the threshold closest to 0.5, and 0.5 itself is kept when it lies in
/// a best gap. This is the rule stored with a detection model.
pub fn best_accuracy_threshold(items: &[Scored]) -> f64 {
    let all: Vec<&Scored> = items.iter().collect();
    let mut scores: Vec<f64> = items.iter().map(|s| s.score).collect();
    scores.sort_by(|a, b| a.total_cmp(b));
    scores.dedup();
    // Each gap's threshold: midway below each score (the lowest score stands for itself).
    let mut cands: Vec<f64> = scores
        .iter()
        .enumerate()
        .map(|(i, &t)| if i == 0 { t } else { scores[i - 1] + (t - scores[i - 1]) / 2.0 })
        .collect();
    cands.push(0.5);
    let mut best: (f64, f64) = (f64::NEG_INFINITY, 0.5);
    for t in cands {
        let acc = Confusion::at(&all, t).accuracy();
        if acc > best.0 + 1e-12 || ((acc - best.0).abs() <= 1e-12 && (t - 0.5).abs() < (best.1 - 0.5).abs()) {
            best = (acc, t);
        }
    }
    best.1
}

impl DetectionReport {
    /// The classification report in scikit-learn's layout, followed by headline metrics.
    pub fn text(&self) -> String {
        let mut s = format!(
            // scikit-learn's layout: names right-aligned to the longest ("weighted avg"), two spaces.
            "{:>12}  {:>9} {:>9} {:>9} {:>9}\n\n",
            "", "precision", "recall", "f1-score", "support"
        );
        for (i, l) in self.report.iter().enumerate() {
            if i == 2 {
                s.push_str(&format!(
                    "\n{:>12}  {:>9} {:>9} {:>9.2} {:>9}\n",
                    "accuracy", "", "", self.accuracy.value, self.slices
                ));
            }
            s.push_str(&format!(
                "{:>12}  {:>9.2} {:>9.2} {:>9.2} {:>9}\n",
                l.class, l.precision, l.recall, l.f1, l.support
            ));
        }
        let c = &self.confusion;
        s.push_str(&format!(
            "\nconfusion (rows truth, cols prediction)\n{:>12}  {:>9} {:>9}\n{:>12}  {:>9} {:>9}\n{:>12}  {:>9} {:>9}\n",
            "", "no tumour", "tumour", "no tumour", c.tn, c.fp, "tumour", c.fn_, c.tp
        ));
        s.push_str(&format!(
            "\nthreshold {:.4}\naccuracy {}\nprecision {}\nrecall {}\nspecificity {}\nF1 {}\nROC-AUC {}\nBrier score {}\nexpected calibration error {}\nall-negative accuracy {:.3}\ntumour patients found (a tumour slice called tumour) {} of {}, flagged (any slice called tumour) {}; tumour-free patients flagged {}\n",
            self.threshold, self.accuracy, self.precision, self.recall, self.specificity, self.f1, self.roc_auc, self.calibration.brier, self.calibration.ece, self.all_negative_accuracy,
            self.tumor_patients_found, self.tumor_patients, self.tumor_patients_detected, self.clean_patients_flagged
        ));
        s.push_str("\ncalls at other thresholds of the score (score >= threshold is tumour)\n");
        s.push_str(&operating_points_text(&self.operating_points));
        s
    }
}

/// A scored slice for tests: patient `p`, slice 0, 10 truth pixels when `truth`.
#[cfg(test)]
pub(crate) fn test_slice(p: &str, score: f64, truth: bool) -> Scored {
    Scored {
        patient: p.into(),
        slice: 0,
        score,
        truth,
        truth_pixels: truth as u64 * 10,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use test_slice as s;

    #[test]
    fn auc_and_confusion_by_hand() {
        let v = vec![s("a", 0.9, true), s("a", 0.8, false), s("b", 0.7, true), s("b", 0.1, false)];
        let r: Vec<&Scored> = v.iter().collect();
        assert_eq!(roc_auc(&r), 0.75);
        let c = Confusion::at(&r, 0.5);
        assert_eq!(
            c,
            Confusion {
                tp: 2,
                fp: 1,
                tn: 1,
                fn_: 0
            }
        );
        assert_eq!(c.accuracy(), 0.75);
        assert!((c.f1() - 0.8).abs() < 1e-12);
        let rep = evaluate_detection(&v, 0.5, 1);
        assert_eq!(rep.report[1].support, 2);
        assert_eq!(rep.tumor_patients_detected, 2);
        assert_eq!(rep.tumor_patients_found, 2);
        assert_eq!(rep.misclassified.len(), 1);
        assert!(rep.text().contains("macro avg"));
        assert_eq!(roc_curve(&r).last(), Some(&(1.0, 1.0)));
    }

    /// The classification report is laid out as scikit-learn's `classification_report` prints
    /// the same calls (its output pasted here), column for column.
    #[test]
    fn classification_report_as_scikit_learn_prints_it() {
        let v = vec![s("a", 0.9, true), s("a", 0.8, false), s("b", 0.7, true), s("b", 0.1, false)];
        let sklearn = "              precision    recall  f1-score   support

   no tumour       1.00      0.50      0.67         2
      tumour       0.67      1.00      0.80         2

    accuracy                           0.75         4
   macro avg       0.83      0.75      0.73         4
weighted avg       0.83      0.75      0.73         4
";
        let text = evaluate_detection(&v, 0.5, 1).text();
        assert!(text.starts_with(sklearn), "{text}");
    }

    /// A tumour patient whose tumour slices are all missed is flagged by a false positive, but
    /// its tumour is not found.
    #[test]
    fn a_patient_flagged_only_by_false_positives_is_not_found() {
        let v = vec![s("a", 0.9, true), s("b", 0.2, true), s("b", 0.8, false), s("c", 0.1, true)];
        let rep = evaluate_detection(&v, 0.5, 1);
        assert_eq!(
            (rep.tumor_patients, rep.tumor_patients_detected, rep.tumor_patients_found),
            (3, 2, 1)
        );
    }

    #[test]
    fn operating_points_count_each_threshold() {
        let v = vec![s("a", 0.15, true), s("a", 0.45, false), s("b", 0.5, true), s("b", 0.95, false)];
        let r: Vec<&Scored> = v.iter().collect();
        let pts = operating_points(&r);
        assert_eq!(pts.len(), OPERATING_THRESHOLDS.len());
        let at = |t: f64| pts.iter().find(|p| p.threshold == t).unwrap().confusion;
        // 0.1: everything called; 0.2: the 0.15 tumour missed; 0.5: inclusive; 0.99: nothing.
        assert_eq!(
            at(0.1),
            Confusion {
                tp: 2,
                fp: 2,
                tn: 0,
                fn_: 0
            }
        );
        assert_eq!(
            at(0.2),
            Confusion {
                tp: 1,
                fp: 2,
                tn: 0,
                fn_: 1
            }
        );
        assert_eq!(
            at(0.5),
            Confusion {
                tp: 1,
                fp: 1,
                tn: 1,
                fn_: 1
            }
        );
        assert_eq!(
            at(0.99),
            Confusion {
                tp: 0,
                fp: 0,
                tn: 2,
                fn_: 2
            }
        );
        let rep = evaluate_detection(&v, 0.5, 1);
        assert_eq!(rep.operating_points, pts);
        let text = rep.text();
        assert!(
            text.contains("     0.20       0.500       0.000     0.250     1     2     0     1"),
            "{text}"
        );
    }

    #[test]
    fn threshold_rule_maximises_accuracy() {
        let v = vec![s("a", 0.2, false), s("a", 0.3, false), s("b", 0.35, true), s("b", 0.9, true)];
        let t = best_accuracy_threshold(&v);
        assert!(t > 0.3 && t <= 0.35, "{t}");
        // Midway in the gap, not on the lowest tumour score (which a new tumour slice scoring
        // a hair under it would miss).
        assert!((t - 0.325).abs() < 1e-12, "{t}");
        // Pixel counts: midway between 1550 (tumour-free) and 1814 (tumour).
        let px = vec![
            s("a", 0.0, false),
            s("a", 1550.0, false),
            s("b", 1814.0, true),
            s("b", 4000.0, true),
        ];
        assert_eq!(best_accuracy_threshold(&px), 1682.0);
        // 0.5 stays where it lies in a best gap; the lowest score stands for itself.
        let p = vec![s("a", 0.1, false), s("b", 0.8, true)];
        assert_eq!(best_accuracy_threshold(&p), 0.5);
        let all = vec![s("b", 0.7, true), s("b", 0.8, true)];
        assert_eq!(best_accuracy_threshold(&all), 0.5);
        let low = vec![s("b", 0.1, true), s("b", 0.2, true)];
        assert_eq!(best_accuracy_threshold(&low), 0.1);
    }
}
