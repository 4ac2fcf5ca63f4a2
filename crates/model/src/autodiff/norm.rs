//! Batch normalisation in training mode, optionally fused with the ReLU (or EfficientNet's
//! ReLU6) that follows it, as one burn autodiff operation on the CPU backend.
//!
//! Why: burn computes it as a chain of generic tensor operations: the statistics through
//! `swap_dims(0, 1)` copies of the whole activation, then a dozen elementwise passes, each with
//! a fresh buffer, forward and backward (`bench/PROFILE.md`). Here the statistics are two passes
//! over each channel's planes in place, the output one pass, and the backward pass two.

use super::{contiguous, flex, graph, plain, values, values_mut, FlexAd};
use crate::kernels::Out;
use burn::backend::Flex;
use burn::nn::BatchNorm;
use burn::prelude::*;
use burn::tensor::activation::relu;
use burn::tensor::TensorData;
use burn_autodiff::checkpoint::base::Checkpointer;
use burn_autodiff::checkpoint::strategy::NoCheckpointing;
use burn_autodiff::grads::Gradients;
use burn_autodiff::ops::{Backward, Ops, OpsKind};
use burn_autodiff::NodeId;
use burn_flex::FlexTensor;
use rayon::prelude::*;

/// `norm.forward(x)`, followed by a ReLU when `then_relu`. In training mode on the flex
/// autodiff device it runs as one fused operation and updates the running statistics exactly
/// as burn's `BatchNorm` does; in inference on flex it is one pass with the running statistics;
/// elsewhere (CUDA) it is burn's `BatchNorm` (and `relu`).
pub fn batch_norm(norm: &BatchNorm, x: Tensor<4>, then_relu: bool) -> Tensor<4> {
    normalise_clamped(norm, x, then_relu.then_some(f32::INFINITY))
}

/// [`batch_norm`] followed by ReLU6 (`clamp(0, 6)`, EfficientNet-Lite's activation) when
/// `activate`: burn's `clamp` and its gradient were a seventh of the EfficientNet U-Net's
/// training step (masked fills), fused here into the normalisation's passes.
pub fn batch_norm_relu6(norm: &BatchNorm, x: Tensor<4>, activate: bool) -> Tensor<4> {
    normalise_clamped(norm, x, activate.then_some(6.0))
}

/// Batch norm, then `clamp(0, cap)` when `cap` is given.
fn normalise_clamped(norm: &BatchNorm, x: Tensor<4>, cap: Option<f32>) -> Tensor<4> {
    let training = x.device().is_autodiff() && norm.training.is_enabled();
    if training {
        if let Some(y) = fast(norm, &x, cap) {
            return y;
        }
    }
    if let Some(y) = inference(norm, &x, cap) {
        return y;
    }
    let y = norm.forward(x);
    match cap {
        Some(c) if c.is_finite() => y.clamp(0.0, c),
        Some(_) => relu(y),
        None => y,
    }
}

/// Inference on plain flex tensors: the running statistics, the affine map and the clamp in
/// one pass (burn runs them as about six elementwise passes, a fifth of the EfficientNet
/// U-Net's forward pass). `None` for tensors elsewhere.
fn inference(norm: &BatchNorm, x: &Tensor<4>, cap: Option<f32>) -> Option<Tensor<4>> {
    let xv = contiguous(plain(x)?);
    let dims = xv.layout().shape().to_vec();
    let vec = |t: Tensor<1>| t.into_data().try_to_vec::<f32>().ok();
    let (mean, var) = (vec(norm.running_mean.value())?, vec(norm.running_var.value())?);
    let (gamma, beta) = (vec(norm.gamma.val())?, vec(norm.beta.val())?);
    if mean.len() != dims[1] {
        return None; // let burn report the shape error
    }
    let inv_std = var.iter().map(|&v| 1.0 / (v + norm.epsilon as f32).sqrt()).collect();
    let stats = Stats { mean, inv_std };
    let y = stats.normalise(values(&xv), dims[2] * dims[3], &gamma, &beta, cap);
    Some(Tensor::from_primitive::<Flex>(flex(y, &dims)))
}

