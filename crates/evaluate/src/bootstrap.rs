//! Percentile bootstrap confidence intervals over independent units (patients).

use rand::{Rng, SeedableRng};

/// A point estimate with a 95% interval.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Interval {
    /// The statistic on the full sample.
    pub value: f64,
    /// 2.5th percentile of the bootstrap distribution.
    pub low: f64,
    /// 97.5th percentile.
    pub high: f64,
}

impl std::fmt::Display for Interval {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:.3} [{:.3}, {:.3}]", self.value, self.low, self.high)
    }
}

/// Bootstrap `stat` over resamples (with replacement) of `units`; deterministic for a seed.
pub fn bootstrap_ci<T, F: Fn(&[&T]) -> f64>(units: &[T], stat: F, resamples: usize, seed: u64) -> Interval {
    let all: Vec<&T> = units.iter().collect();
    let value = stat(&all);
    if units.is_empty() {
        return Interval {
            value,
            low: value,
            high: value,
        };
    }
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut stats: Vec<f64> = (0..resamples)
        .map(|_| {
            let sample: Vec<&T> = (0..units.len()).map(|_| all[rng.random_range(0..units.len())]).collect();
            stat(&sample)
        })
        .filter(|v| v.is_finite())
        .collect();
    stats.sort_by(|a, b| a.total_cmp(b));
    let q = |p: f64| {
        stats
            .get(((stats.len().saturating_sub(1)) as f64 * p).round() as usize)
            .copied()
            .unwrap_or(value)
    };
    Interval {
        value,
        low: q(0.025),
        high: q(0.975),
    }
}

/// Mean of per-unit values (e.g. per-patient Dice) with its bootstrap interval over the units
/// (2,000 resamples), as every patient-level figure is reported.
pub fn mean_ci(values: &[f64], seed: u64) -> Interval {
    bootstrap_ci(values, |s| s.iter().map(|v| **v).sum::<f64>() / s.len() as f64, 2000, seed)
}

/// Mean of a slice (NaN when empty).
pub fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

/// Median of a slice (NaN when empty).
pub fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    match s.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => s[n / 2],
        n => (s[n / 2 - 1] + s[n / 2]) / 2.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interval_contains_the_mean_and_is_deterministic() {
        let v: Vec<f64> = (0..50).map(|i| i as f64).collect();
        let a = bootstrap_ci(&v, |s| s.iter().map(|x| **x).sum::<f64>() / s.len() as f64, 500, 1);
        assert_eq!(a, bootstrap_ci(&v, |s| s.iter().map(|x| **x).sum::<f64>() / s.len() as f64, 500, 1));
        assert!(a.low < 24.5 && a.high > 24.5 && a.value == 24.5);
        assert_eq!(median(&[3.0, 1.0, 2.0, 10.0]), 2.5);
    }
}
