//! Paired comparison of two models on the same patients. Two recipes evaluated on one fold
//! differ by a few thousandths of mean Dice while single patients move by tenths, so a
//! difference is reported with the spread of its per-patient differences: a bootstrap interval
//! over patients and a sign-flip permutation test. Detection is paired slice by slice: which
//! slices only one of the two models calls wrong, with McNemar's exact test.

use crate::bootstrap::{mean, mean_ci, median, Interval};
use rand::{Rng, SeedableRng};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// One patient's figure under both models.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PatientPair {
    /// Patient id.
    pub patient: String,
    /// The fold the patient was evaluated in.
    pub fold: usize,
    /// Volumetric Dice of the baseline.
    pub baseline: f64,
    /// Volumetric Dice of the candidate.
    pub candidate: f64,
}

impl PatientPair {
    /// Candidate minus baseline.
    pub fn difference(&self) -> f64 {
        self.candidate - self.baseline
    }
}

/// The comparison of two models' per-patient Dice on the same patients.
#[derive(Debug, Clone, Serialize)]
pub struct PairedComparison {
    /// Patients compared.
    pub patients: usize,
    /// Mean per-patient Dice of the baseline.
    pub baseline_mean: f64,
    /// Mean per-patient Dice of the candidate.
    pub candidate_mean: f64,
    /// Mean of the per-patient differences (candidate - baseline), with a bootstrap 95%
    /// interval over patients (2,000 resamples).
    pub difference: Interval,
    /// Median per-patient difference.
    pub median_difference: f64,
    /// Patients the candidate scores higher / lower / exactly the same on.
    pub better: usize,
    /// See `better`.
    pub worse: usize,
    /// See `better`.
    pub tied: usize,
    /// Two-sided sign-flip permutation p-value of the mean difference: how often flipping the
    /// signs of the differences at random gives a mean at least as far from zero (exact over
    /// every sign pattern up to 20 patients, else 20,000 seeded draws).
    pub p_value: f64,
    /// Every patient, largest gain first.
    pub per_patient: Vec<PatientPair>,
}

/// A paired difference in brief, without the per-patient list: one row of a table of effects
/// (e.g. each post-processing variant against the configuration a model ships with).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PairedEffect {
    /// Mean per-patient difference (candidate - baseline) with its bootstrap 95% interval.
    pub difference: Interval,
    /// Patients the candidate scores higher / lower / the same on.
    pub better: usize,
    /// See `better`.
    pub worse: usize,
    /// See `better`.
    pub tied: usize,
    /// Two-sided sign-flip permutation p-value (see [`PairedComparison::p_value`]).
    pub p_value: f64,
}

impl PairedEffect {
    /// The two table columns [`PairedEffect::cells`] fills, against the shipped configuration.
    pub const COLUMNS: &'static str = "vs as shipped, paired [95% CI] | patients better / worse";

    /// An effect's two table cells, e.g. `+0.012 [-0.003, +0.031] | 9 / 4`; `- | -` without one
    /// (the baseline's own row, or figures that cannot be paired).
    pub fn cells(effect: Option<&Self>) -> String {
        match effect {
            Some(e) => {
                let i = &e.difference;
                format!("{:+.3} [{:+.3}, {:+.3}] | {} / {}", i.value, i.low, i.high, e.better, e.worse)
            }
            None => "- | -".to_string(),
        }
    }
}

/// Why two results cannot be compared.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum CompareError {
    /// Nothing to compare.
    #[error("no patients to compare")]
    NoPatients,
    /// The two sides hold different patients.
    #[error("the two sides hold different patients (only in the baseline: {only_baseline:?}; only in the candidate: {only_candidate:?})")]
    DifferentPatients {
        /// Patients without a candidate figure.
        only_baseline: Vec<String>,
        /// Patients without a baseline figure.
        only_candidate: Vec<String>,
    },
    /// A patient appears twice on one side.
    #[error("patient {0} appears twice on one side")]
    Duplicate(String),
    /// A patient's two figures come from different folds.
    #[error("patient {0} was evaluated in fold {1} by the baseline and fold {2} by the candidate")]
    DifferentFolds(String, usize, usize),
    /// A figure is not a number.
    #[error("patient {0} has no finite Dice ({1})")]
    NotFinite(String, f64),
    /// The two sides' detection results cover different folds or slices.
    #[error("the two sides' detection results differ in folds or slices ({0})")]
    DifferentSlices(String),
}