fn fast(norm: &BatchNorm, x: &Tensor<4>, cap: Option<f32>) -> Option<Tensor<4>> {
    let (gamma, beta) = (norm.gamma.val(), norm.beta.val());
    let (xg, gg, bg) = (graph(x)?, graph(&gamma)?, graph(&beta)?);
    let xv = contiguous(xg.primitive().clone());
    let dims = xv.layout().shape().to_vec();
    let (batch, channels, plane) = (dims[0], dims[1], dims[2] * dims[3]);
    assert_eq!(
        gamma.dims()[0],
        channels,
        "batch-norm of {channels} channels with {:?} features",
        gamma.dims()
    );
    let (g, b) = (contiguous(gg.primitive().clone()), contiguous(bg.primitive().clone()));
    let stats = Stats::of(values(&xv), batch, channels, plane, norm.epsilon);
    let y = stats.normalise(values(&xv), plane, values(&g), values(&b), cap);
    let y = flex(y, &dims);
    let state = State {
        batch,
        channels,
        plane,
        mean: stats.mean.clone(),
        inv_std: stats.inv_std.clone(),
        gamma: values(&g).to_vec(),
        beta: values(&b).to_vec(),
        cap,
    };
    let out = match NormOp
        .prepare::<NoCheckpointing>([xg.node(), gg.node(), bg.node()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(mut prep) => {
            let x_state = prep.checkpoint(&xg);
            prep.finish((x_state, state), y)
        }
        OpsKind::UnTracked(prep) => prep.finish(y),
    };
    update_running(norm, &stats, &x.device());
    Some(Tensor::from_primitive::<FlexAd>(out))
}

/// The running statistics after one batch: `(1 - momentum) * running + momentum * batch`, with
/// the biased batch variance (what burn's `BatchNorm` stores).
fn update_running(norm: &BatchNorm, stats: &Stats, device: &Device) {
    let m = norm.momentum;
    let c = stats.mean.len();
    let var: Vec<f32> = stats.inv_std.iter().map(|s| 1.0 / (s * s) - norm.epsilon as f32).collect();
    let blend = |running: Tensor<1>, batch: Vec<f32>| {
        let batch = Tensor::<1>::from_data(TensorData::new(batch, [c]), device);
        running.to_device(device).mul_scalar(1.0 - m).add(batch.mul_scalar(m)).detach()
    };
    norm.running_mean.update(blend(norm.running_mean.value_sync(), stats.mean.clone()));
    norm.running_var.update(blend(norm.running_var.value_sync(), var));
}

/// Per-channel batch statistics.
struct Stats {
    mean: Vec<f32>,
    inv_std: Vec<f32>,
}

impl Stats {
    /// Mean and `1 / sqrt(var + eps)` of every channel of `x` (`[batch, channels, plane]`),
    /// accumulated in f64 (a channel has up to batch x 65536 values).
    fn of(x: &[f32], batch: usize, channels: usize, plane: usize, eps: f64) -> Self {
        let count = (batch * plane) as f64;
        let (mean, inv_std) = (0..channels)
            .into_par_iter()
            .map(|c| {
                let planes = || (0..batch).map(move |b| &x[(b * channels + c) * plane..][..plane]);
                let mean = planes().map(|p| lane_sum(p, p, |v, _| (v, 0.0)).0).sum::<f64>() / count;
                let m = mean as f32;
                let var = planes().map(|p| lane_sum(p, p, |v, _| ((v - m) * (v - m), 0.0)).0).sum::<f64>() / count;
                (m, (1.0 / (var + eps).sqrt()) as f32)
            })
            .unzip();
        Self { mean, inv_std }
    }

    /// `gamma * (x - mean) * inv_std + beta` (then clamped to `[0, cap]`), `x` being
    /// `[batch, channels, plane]`.
    fn normalise(&self, x: &[f32], plane: usize, gamma: &[f32], beta: &[f32], cap: Option<f32>) -> Vec<f32> {
        let channels = self.mean.len();
        // Every value is written below: no zeroing first (it cost about 1 % of a training step).
        let mut y: Vec<f32> = Vec::with_capacity(x.len());
        // One task per plane, grouped so that small planes (deep layers) are not one task each.
        let group = (4096 / plane.max(1)).max(1);
        y.spare_capacity_mut()[..x.len()]
            .par_chunks_mut(plane)
            .zip(x.par_chunks(plane))
            .enumerate()
            .with_min_len(group)
            .for_each(|(i, (yp, xp))| {
                let c = i % channels;
                let scale = gamma[c] * self.inv_std[c];
                let shift = beta[c] - self.mean[c] * scale;
                if let Some(cap) = cap {
                    yp.iter_mut().zip(xp).for_each(|(y, &x)| {
                        y.write((x * scale + shift).max(0.0).min(cap));
                    });
                } else {
                    yp.iter_mut().zip(xp).for_each(|(y, &x)| {
                        y.write(x * scale + shift);
                    });
                }
            });
        // SAFETY: the planes above cover all x.len() values, each written once.
        unsafe { y.set_len(x.len()) };
        y
    }
}

/// What the backward pass needs besides the input (kept in the graph by id).
#[derive(Debug, Clone)]
struct State {
    batch: usize,
    channels: usize,
    plane: usize,
    mean: Vec<f32>,
    inv_std: Vec<f32>,
    gamma: Vec<f32>,
    beta: Vec<f32>,
    /// The clamp after the normalisation: `[0, cap]` (ReLU: an infinite cap), or none.
    cap: Option<f32>,
}

#[derive(Debug)]
struct NormOp;

impl Backward<Flex, 3> for NormOp {
    type State = (NodeId, State);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, checkpointer: &mut Checkpointer) {
        let [node_x, node_gamma, node_beta] = ops.parents;
        let mut dy = contiguous(grads.consume::<Flex>(&ops.node));
        let (x_state, s) = ops.state;
        let x = contiguous(checkpointer.retrieve_node_output::<FlexTensor>(x_state));
        // dx takes dy's place (in its own buffer when no other gradient shares it); dy is only
        // read when no dx is wanted.
        let want_dx = node_x.is_some();
        let len = values(&dy).len();
        let dy_values = if want_dx {
            values_mut(&mut dy).as_mut_ptr()
        } else {
            values(&dy).as_ptr().cast_mut()
        };
        // SAFETY: `dy_values` points to `len` values of `dy`, alive until the end of this
        // function; they are written only when `want_dx`, and then `dy` owns them alone.
        let (dgamma, dbeta) = unsafe { s.gradients(values(&x), Out(dy_values), len, want_dx) };
        if let Some(node) = node_x {
            grads.register::<Flex>(node.id, dy);
        }
        if let Some(node) = node_gamma {
            grads.register::<Flex>(node.id, flex(dgamma, &[s.channels]));
        }
        if let Some(node) = node_beta {
            grads.register::<Flex>(node.id, flex(dbeta, &[s.channels]));
        }
    }
}

