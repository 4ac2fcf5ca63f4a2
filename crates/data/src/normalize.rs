//! Per-volume intensity normalisation as in Buda et al. (2019): for each channel, clip to the
//! 10th..99th percentile of the whole patient volume, rescale to 0..1, then z-score with the
//! volume's mean and standard deviation. Because the input is 8-bit, the whole transform is a
//! 256-entry lookup table per channel.

/// Lookup tables mapping an 8-bit value of each channel to its normalised value.
#[derive(Debug, Clone, PartialEq)]
pub struct Normalizer {
    /// `lut[c][v]`: normalised value of byte `v` in channel `c`.
    pub lut: [[f32; 256]; 3],
}

/// Percentiles used for clipping.
pub const LOW_PERCENTILE: f64 = 10.0;
/// Upper clipping percentile.
pub const HIGH_PERCENTILE: f64 = 99.0;

fn percentile(hist: &[u64; 256], total: u64, p: f64) -> f64 {
    // Linear-interpolated percentile on the sorted values (numpy's default), from a histogram.
    let rank = p / 100.0 * (total.saturating_sub(1)) as f64;
    let (lo, frac) = (rank.floor() as u64, rank - rank.floor());
    let value_at = |k: u64| {
        let mut seen = 0;
        for (v, &c) in hist.iter().enumerate() {
            seen += c;
            if seen > k {
                return v as f64;
            }
        }
        255.0
    };
    let a = value_at(lo);
    if frac == 0.0 {
        a
    } else {
        a + frac * (value_at(lo + 1) - a)
    }
}

impl Normalizer {
    /// Fit on all RGB (HWC) images of one volume (a patient, or a single slice as fallback).
    pub fn fit<'a>(images: impl IntoIterator<Item = &'a [u8]>) -> Self {
        let mut hist = [[0u64; 256]; 3];
        for img in images {
            for px in img.chunks_exact(3) {
                for c in 0..3 {
                    hist[c][px[c] as usize] += 1;
                }
            }
        }
        let mut lut = [[0f32; 256]; 3];
        for c in 0..3 {
            let total: u64 = hist[c].iter().sum();
            if total == 0 {
                continue;
            }
            let lo = percentile(&hist[c], total, LOW_PERCENTILE);
            let hi = percentile(&hist[c], total, HIGH_PERCENTILE);
            if hi <= lo {
                continue; // A flat channel carries no information: all zeros.
            }
            let scaled = |v: usize| ((v as f64).clamp(lo, hi) - lo) / (hi - lo);
            let mean = (0..256).map(|v| scaled(v) * hist[c][v] as f64).sum::<f64>() / total as f64;
            let var = (0..256).map(|v| (scaled(v) - mean).powi(2) * hist[c][v] as f64).sum::<f64>() / total as f64;
            let std = var.sqrt().max(1e-6);
            for (v, out) in lut[c].iter_mut().enumerate() {
                *out = ((scaled(v) - mean) / std) as f32;
            }
        }
        Self { lut }
    }

    /// Normalise an RGB (HWC) image into planar CHW floats.
    pub fn apply(&self, rgb: &[u8]) -> Vec<f32> {
        let n = rgb.len() / 3;
        let mut out = vec![0f32; rgb.len()];
        for (i, px) in rgb.chunks_exact(3).enumerate() {
            for c in 0..3 {
                out[c * n + i] = self.lut[c][px[c] as usize];
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_mean_unit_std_on_the_fitted_volume() {
        let img: Vec<u8> = (0..300u32).flat_map(|i| [(i % 256) as u8, (i * 7 % 256) as u8, 3]).collect();
        let n = Normalizer::fit([img.as_slice()]);
        let out = n.apply(&img);
        for c in 0..2 {
            let ch = &out[c * 300..(c + 1) * 300];
            let mean: f32 = ch.iter().sum::<f32>() / 300.0;
            let var: f32 = ch.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / 300.0;
            assert!(mean.abs() < 1e-4 && (var.sqrt() - 1.0).abs() < 1e-3, "{mean} {var}");
        }
        assert!(out[600..].iter().all(|&v| v == 0.0), "flat channel maps to zero");
    }

    #[test]
    fn percentile_matches_numpy() {
        let mut h = [0u64; 256];
        h[1..=10].iter_mut().for_each(|c| *c += 1);
        assert!((percentile(&h, 10, 10.0) - 1.9).abs() < 1e-9);
        assert!((percentile(&h, 10, 99.0) - 9.91).abs() < 1e-9);
    }
}
