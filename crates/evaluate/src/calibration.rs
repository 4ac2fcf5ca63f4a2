//! Calibration of a detection score: does a slice scored p show a tumour about p of the time?
//! The Brier score, the expected calibration error over equal-width bins, and the reliability
//! table behind both. Bins keep sums, not means, so folds pool exactly.

use crate::bootstrap::{bootstrap_ci, Interval};
use crate::detection::Scored;
use serde::{Deserialize, Serialize};

/// Equal-width score bins of the reliability table (as scikit-learn's `calibration_curve`).
pub const BINS: usize = 10;

/// One bin of a reliability table: the slices scored in `[low, high)` (the last bin includes 1).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CalibrationBin {
    /// Lower edge.
    pub low: f64,
    /// Upper edge.
    pub high: f64,
    /// Slices in the bin.
    pub slices: u64,
    /// Sum of their scores.
    pub score_sum: f64,
    /// How many of them show a tumour.
    pub tumor_slices: u64,
}

impl CalibrationBin {
    /// Mean score in the bin (NaN when empty).
    pub fn mean_score(&self) -> f64 {
        self.score_sum / self.slices as f64
    }

    /// Fraction of the bin's slices that show a tumour (NaN when empty).
    pub fn tumor_fraction(&self) -> f64 {
        self.tumor_slices as f64 / self.slices as f64
    }
}

/// Calibration figures of one score, with 95% CIs over patients.
#[derive(Debug, Clone, Serialize)]
pub struct Calibration {
    /// Mean squared difference between score and truth (0 or 1); 0 is perfect.
    pub brier: Interval,
    /// Expected calibration error: the slice-weighted mean of |mean score - tumour fraction|
    /// over the bins.
    pub ece: Interval,
    /// The reliability table.
    pub bins: Vec<CalibrationBin>,
}

/// The reliability table of scored slices (scores clamped into [0, 1]).
pub fn reliability(items: &[&Scored]) -> Vec<CalibrationBin> {
    let mut bins: Vec<CalibrationBin> = (0..BINS)
        .map(|k| CalibrationBin {
            low: k as f64 / BINS as f64,
            high: (k + 1) as f64 / BINS as f64,
            slices: 0,
            score_sum: 0.0,
            tumor_slices: 0,
        })
        .collect();
    for s in items {
        let p = s.score.clamp(0.0, 1.0);
        let b = &mut bins[((p * BINS as f64) as usize).min(BINS - 1)];
        b.slices += 1;
        b.score_sum += p;
        b.tumor_slices += u64::from(s.truth);
    }
    bins
}

/// Expected calibration error of a reliability table (NaN when it is empty).
pub fn expected_calibration_error(bins: &[CalibrationBin]) -> f64 {
    let n: u64 = bins.iter().map(|b| b.slices).sum();
    bins.iter().map(|b| (b.score_sum - b.tumor_slices as f64).abs()).sum::<f64>() / n as f64
}

/// Brier score of scored slices (NaN when there are none).
pub fn brier(items: &[&Scored]) -> f64 {
    items
        .iter()
        .map(|s| (s.score.clamp(0.0, 1.0) - f64::from(u8::from(s.truth))).powi(2))
        .sum::<f64>()
        / items.len() as f64
}

fn flat<'a>(groups: &[&Vec<&'a Scored>]) -> Vec<&'a Scored> {
    groups.iter().flat_map(|g| g.iter().copied()).collect()
}

/// Calibration of scored slices grouped by patient (the bootstrap's units).
pub fn calibration(groups: &[Vec<&Scored>], seed: u64) -> Calibration {
    let all: Vec<&Scored> = groups.iter().flatten().copied().collect();
    Calibration {
        brier: bootstrap_ci(groups, |gs| brier(&flat(gs)), 1000, seed),
        ece: bootstrap_ci(groups, |gs| expected_calibration_error(&reliability(&flat(gs))), 1000, seed),
        bins: reliability(&all),
    }
}

impl Calibration {
    /// The figures and the reliability table in markdown.
    pub fn markdown(&self) -> String {
        format!(
            "Calibration of the reported score (does a score of p mean a tumour p of the time?): Brier score {}, expected calibration error ({BINS} bins) {}.\n\n{}",
            self.brier,
            self.ece,
            bins_table(&self.bins)
        )
    }
}

/// A reliability table in markdown (non-empty bins).
pub fn bins_table(bins: &[CalibrationBin]) -> String {
    let mut s = String::from("| score bin | slices | mean score | slices with tumour |\n| --- | --- | --- | --- |\n");
    for b in bins.iter().filter(|b| b.slices > 0) {
        s.push_str(&format!(
            "| {:.1}-{:.1} | {} | {:.3} | {:.3} ({}) |\n",
            b.low,
            b.high,
            b.slices,
            b.mean_score(),
            b.tumor_fraction(),
            b.tumor_slices
        ));
    }
    s
}