impl State {
    /// `(dgamma, dbeta)` from the input `x` and the output gradient `dy` (`len` values at the
    /// pointer), and with `want_dx` the input gradient `dx` written over `dy`:
    /// with `xh = (x - mean) * inv_std` and `g = dy` where the clamp (if any) let the value
    /// through (`0 < y < cap`),
    /// `dbeta = sum g`, `dgamma = sum g * xh`, and
    /// `dx = gamma * inv_std * (g - dbeta / n - xh * dgamma / n)` per channel.
    ///
    /// # Safety
    /// `dy` must point to `len` values that nothing else reads or writes meanwhile, writable
    /// when `want_dx`.
    unsafe fn gradients(&self, x: &[f32], dy: Out, len: usize, want_dx: bool) -> (Vec<f32>, Vec<f32>) {
        let (batch, channels, plane) = (self.batch, self.channels, self.plane);
        let n = (batch * plane) as f32;
        assert_eq!(len, x.len(), "batch norm: gradient and input sizes");
        // Each task reads (and writes) only its channel's planes, through the pointer.
        let (dgamma, dbeta): (Vec<f32>, Vec<f32>) = (0..channels)
            .into_par_iter()
            .map(|c| {
                let (mean, inv_std) = (self.mean[c], self.inv_std[c]);
                let (scale, shift) = (self.gamma[c] * inv_std, self.beta[c] - self.mean[c] * self.gamma[c] * inv_std);
                // Output gradient through the clamp (recomputed from x rather than stored).
                // As an open interval, so that the loop stays branch-free and vectorises.
                let (lo, hi) = match self.cap {
                    Some(cap) => (0.0, cap),
                    None => (f32::NEG_INFINITY, f32::INFINITY),
                };
                let g = |xv: f32, d: f32| {
                    let y = xv * scale + shift;
                    if y > lo && y < hi {
                        d
                    } else {
                        0.0
                    }
                };
                // Channel c's planes belong to this task alone, and lie inside `dy`'s `len` values.
                let at = |b: usize| dy.at((b * channels + c) * plane);
                let (mut sum_g, mut sum_gx) = (0.0f64, 0.0f64);
                for b in 0..batch {
                    let i = (b * channels + c) * plane;
                    // SAFETY: see `at`; only read here.
                    let dyp = unsafe { std::slice::from_raw_parts(at(b).cast_const(), plane) };
                    let (sg, sgx) = lane_sum(&x[i..i + plane], dyp, |xv, d| {
                        let gv = g(xv, d);
                        (gv, gv * ((xv - mean) * inv_std))
                    });
                    sum_g += sg;
                    sum_gx += sgx;
                }
                if want_dx {
                    let (mg, mgx) = ((sum_g / n as f64) as f32, (sum_gx / n as f64) as f32);
                    for b in 0..batch {
                        let i = (b * channels + c) * plane;
                        // SAFETY: see `at`; `dy` is writable when `want_dx`.
                        let dxp = unsafe { std::slice::from_raw_parts_mut(at(b), plane) };
                        for (o, &xv) in dxp.iter_mut().zip(&x[i..i + plane]) {
                            let xh = (xv - mean) * inv_std;
                            *o = scale * (g(xv, *o) - mg - xh * mgx);
                        }
                    }
                }
                (sum_gx as f32, sum_g as f32)
            })
            .unzip();
        (dgamma, dbeta)
    }
}

