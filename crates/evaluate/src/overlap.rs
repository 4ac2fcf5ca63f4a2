//! Per-mask metrics: Dice, IoU, Tversky, and the 95th-percentile Hausdorff distance (pixels).

/// Pixel counts of a predicted mask against the truth; counts add (volumetric metrics sum
/// them over slices).
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct Counts {
    /// True positives.
    pub tp: u64,
    /// False positives.
    pub fp: u64,
    /// False negatives.
    pub fn_: u64,
}

impl Counts {
    /// Count over two 0/1 masks of equal length.
    pub fn of(pred: &[u8], truth: &[u8]) -> Self {
        let mut c = Self::default();
        for (&p, &t) in pred.iter().zip(truth) {
            match (p != 0, t != 0) {
                (true, true) => c.tp += 1,
                (true, false) => c.fp += 1,
                (false, true) => c.fn_ += 1,
                _ => {}
            }
        }
        c
    }
    /// Dice = 2TP / (2TP + FP + FN); `None` when both masks are empty.
    pub fn dice(&self) -> Option<f64> {
        let d = 2 * self.tp + self.fp + self.fn_;
        (d > 0).then(|| 2.0 * self.tp as f64 / d as f64)
    }
    /// IoU = TP / (TP + FP + FN); `None` when both masks are empty.
    pub fn iou(&self) -> Option<f64> {
        let d = self.tp + self.fp + self.fn_;
        (d > 0).then(|| self.tp as f64 / d as f64)
    }
    /// Tversky index TP / (TP + alpha FP + beta FN).
    pub fn tversky(&self, alpha: f64, beta: f64) -> Option<f64> {
        let d = self.tp as f64 + alpha * self.fp as f64 + beta * self.fn_ as f64;
        (d > 0.0).then(|| self.tp as f64 / d)
    }
}

fn boundary(mask: &[u8], w: usize, h: usize) -> Vec<(i64, i64)> {
    let at = |x: i64, y: i64| x >= 0 && y >= 0 && (x as usize) < w && (y as usize) < h && mask[y as usize * w + x as usize] != 0;
    let mut out = Vec::new();
    for y in 0..h as i64 {
        for x in 0..w as i64 {
            if at(x, y) && !(at(x - 1, y) && at(x + 1, y) && at(x, y - 1) && at(x, y + 1)) {
                out.push((x, y));
            }
        }
    }
    out
}

fn directed(a: &[(i64, i64)], b: &[(i64, i64)]) -> Vec<f64> {
    a.iter()
        .map(|&(x, y)| {
            b.iter()
                .map(|&(u, v)| ((x - u).pow(2) + (y - v).pow(2)) as f64)
                .fold(f64::INFINITY, f64::min)
                .sqrt()
        })
        .collect()
}

/// 95th-percentile symmetric Hausdorff distance between mask boundaries, in pixels: the
/// boundary pixels of each mask (those with a 4-neighbour outside it), the distance from each
/// to the nearest boundary pixel of the other, both directions pooled into one list, and its
/// 95th percentile by nearest rank. That is MedPy's `hd95` but for the percentile method
/// (MedPy interpolates; an audit measured 0 to +0.82 px per slice, mean +0.07 px on fold 0);
/// MONAI takes the larger of the two one-way 95th percentiles instead (+15 % there).
/// `None` when either mask is empty (undefined).
pub fn hd95(pred: &[u8], truth: &[u8], w: usize, h: usize) -> Option<f64> {
    let (bp, bt) = (boundary(pred, w, h), boundary(truth, w, h));
    if bp.is_empty() || bt.is_empty() {
        return None;
    }
    let mut d = directed(&bp, &bt);
    d.extend(directed(&bt, &bp));
    d.sort_by(|a, b| a.total_cmp(b));
    let k = ((d.len() as f64 * 0.95).ceil() as usize).clamp(1, d.len()) - 1;
    Some(d[k])
}

impl std::ops::Add for Counts {
    type Output = Self;
    fn add(self, o: Self) -> Self {
        Self {
            tp: self.tp + o.tp,
            fp: self.fp + o.fp,
            fn_: self.fn_ + o.fn_,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_computed_overlaps() {
        let truth = [1, 1, 1, 1, 0, 0];
        let pred = [1, 1, 0, 0, 1, 0];
        let c = Counts::of(&pred, &truth);
        assert_eq!(c, Counts { tp: 2, fp: 1, fn_: 2 });
        assert!((c.dice().unwrap() - 4.0 / 7.0).abs() < 1e-12);
        assert!((c.iou().unwrap() - 0.4).abs() < 1e-12);
        assert_eq!(c.tversky(0.5, 0.5), c.dice());
        assert_eq!(Counts::of(&[0, 0], &[0, 0]).dice(), None);
        assert_eq!(Counts::of(&[1, 0], &[0, 0]).dice(), Some(0.0));
    }

    #[test]
    fn hd95_of_shifted_squares() {
        let (w, h) = (10, 10);
        let sq = |ox: usize| {
            (0..100)
                .map(|i| ((i % 10) >= ox && (i % 10) < ox + 3 && (i / 10) >= 3 && (i / 10) < 6) as u8)
                .collect::<Vec<_>>()
        };
        assert_eq!(hd95(&sq(2), &sq(2), w, h), Some(0.0));
        assert_eq!(hd95(&sq(2), &sq(4), w, h), Some(2.0));
        assert_eq!(hd95(&sq(2), &[0; 100], w, h), None);
    }
}