/// A fold's calibration point figures, in the form that pools: its Brier score and bins.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PooledCalibration {
    /// Brier score over all pooled slices.
    pub brier: f64,
    /// Expected calibration error of the summed bins.
    pub ece: f64,
    /// The summed reliability table.
    pub bins: Vec<CalibrationBin>,
}

impl PooledCalibration {
    /// One fold's figures from its Brier score and bins.
    pub fn of_fold(brier: f64, bins: Vec<CalibrationBin>) -> Self {
        Self {
            brier,
            ece: expected_calibration_error(&bins),
            bins,
        }
    }

    /// Folds pooled: bins summed, the Brier score weighted by slices. None without folds or when
    /// the folds' bins differ.
    pub fn pool(folds: &[&PooledCalibration]) -> Option<Self> {
        let first = folds.first()?;
        let same_edges = |f: &&PooledCalibration| {
            f.bins.len() == first.bins.len() && f.bins.iter().zip(&first.bins).all(|(a, b)| (a.low, a.high) == (b.low, b.high))
        };
        if !folds.iter().all(same_edges) {
            return None;
        }
        let mut bins = first.bins.clone();
        bins.iter_mut().for_each(|b| (b.slices, b.score_sum, b.tumor_slices) = (0, 0.0, 0));
        let (mut squared, mut n) = (0.0, 0u64);
        for f in folds {
            let slices: u64 = f.bins.iter().map(|b| b.slices).sum();
            squared += f.brier * slices as f64;
            n += slices;
            for (sum, b) in bins.iter_mut().zip(&f.bins) {
                sum.slices += b.slices;
                sum.score_sum += b.score_sum;
                sum.tumor_slices += b.tumor_slices;
            }
        }
        Some(Self::of_fold(squared / n as f64, bins))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detection::test_slice as s;

    #[test]
    fn brier_and_ece_by_hand() {
        // Bin 0.9-1.0: scores 0.95 and 1.0 (the last bin holds 1), one tumour: |1.95 - 1| = 0.95.
        // Bin 0.2-0.3: score 0.25, no tumour: 0.25. Bin 0.0-0.1: 0.05 with tumour: 0.95.
        let v = [s("a", 0.95, true), s("a", 1.0, false), s("b", 0.25, false), s("b", 0.05, true)];
        let r: Vec<&Scored> = v.iter().collect();
        let brier_by_hand = (0.05f64.powi(2) + 1.0 + 0.25f64.powi(2) + 0.95f64.powi(2)) / 4.0;
        assert!((brier(&r) - brier_by_hand).abs() < 1e-12);
        let bins = reliability(&r);
        assert_eq!(bins.len(), BINS);
        assert_eq!((bins[9].slices, bins[9].tumor_slices), (2, 1));
        assert_eq!((bins[2].slices, bins[0].slices), (1, 1));
        assert!((expected_calibration_error(&bins) - (0.95 + 0.25 + 0.95) / 4.0).abs() < 1e-12);
        let c = calibration(&[vec![&v[0], &v[1]], vec![&v[2], &v[3]]], 7);
        assert!((c.ece.value - 2.15 / 4.0).abs() < 1e-12);
        assert_eq!(c.bins.iter().filter(|b| b.slices > 0).count(), 3);
        assert!(c.markdown().contains("| 0.9-1.0 | 2 | 0.975 | 0.500 (1) |"));
    }

    #[test]
    fn pooling_folds_equals_scoring_their_slices_together() {
        let a = [s("a", 0.95, true), s("a", 0.15, false), s("b", 0.45, true)];
        let b = [s("c", 0.55, false), s("c", 0.05, false)];
        let fold = |v: &[Scored]| {
            let r: Vec<&Scored> = v.iter().collect();
            PooledCalibration::of_fold(brier(&r), reliability(&r))
        };
        let all: Vec<Scored> = a.iter().chain(&b).cloned().collect();
        let pooled = PooledCalibration::pool(&[&fold(&a), &fold(&b)]).unwrap();
        let together = fold(&all);
        assert!((pooled.brier - together.brier).abs() < 1e-12);
        assert!((pooled.ece - together.ece).abs() < 1e-12);
        assert_eq!(pooled.bins, together.bins);
        assert_eq!(PooledCalibration::pool(&[]), None);
        let mut other = fold(&b);
        other.bins.pop();
        assert_eq!(PooledCalibration::pool(&[&fold(&a), &other]), None);
    }

    #[test]
    fn a_calibrated_score_scores_zero_error() {
        // Ten slices at 0.3 of which three show a tumour, ten at 0.8 of which eight do.
        let v: Vec<Scored> = (0..10)
            .map(|i| s("a", 0.3, i < 3))
            .chain((0..10).map(|i| s("b", 0.8, i < 8)))
            .collect();
        let r: Vec<&Scored> = v.iter().collect();
        assert!(expected_calibration_error(&reliability(&r)).abs() < 1e-12);
        // The best Brier score of a score that cannot tell slices apart within a bin.
        assert!((brier(&r) - (0.3 * 0.7 + 0.8 * 0.2) / 2.0).abs() < 1e-12);
    }
}