/// One patient's figure on one side: (patient, fold, volumetric Dice).
pub type Figure = (String, usize, f64);

fn by_patient(side: &[Figure]) -> Result<BTreeMap<&str, (usize, f64)>, CompareError> {
    let mut map = BTreeMap::new();
    for (patient, fold, dice) in side {
        if !dice.is_finite() {
            return Err(CompareError::NotFinite(patient.clone(), *dice));
        }
        if map.insert(patient.as_str(), (*fold, *dice)).is_some() {
            return Err(CompareError::Duplicate(patient.clone()));
        }
    }
    Ok(map)
}

/// Compare the candidate's per-patient Dice with the baseline's on the same patients.
pub fn compare_patients(baseline: &[Figure], candidate: &[Figure], seed: u64) -> Result<PairedComparison, CompareError> {
    let (base, cand) = (by_patient(baseline)?, by_patient(candidate)?);
    let only =
        |a: &BTreeMap<&str, _>, b: &BTreeMap<&str, _>| a.keys().filter(|k| !b.contains_key(*k)).map(|k| k.to_string()).collect::<Vec<_>>();
    let (only_baseline, only_candidate) = (only(&base, &cand), only(&cand, &base));
    if !only_baseline.is_empty() || !only_candidate.is_empty() {
        return Err(CompareError::DifferentPatients {
            only_baseline,
            only_candidate,
        });
    }
    if base.is_empty() {
        return Err(CompareError::NoPatients);
    }
    let mut pairs = Vec::with_capacity(base.len());
    for (patient, &(fold, baseline)) in &base {
        let (cand_fold, candidate) = cand[patient];
        if cand_fold != fold {
            return Err(CompareError::DifferentFolds(patient.to_string(), fold, cand_fold));
        }
        pairs.push(PatientPair {
            patient: patient.to_string(),
            fold,
            baseline,
            candidate,
        });
    }
    pairs.sort_by(|a, b| b.difference().total_cmp(&a.difference()).then_with(|| a.patient.cmp(&b.patient)));
    let d: Vec<f64> = pairs.iter().map(PatientPair::difference).collect();
    let count = |f: fn(&f64) -> bool| d.iter().filter(|v| f(v)).count();
    Ok(PairedComparison {
        patients: pairs.len(),
        baseline_mean: mean(&pairs.iter().map(|p| p.baseline).collect::<Vec<_>>()),
        candidate_mean: mean(&pairs.iter().map(|p| p.candidate).collect::<Vec<_>>()),
        difference: mean_ci(&d, seed),
        median_difference: median(&d),
        better: count(|v| *v > 0.0),
        worse: count(|v| *v < 0.0),
        tied: count(|v| *v == 0.0),
        p_value: sign_flip_p(&d, seed),
        per_patient: pairs,
    })
}

impl PairedComparison {
    /// The comparison in brief (see [`PairedEffect`]).
    pub fn effect(&self) -> PairedEffect {
        PairedEffect {
            difference: self.difference,
            better: self.better,
            worse: self.worse,
            tied: self.tied,
            p_value: self.p_value,
        }
    }
}

/// Two-sided sign-flip permutation p-value of the mean of `d` (see [`PairedComparison::p_value`]).
fn sign_flip_p(d: &[f64], seed: u64) -> f64 {
    let observed = d.iter().sum::<f64>().abs();
    // Sums within rounding of the observed one count as "as extreme" (ties of equal magnitudes).
    let extreme = |sum: f64| sum.abs() >= observed - 1e-12;
    if d.len() <= 20 {
        let patterns = 1u64 << d.len();
        let hits = (0..patterns)
            .filter(|bits| extreme(d.iter().enumerate().map(|(i, v)| if bits >> i & 1 == 1 { -v } else { *v }).sum()))
            .count();
        return hits as f64 / patterns as f64;
    }
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let draws = 20_000;
    let hits = (0..draws)
        .filter(|_| extreme(d.iter().map(|v| if rng.random::<bool>() { -v } else { *v }).sum()))
        .count();
    // The observed pattern is one of the possible ones.
    (hits + 1) as f64 / (draws + 1) as f64
}

