//! Segmentation losses on logits `[B, 1, H, W]` and 0/1 targets of the same shape.
//!
//! Overlap losses are computed over the whole batch (global sums) by default, or per slice and
//! averaged ([`Reduction::Slice`]), with smoothing 1 (so soft Dice, as Tversky with
//! alpha = beta = 0.5, carries smoothing 2 in its 2TP form).
//! Tversky index TI = (TP + s) / (TP + alpha FP + beta FN + s) (alpha weighs false positives,
//! beta false negatives; alpha = beta = 0.5 gives Dice); focal Tversky = (1 - TI)^gamma
//! (Abraham & Khan 2019 use gamma = 0.75). The Lovász hinge (Berman et al. 2018) is a convex
//! surrogate of the Jaccard loss 1 - IoU on logits: the hinge errors sorted from worst to best,
//! weighted by how much each raises the Jaccard loss of the errors above it.

use burn::nn::pool::AvgPool2dConfig;
use burn::prelude::*;
use burn::tensor::activation::{relu, sigmoid, softplus};
use serde::{Deserialize, Serialize};

const SMOOTH: f64 = 1.0;

/// Over what an overlap loss (Dice, Tversky, focal Tversky, the Dice of BCE + Dice) sums its
/// true and false positives and negatives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reduction {
    /// One index over the whole batch: a slice weighs by its tumour's size, and a few false
    /// pixels on a tumour-free slice cost little.
    #[default]
    Batch,
    /// One index (and focal term) per slice, averaged over the batch (nnU-Net's "sample Dice"):
    /// every slice weighs the same, so a small tumour counts as much as a large one and any
    /// false positive on a tumour-free slice costs that slice's whole term.
    Slice,
}

/// A segmentation loss.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "kebab-case")]
pub enum SegLoss {
    /// Binary cross-entropy.
    Bce,
    /// Soft Dice.
    Dice,
    /// Tversky.
    Tversky {
        /// Weight of false positives.
        alpha: f64,
        /// Weight of false negatives.
        beta: f64,
    },
    /// Focal Tversky.
    FocalTversky {
        /// Weight of false positives.
        alpha: f64,
        /// Weight of false negatives.
        beta: f64,
        /// Focal exponent.
        gamma: f64,
    },
    /// BCE + soft Dice.
    BceDice,
    /// BCE + Lovász hinge (the Jaccard loss's convex surrogate).
    BceLovasz,
}

impl std::str::FromStr for Reduction {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "batch" => Ok(Self::Batch),
            "slice" => Ok(Self::Slice),
            _ => Err(format!("unknown loss reduction '{s}': batch, slice")),
        }
    }
}

impl std::str::FromStr for SegLoss {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "bce" => Self::Bce,
            "dice" => Self::Dice,
            "tversky" => Self::Tversky { alpha: 0.3, beta: 0.7 },
            "focal-tversky" => Self::FocalTversky {
                alpha: 0.3,
                beta: 0.7,
                gamma: 0.75,
            },
            "bce-dice" => Self::BceDice,
            "bce-lovasz" => Self::BceLovasz,
            _ => {
                return Err(format!(
                    "unknown loss '{s}': bce, dice, tversky, focal-tversky, bce-dice, bce-lovasz"
                ))
            }
        })
    }
}

/// Mean binary cross-entropy with logits (numerically stable form).
pub fn bce_with_logits<const D: usize>(logits: Tensor<D>, target: Tensor<D>) -> Tensor<1> {
    // max(x, 0) - x t + log(1 + exp(-|x|))
    let loss = relu(logits.clone()) - logits.clone() * target + softplus(logits.abs().neg(), 1.0);
    loss.mean()
}