/// Sums of the two values `f` gives for each pair of `a` and `b`, in 16 f32 lanes (so that the
/// loop vectorises), returned as f64.
#[inline(always)]
fn lane_sum(a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> (f32, f32)) -> (f64, f64) {
    let (mut s0, mut s1) = ([0.0f32; 16], [0.0f32; 16]);
    let (ca, cb) = (a.chunks_exact(16), b.chunks_exact(16));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (xa, xb) in ca.zip(cb) {
        for l in 0..16 {
            let (u, v) = f(xa[l], xb[l]);
            s0[l] += u;
            s1[l] += v;
        }
    }
    let (mut t0, mut t1) = (0.0f64, 0.0f64);
    for (&u, &v) in ra.iter().zip(rb) {
        let (u, v) = f(u, v);
        t0 += u as f64;
        t1 += v as f64;
    }
    let total = |s: [f32; 16]| s.iter().map(|&v| v as f64).sum::<f64>();
    (total(s0) + t0, total(s1) + t1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::module::Param;
    use burn::nn::BatchNormConfig;
    use burn::tensor::Distribution;

    fn max_diff<const D: usize>(a: Tensor<D>, b: Tensor<D>) -> f32 {
        (a - b).abs().max().into_scalar::<f32>()
    }

    fn layer(c: usize, device: &Device) -> BatchNorm {
        let mut n = BatchNormConfig::new(c).init(device);
        let r = |lo: f64, hi: f64| Tensor::<1>::random([c], Distribution::Uniform(lo, hi), device);
        n.gamma = Param::from_tensor(r(0.5, 1.5));
        n.beta = Param::from_tensor(r(-0.5, 0.5));
        n
    }

    #[test]
    fn matches_burn_batch_norm_relu_and_their_gradients() {
        let device = Device::flex().autodiff();
        device.seed(21);
        let cases = [
            (Some(f32::INFINITY), [3, 4, 5, 6]),
            (None, [2, 7, 3, 3]),
            (Some(f32::INFINITY), [1, 2, 1, 1]),
            (Some(1.0), [2, 3, 4, 5]),
        ];
        for (cap, [b, c, h, w]) in cases {
            let (mine_layer, theirs_layer) = (layer(c, &device), layer(c, &device));
            // Same parameters in both layers (fresh tensors so that the graphs stay apart).
            let copy = |t: Tensor<1>| Param::from_tensor(Tensor::from_data(t.into_data(), &device));
            let theirs_layer = BatchNorm {
                gamma: copy(mine_layer.gamma.val()),
                beta: copy(mine_layer.beta.val()),
                ..theirs_layer
            };
            let x = Tensor::<4>::random([b, c, h, w], Distribution::Normal(0.3, 2.0), &device).require_grad();
            let g = Tensor::<4>::random([b, c, h, w], Distribution::Normal(0.0, 1.0), &device);
            let mine = fast(&mine_layer, &x, cap).expect("flex autodiff fast path");
            let theirs = theirs_layer.forward(x.clone());
            // A cap of 1 clamps part of the values at the top as ReLU6 would (6 is rarely hit).
            let theirs = match cap {
                Some(c) if c.is_finite() => theirs.clamp(0.0, c),
                Some(_) => relu(theirs),
                None => theirs,
            };
            assert!(max_diff(mine.clone(), theirs.clone()) < 1e-4, "forward, cap {cap:?}");
            let ga = (mine * g.clone()).sum().backward();
            let gb = (theirs * g).sum().backward();
            let grad = |t: Tensor<1>, gr| t.grad(gr).expect("gradient");
            assert!(
                max_diff(x.grad(&ga).expect("dx"), x.grad(&gb).expect("dx")) < 1e-3,
                "dx, cap {cap:?}"
            );
            assert!(
                max_diff(grad(mine_layer.gamma.val(), &ga), grad(theirs_layer.gamma.val(), &gb)) < 1e-3,
                "dgamma"
            );
            assert!(
                max_diff(grad(mine_layer.beta.val(), &ga), grad(theirs_layer.beta.val(), &gb)) < 1e-3,
                "dbeta"
            );
            // Running statistics updated the same way.
            let m = max_diff(mine_layer.running_mean.value(), theirs_layer.running_mean.value());
            let v = max_diff(mine_layer.running_var.value(), theirs_layer.running_var.value());
            assert!(m < 1e-5 && v < 1e-4, "running mean {m}, var {v}");
        }
    }

    #[test]
    fn inference_matches_burn() {
        // Without autodiff the running statistics are used, as in burn's inference path.
        let device = Device::flex();
        let n = layer(3, &device);
        let x = Tensor::<4>::random([2, 3, 4, 4], Distribution::Normal(0.0, 1.0), &device);
        assert!(max_diff(batch_norm(&n, x.clone(), false), n.forward(x.clone())) < 1e-6);
        // One fused pass with trained running statistics, then ReLU or ReLU6.
        let mut n = layer(3, &device);
        n.running_mean = burn::module::RunningState::new(Tensor::from_floats([0.5, -1.0, 2.0], &device));
        n.running_var = burn::module::RunningState::new(Tensor::from_floats([4.0, 0.25, 1.0], &device));
        let x = x.mul_scalar(3.0);
        assert!(inference(&n, &x, None).is_some());
        assert!(max_diff(batch_norm(&n, x.clone(), true), relu(n.forward(x.clone()))) < 1e-5);
        assert!(max_diff(batch_norm_relu6(&n, x.clone(), true), n.forward(x).clamp(0.0, 6.0)) < 1e-5);
    }
}