/// A report section's heading and the two sides it compares.
fn section_head(title: &str, baseline: &str, candidate: &str, folds_note: &str) -> String {
    format!("## {title}\n\nBaseline: {baseline}\n\nCandidate: {candidate}\n\n{folds_note}\n\n")
}

impl PairedComparison {
    /// A markdown report: the models, what the folds were (`folds_note`), the summary table and
    /// every patient's two figures.
    pub fn markdown(&self, baseline: &str, candidate: &str, folds_note: &str) -> String {
        let title = format!("Paired comparison over {} patients", self.patients);
        let mut s = section_head(&title, baseline, candidate, folds_note);
        s.push_str("| | mean per-patient Dice |\n| --- | --- |\n");
        s.push_str(&format!(
            "| baseline | {:.4} |\n| candidate | {:.4} |\n",
            self.baseline_mean, self.candidate_mean
        ));
        let i = &self.difference;
        s.push_str(&format!(
            "| difference, candidate - baseline [95% CI over patients] | {:+.4} [{:+.4}, {:+.4}] |\n",
            i.value, i.low, i.high
        ));
        s.push_str(&format!("| median per-patient difference | {:+.4} |\n", self.median_difference));
        s.push_str(&format!(
            "| patients better / worse / tied | {} / {} / {} |\n",
            self.better, self.worse, self.tied
        ));
        s.push_str(&format!("| sign-flip permutation p (two-sided) | {:.3} |\n\n", self.p_value));
        s.push_str("| patient | fold | baseline | candidate | difference |\n| --- | --- | --- | --- | --- |\n");
        for p in &self.per_patient {
            s.push_str(&format!(
                "| {} | {} | {:.3} | {:.3} | {:+.3} |\n",
                p.patient,
                p.fold,
                p.baseline,
                p.candidate,
                p.difference()
            ));
        }
        s
    }
}

/// One fold of one side's detection: its slice counts and the slices its rule called wrong.
#[derive(Debug, Clone, PartialEq)]
pub struct FoldCalls {
    /// The fold evaluated.
    pub fold: usize,
    /// Slices evaluated.
    pub slices: u64,
    /// Of which show a tumour.
    pub tumor_slices: u64,
    /// The slices called wrong: (patient, slice number).
    pub wrong: Vec<(String, u32)>,
    /// The patients evaluated (empty from files written before they were listed).
    pub patients: Vec<String>,
}

/// Two models' slice calls on the same slices.
#[derive(Debug, Clone, Serialize)]
pub struct DetectionComparison {
    /// Slices compared.
    pub slices: u64,
    /// Slice accuracy of the baseline.
    pub baseline_accuracy: f64,
    /// Slice accuracy of the candidate.
    pub candidate_accuracy: f64,
    /// Slices only the baseline calls wrong (the candidate gets them right).
    pub fixed: usize,
    /// Slices only the candidate calls wrong.
    pub broken: usize,
    /// Slices both call wrong.
    pub both_wrong: usize,
    /// McNemar's exact two-sided p over the discordant slices. Slices of one patient are not
    /// independent, so it overstates the evidence; the per-patient table shows where they fall.
    pub mcnemar_p: f64,
    /// (patient, slices the baseline / the candidate calls wrong), for patients where they differ,
    /// largest gain first.
    pub per_patient: Vec<(String, usize, usize)>,
}