/// The Tversky index: one element over the batch, or one per slice.
fn tversky_index(prob: Tensor<4>, target: Tensor<4>, alpha: f64, beta: f64, r: Reduction) -> Tensor<1> {
    let sum = |t: Tensor<4>| match r {
        Reduction::Batch => t.sum(),
        Reduction::Slice => {
            let b = t.dims()[0];
            t.flatten::<2>(1, 3).sum_dim(1).reshape([b])
        }
    };
    let tp = sum(prob.clone() * target.clone());
    let fp = sum(prob.clone() * (target.clone().neg() + 1.0));
    let fn_ = sum((prob.neg() + 1.0) * target);
    (tp.clone() + SMOOTH) / (tp + fp * alpha + fn_ * beta + SMOOTH)
}

/// The Lovász extension's weights for hinge errors sorted from worst to best whose targets
/// are `gt_sorted` (0/1): weight k is the rise in Jaccard loss when error k joins the k - 1
/// worse ones (Berman et al. 2018, Algorithm 1). They sum to the Jaccard loss of all errors.
fn lovasz_weights(gt_sorted: &[f32]) -> Vec<f32> {
    let positives: f64 = gt_sorted.iter().map(|&g| g as f64).sum();
    let (mut tp, mut fp, mut previous) = (0.0, 0.0, 0.0);
    gt_sorted
        .iter()
        .map(|&g| {
            tp += g as f64;
            fp += 1.0 - g as f64;
            // 1 - IoU when the errors so far are the predicted positives' mistakes.
            let jaccard = 1.0 - (positives - tp) / (positives + fp);
            let weight = jaccard - previous;
            previous = jaccard;
            weight as f32
        })
        .collect()
}

/// The Lovász hinge on logits: over the whole batch, or per slice and averaged. The sort is
/// made outside the graph (it has no gradient); the errors are picked in that order by an
/// index select, through which the gradient flows.
fn lovasz_hinge(logits: Tensor<4>, target: Tensor<4>, r: Reduction) -> Tensor<1> {
    let device = logits.device();
    let slices = match r {
        Reduction::Batch => 1,
        Reduction::Slice => logits.dims()[0],
    };
    let signs = target.clone() * 2.0 - 1.0;
    let errors = (logits * signs).neg().add_scalar(1.0).flatten::<1>(0, 3);
    let floats = |t: Tensor<1>| t.into_data().try_into_vec_as::<f32>().expect("float data read as f32");
    let values = floats(errors.clone());
    let truth = floats(target.flatten::<1>(0, 3));
    let n = values.len();
    let per = n / slices;
    let mut order = Vec::with_capacity(n);
    let mut weights = Vec::with_capacity(n);
    for s in 0..slices {
        let mut idx: Vec<usize> = (s * per..(s + 1) * per).collect();
        idx.sort_unstable_by(|&a, &b| values[b].total_cmp(&values[a]));
        let gt_sorted: Vec<f32> = idx.iter().map(|&i| truth[i]).collect();
        weights.extend(lovasz_weights(&gt_sorted));
        order.extend(idx.into_iter().map(|i| i as i64));
    }
    let order = Tensor::<1, Int>::from_data(TensorData::new(order, [n]), &device);
    let weights = Tensor::<1>::from_data(TensorData::new(weights, [n]), &device);
    (relu(errors.select(0, order)) * weights).sum() / slices as f64
}

/// `(1 - index)^gamma` (gamma `None`: 1), averaged over the slices of a per-slice index.
fn overlap_loss(index: Tensor<1>, gamma: Option<f64>, r: Reduction) -> Tensor<1> {
    let loss = index.neg() + 1.0;
    match (gamma, r) {
        (None, Reduction::Batch) => loss,
        (Some(g), Reduction::Batch) => loss.powf_scalar(g),
        (None, Reduction::Slice) => loss.mean(),
        // A tumour-free slice with no false pixels gives exactly 0, where x^gamma's gradient
        // (gamma < 1) is infinite: the floor keeps it finite.
        (Some(g), Reduction::Slice) => loss.clamp_min(1e-6).powf_scalar(g).mean(),
    }
}

impl SegLoss {
    /// The same loss with other Tversky weights (`alpha` on false positives, `beta` on false
    /// negatives) or focal exponent `gamma`; each `None` keeps the named loss's default. Only
    /// the losses that have a weight take it, so a weight given to another loss is an error,
    /// never silently ignored.
    pub fn with_weights(self, alpha: Option<f64>, beta: Option<f64>, gamma: Option<f64>) -> Result<Self, String> {
        let check = |name: &str, v: Option<f64>, ok: fn(f64) -> bool, what: &str| match v {
            Some(x) if !ok(x) => Err(format!("{name} must be {what}, not {x}")),
            _ => Ok(()),
        };
        check("--tversky-alpha", alpha, |x| x.is_finite() && x >= 0.0, "0 or more")?;
        check("--tversky-beta", beta, |x| x.is_finite() && x >= 0.0, "0 or more")?;
        check("--focal-gamma", gamma, |x| x.is_finite() && x > 0.0, "greater than 0")?;
        let loss = match self {
            Self::Tversky { alpha: a, beta: b } if gamma.is_none() => Self::Tversky {
                alpha: alpha.unwrap_or(a),
                beta: beta.unwrap_or(b),
            },
            Self::FocalTversky {
                alpha: a,
                beta: b,
                gamma: g,
            } => Self::FocalTversky {
                alpha: alpha.unwrap_or(a),
                beta: beta.unwrap_or(b),
                gamma: gamma.unwrap_or(g),
            },
            Self::Tversky { .. } => return Err("--focal-gamma needs --loss focal-tversky".into()),
            other if alpha.is_none() && beta.is_none() && gamma.is_none() => other,
            _ => return Err("--tversky-alpha, --tversky-beta and --focal-gamma need --loss tversky or focal-tversky".into()),
        };
        if let Self::Tversky { alpha, beta } | Self::FocalTversky { alpha, beta, .. } = loss {
            if alpha + beta <= 0.0 {
                return Err("--tversky-alpha and --tversky-beta cannot both be 0".into());
            }
        }
        Ok(loss)
    }

    /// The loss value (a one-element tensor), overlap terms over the whole batch.
    pub fn compute(&self, logits: Tensor<4>, target: Tensor<4>) -> Tensor<1> {
        self.reduced(logits, target, Reduction::Batch)
    }

    /// The loss value (a one-element tensor) with overlap terms summed as `r` says.
    pub fn reduced(&self, logits: Tensor<4>, target: Tensor<4>, r: Reduction) -> Tensor<1> {
        let overlap = |logits, target, alpha, beta, gamma| overlap_loss(tversky_index(sigmoid(logits), target, alpha, beta, r), gamma, r);
        match *self {
            Self::Bce => bce_with_logits(logits, target),
            Self::Dice => overlap(logits, target, 0.5, 0.5, None),
            Self::Tversky { alpha, beta } => overlap(logits, target, alpha, beta, None),
            Self::FocalTversky { alpha, beta, gamma } => overlap(logits, target, alpha, beta, Some(gamma)),
            Self::BceDice => bce_with_logits(logits.clone(), target.clone()) + overlap(logits, target, 0.5, 0.5, None),
            Self::BceLovasz => bce_with_logits(logits.clone(), target.clone()) + lovasz_hinge(logits, target, r),
        }
    }

    /// Whether reduction `r` changes this loss (BCE is a mean over pixels either way).
    pub fn takes(&self, r: Reduction) -> bool {
        r == Reduction::Batch || *self != Self::Bce
    }