/// Pair the two sides' slice calls fold by fold: the same folds, and in each the same numbers of
/// slices and tumour slices, or [`CompareError::DifferentSlices`].
pub fn compare_detection(baseline: &[FoldCalls], candidate: &[FoldCalls]) -> Result<DetectionComparison, CompareError> {
    let folds = |side: &[FoldCalls]| -> Result<BTreeMap<usize, (u64, u64)>, CompareError> {
        let mut m = BTreeMap::new();
        for f in side {
            if m.insert(f.fold, (f.slices, f.tumor_slices)).is_some() {
                return Err(CompareError::DifferentSlices(format!("fold {} appears twice on one side", f.fold)));
            }
        }
        Ok(m)
    };
    let (bf, cf) = (folds(baseline)?, folds(candidate)?);
    if bf != cf {
        return Err(CompareError::DifferentSlices(format!(
            "baseline {bf:?}, candidate {cf:?} (fold: (slices, tumour slices))"
        )));
    }
    // Equal counts can be other patients; where both sides list theirs, they must agree.
    for b in baseline {
        if let Some(c) = candidate.iter().find(|c| c.fold == b.fold) {
            let (bp, cp): (BTreeSet<&String>, BTreeSet<&String>) = (b.patients.iter().collect(), c.patients.iter().collect());
            if !bp.is_empty() && !cp.is_empty() && bp != cp {
                let only =
                    |x: &BTreeSet<&String>, y: &BTreeSet<&String>| x.difference(y).map(|p| p.as_str()).collect::<Vec<_>>().join(", ");
                return Err(CompareError::DifferentSlices(format!(
                    "fold {}: patients only in the baseline: {}; only in the candidate: {}",
                    b.fold,
                    only(&bp, &cp),
                    only(&cp, &bp)
                )));
            }
        }
    }
    let slices: u64 = bf.values().map(|(n, _)| n).sum();
    if slices == 0 {
        return Err(CompareError::NoPatients);
    }
    let wrong = |side: &[FoldCalls]| -> BTreeSet<(String, u32)> { side.iter().flat_map(|f| f.wrong.iter().cloned()).collect() };
    let (bw, cw) = (wrong(baseline), wrong(candidate));
    let fixed = bw.difference(&cw).count();
    let broken = cw.difference(&bw).count();
    let mut per: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for (p, _) in &bw {
        per.entry(p).or_default().0 += 1;
    }
    for (p, _) in &cw {
        per.entry(p).or_default().1 += 1;
    }
    let mut per_patient: Vec<(String, usize, usize)> = per
        .into_iter()
        .filter(|(_, (b, c))| b != c)
        .map(|(p, (b, c))| (p.to_string(), b, c))
        .collect();
    per_patient.sort_by_key(|(p, b, c)| (*c as i64 - *b as i64, p.clone()));
    let accuracy = |w: usize| 1.0 - w as f64 / slices as f64;
    Ok(DetectionComparison {
        slices,
        baseline_accuracy: accuracy(bw.len()),
        candidate_accuracy: accuracy(cw.len()),
        fixed,
        broken,
        both_wrong: bw.intersection(&cw).count(),
        mcnemar_p: mcnemar_exact(fixed, broken),
        per_patient,
    })
}

/// Two-sided exact McNemar p: twice the binomial(b + c, 1/2) tail at min(b, c), at most 1.
fn mcnemar_exact(b: usize, c: usize) -> f64 {
    let n = b + c;
    // ln C(n, k) - n ln 2, summed in log space so that large n stays finite.
    let ln_choose = |k: usize| -> f64 { (1..=k).map(|i| ((n - k + i) as f64).ln() - (i as f64).ln()).sum() };
    let tail: f64 = (0..=b.min(c))
        .map(|k| (ln_choose(k) - n as f64 * std::f64::consts::LN_2).exp())
        .sum();
    (2.0 * tail).min(1.0)
}