    /// The loss of deep supervision's outputs (full resolution first, each next at half the
    /// resolution of the one before): output `i` weighs 2^-i, the weights normalised to sum 1
    /// (nnU-Net's weighting), against the mask average-pooled to its size, so a coarse pixel's
    /// target is the tumour fraction it covers. One output: [`Self::reduced`] itself.
    pub fn deep_supervised(&self, outputs: Vec<Tensor<4>>, target: Tensor<4>, r: Reduction) -> Tensor<1> {
        if outputs.len() == 1 {
            let logits = outputs.into_iter().next().expect("one output");
            return self.reduced(logits, target, r);
        }
        let total: f64 = (0..outputs.len()).map(|i| 0.5f64.powi(i as i32)).sum();
        let full = target.dims()[2];
        outputs
            .into_iter()
            .enumerate()
            .map(|(i, logits)| {
                let k = full / logits.dims()[2];
                let t = match k {
                    1 => target.clone(),
                    _ => AvgPool2dConfig::new([k, k]).with_strides([k, k]).init().forward(target.clone()),
                };
                self.reduced(logits, t, r) * (0.5f64.powi(i as i32) / total)
            })
            .reduce(|a, b| a + b)
            .expect("at least one output")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(t: Tensor<1>) -> f64 {
        t.into_data().try_to_vec::<f32>().unwrap()[0] as f64
    }

    fn inputs() -> (Tensor<4>, Tensor<4>) {
        let d = Device::flex();
        let logits = Tensor::<1>::from_floats([2.0, -1.0, 0.0, 3.0], &d).reshape([1, 1, 2, 2]);
        let target = Tensor::<1>::from_floats([1.0, 0.0, 1.0, 0.0], &d).reshape([1, 1, 2, 2]);
        (logits, target)
    }

    #[test]
    fn bce_matches_hand_computation() {
        let (l, t) = inputs();
        let s = |x: f64| 1.0 / (1.0 + (-x).exp());
        let want = -((s(2.0)).ln() + (1.0 - s(-1.0)).ln() + (s(0.0)).ln() + (1.0 - s(3.0)).ln()) / 4.0;
        assert!((value(SegLoss::Bce.compute(l, t)) - want).abs() < 1e-5);
    }

    #[test]
    fn tversky_half_half_is_dice_and_focal_gamma_one_is_tversky() {
        let (l, t) = inputs();
        let s = |x: f64| 1.0 / (1.0 + (-x).exp());
        let p = [s(2.0), s(-1.0), s(0.0), s(3.0)];
        let tp = p[0] + p[2];
        // Tversky(0.5, 0.5) with smoothing s is Dice with smoothing 2s.
        let dice = 1.0 - (2.0 * tp + 2.0) / (p.iter().sum::<f64>() + 2.0 + 2.0);
        let d = value(SegLoss::Dice.compute(l.clone(), t.clone()));
        assert!((d - dice).abs() < 1e-5, "{d} vs {dice}");
        let tv = value(SegLoss::Tversky { alpha: 0.5, beta: 0.5 }.compute(l.clone(), t.clone()));
        assert!((tv - d).abs() < 1e-6);
        let a = value(SegLoss::Tversky { alpha: 0.3, beta: 0.7 }.compute(l.clone(), t.clone()));
        let f = value(
            SegLoss::FocalTversky {
                alpha: 0.3,
                beta: 0.7,
                gamma: 1.0,
            }
            .compute(l.clone(), t.clone()),
        );
        assert!((a - f).abs() < 1e-6);
        let f2 = value(
            SegLoss::FocalTversky {
                alpha: 0.3,
                beta: 0.7,
                gamma: 0.75,
            }
            .compute(l.clone(), t.clone()),
        );
        assert!((f2 - a.powf(0.75)).abs() < 1e-5);
        let bd = value(SegLoss::BceDice.compute(l.clone(), t.clone()));
        assert!((bd - value(SegLoss::Bce.compute(l, t)) - d).abs() < 1e-5);
    }

    /// The Lovász hinge of `inputs` (one logit moved to -1.5 so no error sits at relu's kink),
    /// by hand: errors 1 - x s = [-1, -0.5, 1, 4]; from worst, targets 0, 1, 0, 1 give Jaccard
    /// losses 1/3, 2/3, 3/4, 1, so weights 1/3, 1/3, 1/12, 1/4 and loss 4/3 + 1/3 = 5/3. Its
    /// gradient on a logit is -sign x weight where the error is positive. Per slice, a second
    /// tumour-free slice (errors 1 + x = [0, 1.5, -2, 2]) costs its worst error, 2.
    #[test]
    fn lovasz_hinge_matches_hand_computation() {
        let d = Device::flex().autodiff();
        let logits = Tensor::<1>::from_floats([2.0, -1.5, 0.0, 3.0], &d)
            .reshape([1, 1, 2, 2])
            .require_grad();
        let target = Tensor::<1>::from_floats([1.0, 0.0, 1.0, 0.0], &d).reshape([1, 1, 2, 2]);
        let loss = lovasz_hinge(logits.clone(), target.clone(), Reduction::Batch);
        assert!((value(loss.clone()) - 5.0 / 3.0).abs() < 1e-5);
        let grads = loss.backward();
        let g = logits.grad(&grads).expect("a gradient").into_data().try_to_vec::<f32>().unwrap();
        for (got, want) in g.iter().zip([0.0, 0.0, -1.0 / 3.0, 1.0 / 3.0]) {
            assert!((*got as f64 - want).abs() < 1e-5, "{g:?}");
        }
        let bl = value(SegLoss::BceLovasz.compute(logits.clone(), target.clone()));
        assert!((bl - value(SegLoss::Bce.compute(logits.clone(), target.clone())) - 5.0 / 3.0).abs() < 1e-5);
        let empty = Tensor::<1>::from_floats([-1.0, 0.5, -3.0, 1.0], &d).reshape([1, 1, 2, 2]);
        let two = Tensor::cat(vec![logits.clone(), empty], 0);
        let truth = Tensor::cat(vec![target.clone(), target.zeros_like()], 0);
        let per_slice = value(lovasz_hinge(two.clone(), truth.clone(), Reduction::Slice));
        assert!((per_slice - (5.0 / 3.0 + 2.0) / 2.0).abs() < 1e-5, "{per_slice}");
        // Over the batch, from worst: 4, 2, 1.5 (tumour-free), 1 (tumour), then none positive:
        // weights 1/3, 1/6, 1/10, 1/5.
        let batch = value(lovasz_hinge(two, truth, Reduction::Batch));
        assert!((batch - (4.0 / 3.0 + 2.0 / 6.0 + 0.15 + 0.2)).abs() < 1e-5, "{batch}");
        assert_eq!("bce-lovasz".parse(), Ok(SegLoss::BceLovasz));
    }

    /// Deep supervision: one output is the loss itself; with a half-size output the loss is
    /// (L(full) + L(half, 2x2-averaged mask) / 2) / 1.5, computed here by hand.
    #[test]
    fn deep_supervision_weighs_coarser_outputs_against_pooled_masks() {
        let (l, t) = inputs();
        let loss = SegLoss::Dice;
        assert_eq!(
            value(loss.deep_supervised(vec![l.clone()], t.clone(), Reduction::Batch)),
            value(loss.compute(l.clone(), t.clone()))
        );
        let d = Device::flex();
        let coarse = Tensor::<1>::from_floats([0.5], &d).reshape([1, 1, 1, 1]);
        // The 2x2 mask [1, 0, 1, 0] averages to 0.5.
        let s = 1.0 / (1.0 + (-0.5f64).exp());
        let coarse_dice = 1.0 - (2.0 * s * 0.5 + 2.0) / (s + 0.5 + 2.0);
        let want = (value(loss.compute(l.clone(), t.clone())) + coarse_dice / 2.0) / 1.5;
        let got = value(loss.deep_supervised(vec![l, coarse], t, Reduction::Batch));
        assert!((got - want).abs() < 1e-5, "{got} vs {want}");
    }

    /// Per-slice reduction: two slices (the tumour slice of `inputs` and a tumour-free one),
    /// each slice's index computed by hand and the slice losses averaged.
    #[test]
    fn slice_reduction_averages_per_slice_indices_by_hand() {
        let d = Device::flex();
        let (l, t) = inputs();
        let empty_logits = Tensor::<1>::from_floats([-1.0, 0.5, -3.0, 1.0], &d).reshape([1, 1, 2, 2]);
        let logits = Tensor::cat(vec![l.clone(), empty_logits], 0);
        let target = Tensor::cat(vec![t.clone(), t.zeros_like()], 0);
        let s = |x: f64| 1.0 / (1.0 + (-x).exp());
        let p = [s(2.0), s(-1.0), s(0.0), s(3.0)];
        let q: f64 = [-1.0, 0.5, -3.0, 1.0].into_iter().map(s).sum();
        // Tversky(0.3, 0.7) per slice: the tumour slice's TP, FP, FN; the empty slice's FP only.
        let (tp, fp, fn_) = (p[0] + p[2], p[1] + p[3], 2.0 - p[0] - p[2]);
        let first = 1.0 - (tp + 1.0) / (tp + 0.3 * fp + 0.7 * fn_ + 1.0);
        let second = 1.0 - 1.0 / (0.3 * q + 1.0);
        let tv = SegLoss::Tversky { alpha: 0.3, beta: 0.7 };
        let got = value(tv.reduced(logits.clone(), target.clone(), Reduction::Slice));
        assert!((got - (first + second) / 2.0).abs() < 1e-5, "{got}");
        let ft = SegLoss::FocalTversky {
            alpha: 0.3,
            beta: 0.7,
            gamma: 0.75,
        };
        let got = value(ft.reduced(logits.clone(), target.clone(), Reduction::Slice));
        let want = (first.powf(0.75) + second.powf(0.75)) / 2.0;
        assert!((got - want).abs() < 1e-5, "{got} vs {want}");
        // One slice: per slice is the batch loss; BCE ignores the reduction.
        assert!((value(ft.reduced(l.clone(), t.clone(), Reduction::Slice)) - value(ft.compute(l, t))).abs() < 1e-6);
        assert!(!SegLoss::Bce.takes(Reduction::Slice) && ft.takes(Reduction::Slice) && SegLoss::Bce.takes(Reduction::Batch));
        assert_eq!("slice".parse(), Ok(Reduction::Slice));
        assert!("pixel".parse::<Reduction>().unwrap_err().contains("batch, slice"));
    }

    /// A tumour-free slice the network already gets exactly right (no false pixel left, so
    /// 1 - index = 0, where x^0.75 has an infinite slope) still gives finite gradients.
    #[test]
    fn slice_focal_tversky_gradient_is_finite_on_a_perfect_empty_slice() {
        let d = Device::flex().autodiff();
        let logits = Tensor::<4>::full([1, 1, 2, 2], -200.0, &d).require_grad();
        let loss = SegLoss::FocalTversky {
            alpha: 0.5,
            beta: 0.5,
            gamma: 0.75,
        };
        let g = loss.reduced(logits.clone(), logits.zeros_like(), Reduction::Slice).backward();
        let grad = logits.grad(&g).expect("a gradient").into_data().try_to_vec::<f32>().unwrap();
        assert!(grad.iter().all(|v| v.is_finite()), "{grad:?}");
    }

    #[test]
    fn weights_override_the_named_loss_and_are_refused_where_they_mean_nothing() {
        let ft: SegLoss = "focal-tversky".parse().unwrap();
        assert_eq!(ft.with_weights(None, None, None), Ok(ft));
        assert_eq!(
            ft.with_weights(Some(0.5), Some(0.5), None),
            Ok(SegLoss::FocalTversky {
                alpha: 0.5,
                beta: 0.5,
                gamma: 0.75
            })
        );
        let tv: SegLoss = "tversky".parse().unwrap();
        assert_eq!(
            tv.with_weights(None, Some(0.9), None),
            Ok(SegLoss::Tversky { alpha: 0.3, beta: 0.9 })
        );
        assert!(tv.with_weights(None, None, Some(1.0)).unwrap_err().contains("focal-tversky"));
        assert!(SegLoss::BceDice.with_weights(Some(0.5), None, None).is_err());
        assert_eq!(SegLoss::Dice.with_weights(None, None, None), Ok(SegLoss::Dice));
        assert!(ft.with_weights(Some(-0.1), None, None).unwrap_err().contains("--tversky-alpha"));
        assert!(ft.with_weights(None, None, Some(0.0)).unwrap_err().contains("--focal-gamma"));
        assert!(ft.with_weights(Some(0.0), Some(0.0), None).is_err());
        assert!(ft.with_weights(Some(f64::NAN), None, None).is_err());
    }
}