impl DetectionComparison {
    /// A markdown report of the slice pairing.
    pub fn markdown(&self, baseline: &str, candidate: &str, folds_note: &str) -> String {
        let title = format!("Paired detection over {} slices", self.slices);
        let mut s = section_head(&title, baseline, candidate, folds_note);
        s.push_str("| | slice accuracy |\n| --- | --- |\n");
        s.push_str(&format!(
            "| baseline | {:.4} |\n| candidate | {:.4} |\n| difference, candidate - baseline | {:+.4} |\n",
            self.baseline_accuracy,
            self.candidate_accuracy,
            self.candidate_accuracy - self.baseline_accuracy
        ));
        s.push_str(&format!(
            "| slices only the baseline calls wrong / only the candidate / both | {} / {} / {} |\n",
            self.fixed, self.broken, self.both_wrong
        ));
        s.push_str(&format!(
            "| McNemar exact p (two-sided; slices of a patient are not independent, so optimistic) | {:.3} |\n\n",
            self.mcnemar_p
        ));
        if !self.per_patient.is_empty() {
            s.push_str("| patient | wrong slices, baseline | candidate |\n| --- | --- | --- |\n");
            for (p, b, c) in &self.per_patient {
                s.push_str(&format!("| {p} | {b} | {c} |\n"));
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn side(values: &[(&str, f64)]) -> Vec<Figure> {
        values.iter().map(|(p, d)| (p.to_string(), 0, *d)).collect()
    }

    #[test]
    fn differences_counts_and_exact_p_value() {
        let base = side(&[("a", 0.8), ("b", 0.7), ("c", 0.9), ("d", 0.6)]);
        let cand = side(&[("a", 0.9), ("b", 0.7), ("c", 0.8), ("d", 0.8)]);
        let c = compare_patients(&base, &cand, 1).unwrap();
        assert_eq!(c.patients, 4);
        assert!((c.baseline_mean - 0.75).abs() < 1e-12 && (c.candidate_mean - 0.8).abs() < 1e-12);
        // Differences +0.1, 0, -0.1, +0.2: mean 0.05, median 0.05.
        assert!((c.difference.value - 0.05).abs() < 1e-12);
        assert!(c.difference.low <= 0.05 && c.difference.high >= 0.05);
        assert!((c.median_difference - 0.05).abs() < 1e-12);
        assert_eq!((c.better, c.worse, c.tied), (2, 1, 1));
        // Sign patterns of (0.1, 0, 0.1, 0.2) with |sum| >= 0.2: sums are +-0.1 +-0.1 +-0.2 (the
        // zero's sign doubles each): |sum| in {0.4, 0.2, 0.2, 0, ...}: 6 of 8 distinct, x2 = 12 of 16.
        assert!((c.p_value - 12.0 / 16.0).abs() < 1e-12, "{}", c.p_value);
        assert_eq!(c.per_patient[0].patient, "d");
        assert_eq!(c.per_patient[3].patient, "c");
    }

    #[test]
    fn a_consistent_gain_is_significant_and_no_change_is_not() {
        let base: Vec<_> = (0..10).map(|i| (format!("p{i}"), 1, 0.5 + i as f64 * 0.01)).collect();
        let cand: Vec<_> = base.iter().map(|(p, f, d)| (p.clone(), *f, d + 0.02)).collect();
        let c = compare_patients(&base, &cand, 0).unwrap();
        // Only the all-positive and all-negative patterns are as extreme: 2 of 1024.
        assert!((c.p_value - 2.0 / 1024.0).abs() < 1e-12, "{}", c.p_value);
        assert!(c.difference.low > 0.019 && c.difference.high < 0.021);
        let same = compare_patients(&base, &base, 0).unwrap();
        assert_eq!((same.p_value, same.tied, same.difference.value), (1.0, 10, 0.0));
        // Beyond 20 patients the p-value is estimated by seeded draws.
        let many: Vec<_> = (0..30).map(|i| (format!("q{i}"), 0, 0.5)).collect();
        let up: Vec<_> = many.iter().map(|(p, f, d)| (p.clone(), *f, d + 0.01)).collect();
        let c = compare_patients(&many, &up, 3).unwrap();
        assert!(c.p_value > 0.0 && c.p_value < 0.001, "{}", c.p_value);
    }

    #[test]
    fn mismatched_sides_are_refused() {
        let base = side(&[("a", 0.8), ("b", 0.7)]);
        assert_eq!(
            compare_patients(&base, &side(&[("a", 0.8), ("c", 0.7)]), 0).unwrap_err(),
            CompareError::DifferentPatients {
                only_baseline: vec!["b".into()],
                only_candidate: vec!["c".into()]
            }
        );
        assert_eq!(
            compare_patients(&base, &side(&[("a", 0.8), ("a", 0.7)]), 0).unwrap_err(),
            CompareError::Duplicate("a".into())
        );
        let other_fold = vec![("a".to_string(), 2, 0.8), ("b".to_string(), 0, 0.7)];
        assert_eq!(
            compare_patients(&base, &other_fold, 0).unwrap_err(),
            CompareError::DifferentFolds("a".into(), 0, 2)
        );
        assert_eq!(compare_patients(&[], &[], 0).unwrap_err(), CompareError::NoPatients);
        assert!(matches!(
            compare_patients(&side(&[("a", f64::NAN)]), &side(&[("a", 0.5)]), 0),
            Err(CompareError::NotFinite(..))
        ));
    }

    fn calls(fold: usize, slices: u64, wrong: &[(&str, u32)]) -> FoldCalls {
        FoldCalls {
            patients: vec![],
            fold,
            slices,
            tumor_slices: slices / 2,
            wrong: wrong.iter().map(|(p, n)| (p.to_string(), *n)).collect(),
        }
    }

    #[test]
    fn detection_pairs_slices_and_tests_the_discordant_ones() {
        let base = [calls(0, 100, &[("a", 1), ("a", 2), ("b", 5), ("c", 1)]), calls(1, 50, &[("d", 3)])];
        let cand = [calls(0, 100, &[("a", 2), ("c", 1)]), calls(1, 50, &[("d", 3), ("d", 4)])];
        let c = compare_detection(&base, &cand).unwrap();
        assert_eq!(c.slices, 150);
        assert!((c.baseline_accuracy - 145.0 / 150.0).abs() < 1e-12);
        assert!((c.candidate_accuracy - 146.0 / 150.0).abs() < 1e-12);
        // Fixed: a#1, b#5; broken: d#4; both: a#2, c#1, d#3.
        assert_eq!((c.fixed, c.broken, c.both_wrong), (2, 1, 3));
        // Binomial(3, 1/2): P(X <= 1) = 4/8, doubled = 1.
        assert!((c.mcnemar_p - 1.0).abs() < 1e-12);
        assert_eq!(
            c.per_patient,
            [("a".to_string(), 2, 1), ("b".to_string(), 1, 0), ("d".to_string(), 1, 2)]
        );
        // Ten slices fixed, none broken: 2 / 2^10.
        let many: Vec<(&str, u32)> = (0..10).map(|i| ("p", i)).collect();
        let c = compare_detection(&[calls(0, 20, &many)], &[calls(0, 20, &[])]).unwrap();
        assert!((c.mcnemar_p - 2.0 / 1024.0).abs() < 1e-12, "{}", c.mcnemar_p);
        assert!(c.markdown("b", "c", "note").contains("| 10 / 0 / 0 |"));
        // A model against itself: nothing discordant, p = 1.
        assert_eq!(compare_detection(&base, &base).unwrap().mcnemar_p, 1.0);
    }

    #[test]
    fn detection_on_other_slices_is_refused() {
        let base = [calls(0, 100, &[])];
        for other in [[calls(1, 100, &[])], [calls(0, 99, &[])]] {
            assert!(matches!(compare_detection(&base, &other), Err(CompareError::DifferentSlices(_))));
        }
        let twice = [calls(0, 100, &[]), calls(0, 100, &[])];
        assert!(matches!(compare_detection(&twice, &twice), Err(CompareError::DifferentSlices(_))));
        assert_eq!(compare_detection(&[], &[]).unwrap_err(), CompareError::NoPatients);
        // Same counts, other patients (paired before the patients were listed).
        let with = |ids: &[&str]| FoldCalls {
            patients: ids.iter().map(|p| p.to_string()).collect(),
            ..calls(0, 100, &[])
        };
        assert!(compare_detection(&[with(&["a", "b"])], &[with(&["b", "a"])]).is_ok());
        let err = compare_detection(&[with(&["a", "b"])], &[with(&["a", "z"])]).unwrap_err();
        assert!(err.to_string().contains("only in the candidate: z"), "{err}");
    }
}
