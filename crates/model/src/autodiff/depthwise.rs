//! Depthwise convolutions (one kxk kernel per channel, any stride, "same" or explicit padding)
//! as one burn autodiff operation on the CPU backend.
//!
//! Why: EfficientNet-Lite0's depthwise layers went through burn flex's generic grouped
//! convolution, which made the EfficientNet U-Net's training step 0.34x PyTorch's speed
//! (`bench/results.md`). A depthwise layer is a few multiply-adds per output, so plain loops
//! over each channel's plane, spread over the cores with rayon, do the forward pass and both
//! gradients:
//! - forward: `y[c, oy, ox] = sum over ky, kx of w[c, ky, kx] * x[c, oy*s + ky - top, ox*s + kx - left]`;
//! - input gradient: the same sum scattered back (`dx[c, iy, ix] += w * dy[c, oy, ox]`);
//! - weight gradient: `dw[c, ky, kx] = sum over images and outputs of dy * x` at those offsets,
//!   in a fixed order, so it is deterministic.
//!
//! The two gradients run 16 channels at a time, one per SIMD lane (`LANES`).
//!
//! Inference on flex runs the same forward. Any other backend (CUDA), dtype or layer goes
//! through burn's own `conv2d`.

use super::{contiguous, flex, graph, plain, values, AutodiffTensor, FlexAd};
use burn::backend::Flex;
use burn::nn::conv::Conv2d;
use burn::nn::PaddingConfig2d;
use burn::prelude::*;
use burn_autodiff::checkpoint::base::Checkpointer;
use burn_autodiff::checkpoint::strategy::NoCheckpointing;
use burn_autodiff::grads::Gradients;
use burn_autodiff::ops::{Backward, Ops, OpsKind};
use burn_autodiff::NodeId;
use burn_flex::FlexTensor;
use rayon::prelude::*;

/// Geometry of one depthwise layer on one input size.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Geometry {
    /// Kernel size (square).
    pub(crate) k: usize,
    pub(crate) stride: usize,
    /// Padding before the first row and column (the rest pads the end).
    pub(crate) top: usize,
    pub(crate) left: usize,
    /// Input and output plane sizes.
    pub(crate) h: usize,
    pub(crate) w: usize,
    pub(crate) oh: usize,
    pub(crate) ow: usize,
}

/// `conv.forward(x)` for a bias-free depthwise layer (groups = input = output channels,
/// square kernel, no dilation), on the CPU kernels below when `x` lives on the flex backend
/// (with or without autodiff); burn's `conv2d` otherwise.
pub fn depthwise(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    let weight = conv.weight.val();
    let [c, per_group, k, kw] = weight.dims();
    let [_, cin, h, w] = x.dims();
    let fits = conv.groups == c
        && cin == c
        && per_group == 1
        && k == kw
        && conv.stride[0] == conv.stride[1]
        && conv.dilation == [1, 1]
        && conv.bias.is_none();
    if let (true, Some(g)) = (fits, geometry(&conv.padding, k, conv.stride[0], h, w)) {
        if let Some(y) = fast(x.clone(), weight, g) {
            return y;
        }
    }
    conv.forward(x)
}

/// The geometry burn's `Conv2d` would use (its "same" padding is TensorFlow's: any odd
/// remainder goes to the end), or `None` for what this module does not cover (stride 0, an
/// empty plane, a kernel larger than the padded plane).
pub(crate) fn geometry(padding: &PaddingConfig2d, k: usize, stride: usize, h: usize, w: usize) -> Option<Geometry> {
    if stride == 0 {
        return None;
    }
    let same = |n: usize| {
        let out = n.div_ceil(stride);
        let total = ((out.max(1) - 1) * stride + k).saturating_sub(n);
        (total / 2, total - total / 2)
    };
    let ((top, bottom), (left, right)) = match *padding {
        PaddingConfig2d::Same => (same(h), same(w)),
        PaddingConfig2d::Valid => ((0, 0), (0, 0)),
        PaddingConfig2d::Explicit(t, l, b, r) => ((t, b), (l, r)),
    };
    let (ph, pw) = (h + top + bottom, w + left + right);
    (h > 0 && w > 0 && ph >= k && pw >= k).then(|| Geometry {
        k,
        stride,
        top,
        left,
        h,
        w,
        oh: (ph - k) / stride + 1,
        ow: (pw - k) / stride + 1,
    })
}

/// The convolution on flex (with or without autodiff), or `None` elsewhere. Flex has a
/// depthwise forward of its own with the same loop structure; this one measured 2-16 % faster
/// over the whole EfficientNet U-Net forward (paired runs), and its gradients are what flex lacks.
fn fast(x: Tensor<4>, weight: Tensor<4>, g: Geometry) -> Option<Tensor<4>> {
    if let (Some(xp), Some(wp)) = (plain(&x), plain(&weight)) {
        return Some(Tensor::from_primitive::<Flex>(forward(&xp, &wp, g)));
    }
    let (x, w) = (graph(&x)?, graph(&weight)?);
    Some(Tensor::from_primitive::<FlexAd>(tracked(x, w, g)))
}

/// Records the convolution in the autodiff graph and runs its forward pass.
fn tracked(x: AutodiffTensor, w: AutodiffTensor, g: Geometry) -> AutodiffTensor {
    let output = forward(x.primitive(), w.primitive(), g);
    match Depthwise
        .prepare::<NoCheckpointing>([x.node(), w.node()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(mut prep) => {
            let state = (prep.checkpoint(&x), prep.checkpoint(&w), g);
            prep.finish(state, output)
        }
        OpsKind::UnTracked(prep) => prep.finish(output),
    }
}

/// The backward step: gradients for the input and the weights.
#[derive(Debug)]
struct Depthwise;

impl Backward<Flex, 2> for Depthwise {
    type State = (NodeId, NodeId, Geometry);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, checkpointer: &mut Checkpointer) {
        let [node_x, node_w] = ops.parents;
        let dy = contiguous(grads.consume::<Flex>(&ops.node));
        let (x_state, w_state, g) = ops.state;
        let x = contiguous(checkpointer.retrieve_node_output::<FlexTensor>(x_state));
        let w = contiguous(checkpointer.retrieve_node_output::<FlexTensor>(w_state));
        let dims = x.layout().shape();
        let (batch, c) = (dims[0], dims[1]);
        let (xs, ws, dys) = (values(&x), values(&w), values(&dy));
        // Both at once (each needs the same interleaved planes); a gradient not asked for, which
        // the networks here never have, is dropped.
        let (dx, dw) = gradients(g, batch, c, xs, dys, ws);
        if let Some(node) = node_x {
            grads.register::<Flex>(node.id, flex(dx, &[batch, c, g.h, g.w]));
        }
        if let Some(node) = node_w {
            grads.register::<Flex>(node.id, flex(dw, &[c, 1, g.k, g.k]));
        }
    }
}

/// The input gradient `[batch, c, h, w]` and the kernel gradient `[c, 1, k, k]` from the input
/// `x`, the output gradient `dy` and the kernels `w`. Each image's block of `LANES` channels
/// has its `dy` and `x` interleaved once for both gradients (session 56's profile had the
/// interleaving at 3.7 % of a training step, more than the blocked kernels' 2.3 %, with `dy`
/// interleaved once for each gradient); the kernel gradient adds the images' row sums in order,
/// so both equal the per-channel kernels to the bit.
fn gradients(g: Geometry, batch: usize, c: usize, x: &[f32], dy: &[f32], w: &[f32]) -> (Vec<f32>, Vec<f32>) {
    // Several threads take one task per image and block, which balances them whatever the
    // channel count (one task per block left threads idle when the blocks did not divide
    // evenly); one thread needs no task split and keeps no row sums.
    gradients_with(g, batch, c, x, dy, w, rayon::current_num_threads() > 1)
}

/// [`gradients`] one task per block of channels, its images in order, or with `spread` one
/// task per image and block, keeping every image's row sums until all are done (a few MB):
/// the same bits either way.
fn gradients_with(g: Geometry, batch: usize, c: usize, x: &[f32], dy: &[f32], w: &[f32], spread: bool) -> (Vec<f32>, Vec<f32>) {
    let (cols, plane_in, plane_out, kk) = (columns(g), g.h * g.w, g.oh * g.ow, g.k * g.k);
    let (blocks, per_image) = (c.div_ceil(LANES), g.oh * kk);
    let weights: Vec<Vec<Lanes>> = (0..c)
        .step_by(LANES)
        .map(|first| {
            let mut wt = Vec::new();
            interleave(w, c, 0, first, kk, &mut wt);
            wt
        })
        .collect();
    // Image `n`'s block `block`: its input gradient into `dx`, its row sums into `sums`.
    let image_block = |n: usize, block: usize, dx: &mut [f32], sums: &mut [Lanes]| {
        BLOCKS.with_borrow_mut(|[xt, dyt, dxt]| {
            interleave(dy, c, n, block * LANES, plane_out, dyt);
            dxt.clear();
            dxt.resize(plane_in, [0.0; LANES]);
            input_grad_block(g, &cols, dyt, &weights[block], dxt);
            deinterleave(dxt, dx, plane_in);
            interleave(x, c, n, block * LANES, plane_in, xt);
            row_sums_block(g, &cols, xt, dyt, sums);
        })
    };
    let mut dx = vec![0.0; batch * c * plane_in];
    let mut dw = vec![0.0; c * kk];
    if spread {
        let mut sums = vec![[0.0; LANES]; batch * blocks * per_image];
        dx.par_chunks_mut(c * plane_in)
            .zip(sums.par_chunks_mut(blocks * per_image))
            .enumerate()
            .for_each(|(n, (dx, sums))| {
                dx.par_chunks_mut(LANES * plane_in)
                    .zip(sums.par_chunks_mut(per_image))
                    .enumerate()
                    .for_each(|(block, (dx, sums))| image_block(n, block, dx, sums))
            });
        dw.par_chunks_mut(LANES * kk).enumerate().for_each(|(block, dw)| {
            let mut acc = vec![[0.0; LANES]; kk];
            for n in 0..batch {
                add_row_sums(g, &sums[(n * blocks + block) * per_image..][..per_image], &mut acc);
            }
            deinterleave(&acc, dw, kk);
        });
    } else {
        // Each block's parts of the images' input gradients, in image order.
        let mut parts: Vec<Vec<&mut [f32]>> = (0..blocks).map(|_| Vec::with_capacity(batch)).collect();
        for image in dx.chunks_mut(c * plane_in) {
            image
                .chunks_mut(LANES * plane_in)
                .zip(&mut parts)
                .for_each(|(part, p)| p.push(part));
        }
        parts
            .into_par_iter()
            .zip(dw.par_chunks_mut(LANES * kk))
            .enumerate()
            .for_each(|(block, (parts, dw))| {
                let (mut acc, mut sums) = (vec![[0.0; LANES]; kk], vec![[0.0; LANES]; per_image]);
                for (n, dx) in parts.into_iter().enumerate() {
                    image_block(n, block, dx, &mut sums);
                    add_row_sums(g, &sums, &mut acc);
                }
                deinterleave(&acc, dw, kk);
            });
    }
    (dx, dw)
}

/// Adds one image's row sums ([`row_sums_block`]) to the kernel gradients `acc` in the
/// per-channel kernel's order: output rows, then taps.
fn add_row_sums(g: Geometry, sums: &[Lanes], acc: &mut [Lanes]) {
    let kk = g.k * g.k;
    for (oy, row) in sums.chunks_exact(kk).enumerate() {
        for ky in (0..g.k).filter(|&ky| input_row(g, oy, ky).is_some()) {
            for (a, s) in acc[ky * g.k..][..g.k].iter_mut().zip(&row[ky * g.k..][..g.k]) {
                a.iter_mut().zip(s).for_each(|(a, &s)| *a += s);
            }
        }
    }
}

fn forward(x: &FlexTensor, w: &FlexTensor, g: Geometry) -> FlexTensor {
    let (x, w) = (contiguous(x.clone()), contiguous(w.clone()));
    let dims = x.layout().shape();
    let (batch, c) = (dims[0], dims[1]);
    let (xs, ws) = (values(&x), values(&w));
    let mut y = vec![0.0; batch * c * g.oh * g.ow];
    y.par_chunks_mut(g.oh * g.ow).enumerate().for_each(|(plane, y)| {
        let ch = plane % c;
        output_plane(g, &xs[plane * g.h * g.w..][..g.h * g.w], &ws[ch * g.k * g.k..][..g.k * g.k], y);
    });
    flex(y, &[batch, c, g.oh, g.ow])
}

/// The input row of output row `oy` under kernel row `ky`, if inside the image.
pub(crate) fn input_row(g: Geometry, oy: usize, ky: usize) -> Option<usize> {
    (oy * g.stride + ky).checked_sub(g.top).filter(|&iy| iy < g.h)
}

/// Per kernel column `kx`: the outputs `ox` of a row whose input column
/// `ox * stride + kx - left` is inside the image, and that column for the first of them.
type Columns = Vec<(std::ops::Range<usize>, usize)>;

fn columns(g: Geometry) -> Columns {
    (0..g.k).map(|kx| column_range(g, kx)).collect()
}

fn column_range(g: Geometry, kx: usize) -> (std::ops::Range<usize>, usize) {
    // First ox with ox * s + kx >= left; first ox with ox * s + kx - left >= w.
    let lo = g.left.saturating_sub(kx).div_ceil(g.stride);
    let hi = (g.w + g.left).saturating_sub(kx).div_ceil(g.stride).min(g.ow);
    let lo = lo.min(hi);
    (lo..hi, (lo * g.stride + kx).saturating_sub(g.left).min(g.w))
}

// The three kernels below walk the same (output row, kernel row, kernel column) loops, written
// out in each (the forward one is now the tests' reference): walking them through one shared
// closure measured ~10 % slower training steps (the row slices are no longer hoisted out of the
// inner loops; deep layers have 4-8 outputs per row and 25 taps).

/// One channel's output plane, row by row: the definition [`forward_plane_phased`] (which runs)
/// is checked against.
#[cfg(test)]
fn forward_plane(g: Geometry, cols: &Columns, x: &[f32], w: &[f32], y: &mut [f32]) {
    for oy in 0..g.oh {
        let yrow = &mut y[oy * g.ow..][..g.ow];
        for ky in 0..g.k {
            let Some(iy) = input_row(g, oy, ky) else { continue };
            let xrow = &x[iy * g.w..][..g.w];
            for kx in 0..g.k {
                let wv = w[ky * g.k + kx];
                let (outs, first) = cols[kx].clone();
                let out = &mut yrow[outs];
                if g.stride == 1 {
                    out.iter_mut().zip(&xrow[first..]).for_each(|(o, &v)| *o += wv * v);
                } else {
                    out.iter_mut()
                        .zip(xrow[first..].iter().step_by(g.stride))
                        .for_each(|(o, &v)| *o += wv * v);
                }
            }
        }
    }
}

/// Each tap of a kernel: where its pass starts in the phases, and its weight.
type Taps = Vec<(usize, f32)>;

thread_local! {
    /// Scratch planes of [`forward_plane_phased`], kept between layers.
    static PLANES: std::cell::RefCell<(Vec<f32>, Vec<f32>, Taps)> = Default::default();
}

/// One channel's output plane (`y` zero on entry): [`forward_plane_phased`] with per-worker
/// scratch space.
pub(crate) fn output_plane(g: Geometry, x: &[f32], w: &[f32], y: &mut [f32]) {
    PLANES.with_borrow_mut(|(phases, acc, taps)| forward_plane_phased(g, x, w, y, phases, acc, taps));
}

/// [`forward_plane`] by whole-plane passes: the same products summed in the same order (plus
/// zeros where a tap falls outside the image). The zero-padded input is split into its
/// `stride x stride` phases (rows and columns `i * stride + a`, `j * stride + b`), so that every
/// kernel tap reads one phase at a fixed offset and is one contiguous pass over the output
/// plane laid out at the phase's width (the last columns of each row thrown away), instead of
/// one short pass per output row: it vectorises where rows are short (the deep layers' planes
/// are 3-24 pixels wide) and drops the strided reads. `y` must be zero; `phases`, `acc` and
/// `taps` are scratch space.
fn forward_plane_phased(g: Geometry, x: &[f32], w: &[f32], y: &mut [f32], phases: &mut Vec<f32>, acc: &mut Vec<f32>, taps: &mut Taps) {
    let s = g.stride;
    let reach = (g.k - 1) / s;
    let (ph, pw) = (g.oh + reach, g.ow + reach);
    let size = ph * pw;
    phases.clear();
    phases.resize(s * s * size, 0.0);
    for (p, phase) in phases.chunks_exact_mut(size).enumerate() {
        let (a, b) = (p / s, p % s);
        // Phase columns j whose input column j * s + b - left is inside the image.
        let j0 = g.left.saturating_sub(b).div_ceil(s).min(pw);
        let j1 = (g.w + g.left).saturating_sub(b).div_ceil(s).clamp(j0, pw);
        let first = (j0 * s + b).saturating_sub(g.left);
        for (i, row) in phase.chunks_exact_mut(pw).enumerate() {
            let Some(iy) = (i * s + a).checked_sub(g.top).filter(|&iy| iy < g.h) else {
                continue;
            };
            let xrow = &x[iy * g.w..][..g.w];
            row[j0..j1]
                .iter_mut()
                .zip(xrow[first..].iter().step_by(s))
                .for_each(|(p, &v)| *p = v);
        }
    }
    let len = (g.oh - 1) * pw + g.ow;
    acc.clear();
    acc.resize(len, 0.0);
    // Each tap: its weight and where its pass starts in `phases`.
    taps.clear();
    taps.extend((0..g.k * g.k).map(|t| {
        let (ky, kx) = (t / g.k, t % g.k);
        (((ky % s) * s + kx % s) * size + (ky / s) * pw + kx / s, w[t])
    }));
    tap_passes(taps, phases, acc);
    for (oy, row) in y.chunks_mut(g.ow).enumerate() {
        row.iter_mut().zip(&acc[oy * pw..]).for_each(|(o, &v)| *o += v);
    }
}

/// Channels handled together by the backward kernels, one per SIMD lane (16 f32 fill an
/// AVX-512 register). Why: the deep layers' planes are 6-24 pixels wide, too short for loops
/// along a row to vectorise, and a row's weight-gradient sum is a sequential float reduction
/// that never vectorises; across channels every lane does one channel's sums in that channel's
/// own order, so the gradients are bit for bit those of one channel at a time.
const LANES: usize = 16;

/// One value per channel of a block.
type Lanes = [f32; LANES];

thread_local! {
    /// Scratch planes of the blocked gradients, kept between layers (fresh ones per layer and
    /// task are page-faulted and zeroed by the kernel each time).
    static BLOCKS: std::cell::RefCell<[Vec<Lanes>; 3]> = Default::default();
}

/// The value `Iterator::sum` starts from for `f32` (-0.0), so that the blocked weight-gradient
/// sums equal the per-channel ones to the sign of zero.
const SUM_START: f32 = -0.0;

/// Planes `first..first + LANES` of image `n` of `src` (`channels` planes of `plane` values per
/// image) interleaved into `out`: `out[p][l]` is pixel `p` of channel `first + l`, zero for
/// channels past the last.
fn interleave(src: &[f32], channels: usize, n: usize, first: usize, plane: usize, out: &mut Vec<Lanes>) {
    let lanes = LANES.min(channels - first);
    // Every lane below `lanes` is written below, so only a partial block's others are zeroed.
    out.truncate(plane);
    out.resize(plane, [0.0; LANES]);
    if lanes < LANES {
        out.iter_mut().for_each(|o| o[lanes..].fill(0.0));
    }
    let block = &src[(n * channels + first) * plane..][..lanes * plane];
    // Tile by tile, so that each tile's lanes are filled while it sits in the L1 cache (lane by
    // lane over whole planes wrote every cache line 16 times from L2 on the large planes).
    for (t, tile) in out.chunks_mut(TILE).enumerate() {
        for (l, values) in block.chunks_exact(plane).enumerate() {
            tile.iter_mut().zip(&values[t * TILE..]).for_each(|(o, &v)| o[l] = v);
        }
    }
}

/// The inverse of [`interleave`]: lane `l` of `src` into `dst[l * plane..]`, for the lanes
/// `dst` has room for, tile by tile as there.
fn deinterleave(src: &[Lanes], dst: &mut [f32], plane: usize) {
    for (t, tile) in src.chunks(TILE).enumerate() {
        for (l, values) in dst.chunks_exact_mut(plane).take(LANES).enumerate() {
            values[t * TILE..].iter_mut().zip(tile).for_each(|(v, o)| *v = o[l]);
        }
    }
}

/// Pixels per tile of [`interleave`] and [`deinterleave`] (4 KiB of lanes).
const TILE: usize = 64;

/// Defines `$name`, which runs `$imp` (an `#[inline(always)]` function of plain loops over
/// lanes) compiled for AVX-512 (`$avx512`) or AVX2 (`$avx2`) where the CPU has them, chosen at
/// run time, so the binary still runs on any x86-64; the products and sums are the same in
/// every build.
macro_rules! lane_kernel {
    ($(#[$doc:meta])* $name:ident, $avx512:ident, $avx2:ident => $imp:ident($($arg:ident: $ty:ty),*)) => {
        $(#[$doc])*
        fn $name($($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            {
                if std::arch::is_x86_feature_detected!("avx512f") {
                    // SAFETY: the CPU has AVX-512F, checked just above.
                    return unsafe { $avx512($($arg),*) };
                }
                if std::arch::is_x86_feature_detected!("avx2") {
                    // SAFETY: the CPU has AVX2, checked just above.
                    return unsafe { $avx2($($arg),*) };
                }
            }
            $imp($($arg),*)
        }

        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx512f")]
        fn $avx512($($arg: $ty),*) {
            $imp($($arg),*)
        }

        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx2")]
        fn $avx2($($arg: $ty),*) {
            $imp($($arg),*)
        }
    };
}

/// Outputs [`tap_passes`] holds in registers through all taps (two AVX-512 registers).
const RUN: usize = 32;

lane_kernel!(
    /// `acc[i]` (zero on entry) = the sum over `taps` in order of weight times
    /// `phases[start + i]`: one pass per tap, done `RUN` outputs at a time with the sums held in
    /// registers through all the taps (one store per output instead of a load and a store per
    /// tap and output, which bounded the forward). Same products, same order, same bits.
    tap_passes, tap_passes_avx512, tap_passes_avx2 =>
    tap_passes_impl(taps: &[(usize, f32)], phases: &[f32], acc: &mut [f32])
);

#[inline(always)]
fn tap_passes_impl(taps: &[(usize, f32)], phases: &[f32], acc: &mut [f32]) {
    let done = acc.len() - acc.len() % RUN;
    for (r, out) in acc[..done].chunks_exact_mut(RUN).enumerate() {
        let mut sums = [0.0f32; RUN];
        for &(start, wv) in taps {
            let src = &phases[start + r * RUN..][..RUN];
            sums.iter_mut().zip(src).for_each(|(o, &v)| *o += wv * v);
        }
        out.copy_from_slice(&sums);
    }
    for &(start, wv) in taps {
        let src = &phases[start + done..][..acc.len() - done];
        acc[done..].iter_mut().zip(src).for_each(|(o, &v)| *o += wv * v);
    }
}

lane_kernel!(
    /// A block of channels' input gradients (the forward sums scattered back): `dx` (zero on
    /// entry) += `w` times `dy` at every tap, in the order of [`input_grad_plane`].
    input_grad_block, input_grad_block_avx512, input_grad_block_avx2 =>
    input_grad_block_impl(g: Geometry, cols: &Columns, dy: &[Lanes], w: &[Lanes], dx: &mut [Lanes])
);

#[inline(always)]
fn input_grad_block_impl(g: Geometry, cols: &Columns, dy: &[Lanes], w: &[Lanes], dx: &mut [Lanes]) {
    for oy in 0..g.oh {
        let dyrow = &dy[oy * g.ow..][..g.ow];
        for ky in 0..g.k {
            let Some(iy) = input_row(g, oy, ky) else { continue };
            let dxrow = &mut dx[iy * g.w..][..g.w];
            for kx in 0..g.k {
                let wv = &w[ky * g.k + kx];
                let (outs, first) = cols[kx].clone();
                for (d, v) in dxrow[first..].iter_mut().step_by(g.stride).zip(&dyrow[outs]) {
                    d.iter_mut().zip(wv).zip(v).for_each(|((d, &w), &v)| *d += w * v);
                }
            }
        }
    }
}

lane_kernel!(
    /// One image's row sums for a block of channels: `sums[oy * k * k + ky * k + kx]` is the sum
    /// over output row `oy` of `dy * x` at tap `(ky, kx)`, formed as [`weight_grad_plane`] forms
    /// it (rows whose tap falls outside the image are left as they are, and never read).
    row_sums_block, row_sums_block_avx512, row_sums_block_avx2 =>
    row_sums_block_impl(g: Geometry, cols: &Columns, x: &[Lanes], dy: &[Lanes], sums: &mut [Lanes])
);

#[inline(always)]
fn row_sums_block_impl(g: Geometry, cols: &Columns, x: &[Lanes], dy: &[Lanes], sums: &mut [Lanes]) {
    let kk = g.k * g.k;
    for oy in 0..g.oh {
        let dyrow = &dy[oy * g.ow..][..g.ow];
        for ky in 0..g.k {
            let Some(iy) = input_row(g, oy, ky) else { continue };
            let xrow = &x[iy * g.w..][..g.w];
            for kx in 0..g.k {
                let (outs, first) = cols[kx].clone();
                let mut sum = [SUM_START; LANES];
                for (d, v) in dyrow[outs].iter().zip(xrow[first..].iter().step_by(g.stride)) {
                    sum.iter_mut().zip(d).zip(v).for_each(|((s, &d), &v)| *s += d * v);
                }
                sums[oy * kk + ky * g.k + kx] = sum;
            }
        }
    }
}

/// One channel's input gradient (the forward sums scattered back), row by row: the definition
/// [`input_grad_block`] and [`gradients`] are checked against.
#[cfg(test)]
fn input_grad_plane(g: Geometry, cols: &Columns, dy: &[f32], w: &[f32], dx: &mut [f32]) {
    for oy in 0..g.oh {
        let dyrow = &dy[oy * g.ow..][..g.ow];
        for ky in 0..g.k {
            let Some(iy) = input_row(g, oy, ky) else { continue };
            let dxrow = &mut dx[iy * g.w..][..g.w];
            for kx in 0..g.k {
                let wv = w[ky * g.k + kx];
                let (outs, first) = cols[kx].clone();
                let grads = &dyrow[outs];
                if g.stride == 1 {
                    dxrow[first..].iter_mut().zip(grads).for_each(|(d, &v)| *d += wv * v);
                } else {
                    dxrow[first..]
                        .iter_mut()
                        .step_by(g.stride)
                        .zip(grads)
                        .for_each(|(d, &v)| *d += wv * v);
                }
            }
        }
    }
}

/// Adds one image's contribution to one channel's kernel gradient, row by row: the definition
/// [`row_sums_block`] and [`gradients`] are checked against.
#[cfg(test)]
fn weight_grad_plane(g: Geometry, cols: &Columns, x: &[f32], dy: &[f32], dw: &mut [f32]) {
    for oy in 0..g.oh {
        let dyrow = &dy[oy * g.ow..][..g.ow];
        for ky in 0..g.k {
            let Some(iy) = input_row(g, oy, ky) else { continue };
            let xrow = &x[iy * g.w..][..g.w];
            for kx in 0..g.k {
                let (outs, first) = cols[kx].clone();
                let grads = &dyrow[outs];
                let sum: f32 = if g.stride == 1 {
                    grads.iter().zip(&xrow[first..]).map(|(&d, &v)| d * v).sum()
                } else {
                    grads.iter().zip(xrow[first..].iter().step_by(g.stride)).map(|(&d, &v)| d * v).sum()
                };
                dw[ky * g.k + kx] += sum;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::conv::Conv2dConfig;
    use burn::tensor::Distribution;

    fn max_diff(a: Tensor<4>, b: Tensor<4>) -> f32 {
        (a - b).abs().max().into_scalar::<f32>()
    }

    #[test]
    fn matches_burn_grouped_conv2d_and_its_gradients() {
        // EfficientNet-Lite0's shapes: 3x3 and 5x5, stride 1 and 2 (asymmetric "same" padding
        // at stride 2), even and odd planes, plus an explicit padding.
        let device = Device::flex().autodiff();
        device.seed(21);
        let cases = [
            (3, 1, 8, 10, PaddingConfig2d::Same),
            (3, 2, 8, 8, PaddingConfig2d::Same),
            (5, 2, 9, 12, PaddingConfig2d::Same),
            (5, 1, 6, 7, PaddingConfig2d::Same),
            (3, 2, 7, 7, PaddingConfig2d::Explicit(1, 0, 1, 2)),
        ];
        for (k, s, h, w, padding) in cases {
            let c = 6;
            let layer = Conv2dConfig::new([c, c], [k, k])
                .with_stride([s, s])
                .with_groups(c)
                .with_padding(padding.clone())
                .with_bias(false)
                .init(&device);
            let x = Tensor::<4>::random([2, c, h, w], Distribution::Normal(0.0, 1.0), &device).require_grad();
            let theirs = layer.forward(x.clone());
            let g = geometry(&padding, k, s, h, w).expect("covered padding");
            // `fast` itself, so that a silent fallback to burn cannot pass the test.
            let mine = fast(x.clone(), layer.weight.val(), g).expect("flex autodiff fast path");
            assert_eq!(mine.dims(), theirs.dims(), "k {k} s {s} {h}x{w}");
            assert!(max_diff(mine.clone(), theirs.clone()) < 1e-4, "forward k {k} s {s} {h}x{w}");
            let dy = Tensor::<4>::random(theirs.dims(), Distribution::Normal(0.0, 1.0), &device);
            let ga = (mine * dy.clone()).sum().backward();
            let gb = (theirs * dy).sum().backward();
            let (dxa, dxb) = (x.grad(&ga).expect("x grad"), x.grad(&gb).expect("x grad"));
            let (dwa, dwb) = (
                layer.weight.val().grad(&ga).expect("w grad"),
                layer.weight.val().grad(&gb).expect("w grad"),
            );
            let (ex, ew) = (max_diff(dxa, dxb), max_diff(dwa, dwb));
            assert!(ex < 1e-3 && ew < 1e-3, "k {k} s {s} {h}x{w}: dx {ex}, dw {ew}");
        }
    }

    /// The whole-plane kernel sums the same products in the same order as the row kernel:
    /// equal outputs (as values: the whole-plane passes add zeros where a tap falls outside the
    /// image, which may turn a -0.0 into 0.0), at strides 1-3, for "same", valid and lopsided
    /// explicit paddings, even and odd planes.
    #[test]
    fn phased_plane_kernel_equals_the_row_kernel() {
        let pseudo = |n: usize, seed: u32| -> Vec<f32> {
            (0..n as u32)
                .map(|i| ((i.wrapping_mul(2_654_435_761) ^ seed) % 2001) as f32 / 1000.0 - 1.0)
                .collect()
        };
        let paddings = [
            PaddingConfig2d::Same,
            PaddingConfig2d::Valid,
            PaddingConfig2d::Explicit(2, 0, 0, 1),
            PaddingConfig2d::Explicit(0, 1, 2, 0),
        ];
        let mut checked = 0;
        for stride in [1, 2, 3] {
            for k in [3, 5] {
                for (h, w) in [(6, 6), (12, 12), (7, 13), (24, 5), (3, 3), (40, 37)] {
                    for padding in &paddings {
                        let Some(g) = geometry(padding, k, stride, h, w) else { continue };
                        let (x, wt) = (pseudo(h * w, 7), pseudo(k * k, 9));
                        let mut want = vec![0.0; g.oh * g.ow];
                        forward_plane(g, &columns(g), &x, &wt, &mut want);
                        let mut got = vec![0.0; g.oh * g.ow];
                        output_plane(g, &x, &wt, &mut got);
                        assert_eq!(got, want, "k {k} s {stride} {h}x{w} {padding:?}");
                        assert!(want.iter().any(|&v| v != 0.0));
                        checked += 1;
                    }
                }
            }
        }
        assert!(checked > 90, "{checked}");
    }

    /// The register-held tap passes give the bits of one whole pass per tap (the forward before
    /// them), the sign of zero included, at lengths around multiples of `RUN`; and every
    /// instruction-set build this CPU has gives the plain build's bits.
    #[test]
    fn register_tap_passes_equal_one_pass_per_tap() {
        let values = |n: usize, seed: u32| -> Vec<f32> {
            (0..n as u32)
                // Zeros of both signs among them, where a sum's sign could differ.
                .map(|i| match i.wrapping_mul(2_654_435_761) ^ seed {
                    v if v % 11 == 0 => 0.0,
                    v if v % 13 == 0 => -0.0,
                    v => (v % 2001) as f32 / 1000.0 - 1.0,
                })
                .collect()
        };
        for len in [1, 5, 31, 32, 33, 64, 95, 200] {
            for taps in [1, 9, 25] {
                let phases = values(len + 3 * taps, 5);
                let taps: Vec<(usize, f32)> = values(taps, 3).into_iter().enumerate().map(|(t, w)| (3 * t, w)).collect();
                let mut want = vec![0.0f32; len];
                for &(start, wv) in &taps {
                    want.iter_mut().zip(&phases[start..]).for_each(|(o, &v)| *o += wv * v);
                }
                let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
                let run = |variant: usize| {
                    let mut acc = vec![0.0f32; len];
                    match variant {
                        0 => tap_passes_impl(&taps, &phases, &mut acc),
                        #[cfg(target_arch = "x86_64")]
                        // SAFETY: run only where the CPU has AVX2 (checked below).
                        1 => unsafe { tap_passes_avx2(&taps, &phases, &mut acc) },
                        #[cfg(target_arch = "x86_64")]
                        // SAFETY: run only where the CPU has AVX-512F (checked below).
                        _ => unsafe { tap_passes_avx512(&taps, &phases, &mut acc) },
                        #[cfg(not(target_arch = "x86_64"))]
                        _ => unreachable!(),
                    }
                    bits(&acc)
                };
                assert_eq!(run(0), bits(&want), "len {len}, {} taps", taps.len());
                #[cfg(target_arch = "x86_64")]
                {
                    if std::arch::is_x86_feature_detected!("avx2") {
                        assert_eq!(run(1), bits(&want), "AVX2, len {len}");
                    }
                    if std::arch::is_x86_feature_detected!("avx512f") {
                        assert_eq!(run(2), bits(&want), "AVX-512, len {len}");
                    }
                }
            }
        }
    }

    /// The channel-blocked gradients sum the same products in the same order as the per-channel
    /// row kernels: bit-equal outputs (the sign of zero included) for full and partial blocks of
    /// channels, strides 1-3, the paddings above, even and odd planes; and the AVX-512, AVX2 and
    /// plain builds of the block kernels agree, whichever this CPU runs.
    #[test]
    fn blocked_gradients_equal_the_per_channel_kernels() {
        let pseudo = |n: usize, seed: u32| -> Vec<f32> {
            (0..n as u32)
                .map(|i| ((i.wrapping_mul(2_654_435_761) ^ seed) % 2001) as f32 / 1000.0 - 1.0)
                .collect()
        };
        let mut checked = 0;
        for (stride, k, padding) in [
            (1, 3, PaddingConfig2d::Same),
            (2, 5, PaddingConfig2d::Same),
            (2, 3, PaddingConfig2d::Explicit(2, 0, 0, 1)),
            (3, 5, PaddingConfig2d::Valid),
        ] {
            for (h, w) in [(6, 6), (12, 12), (7, 13), (24, 5)] {
                for c in [16, 21, 5] {
                    let Some(g) = geometry(&padding, k, stride, h, w) else { continue };
                    let batch = 3;
                    let x = pseudo(batch * c * h * w, 7);
                    let dy = pseudo(batch * c * g.oh * g.ow, 11);
                    let wt = pseudo(c * k * k, 9);
                    let (cols, kk) = (columns(g), k * k);
                    let mut want_dx = vec![0.0; x.len()];
                    for (plane, dx) in want_dx.chunks_mut(h * w).enumerate() {
                        let dy = &dy[plane * g.oh * g.ow..][..g.oh * g.ow];
                        input_grad_plane(g, &cols, dy, &wt[plane % c * kk..][..kk], dx);
                    }
                    let mut want_dw = vec![0.0; c * kk];
                    for (ch, dw) in want_dw.chunks_mut(kk).enumerate() {
                        for n in 0..batch {
                            let plane = n * c + ch;
                            let xp = &x[plane * h * w..][..h * w];
                            weight_grad_plane(g, &cols, xp, &dy[plane * g.oh * g.ow..][..g.oh * g.ow], dw);
                        }
                    }
                    let what = format!("k {k} s {stride} {h}x{w} c {c} {padding:?}");
                    let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
                    for spread in [false, true] {
                        let (dx, dw) = gradients_with(g, batch, c, &x, &dy, &wt, spread);
                        assert_eq!(bits(&dx), bits(&want_dx), "dx {what}, spread {spread}");
                        assert_eq!(bits(&dw), bits(&want_dw), "dw {what}, spread {spread}");
                    }
                    #[cfg(target_arch = "x86_64")]
                    variants_agree(g, &x[..c.min(LANES) * h * w], &dy[..c.min(LANES) * g.oh * g.ow], &wt, c.min(LANES));
                    assert!(want_dx.iter().any(|&v| v != 0.0) && want_dw.iter().any(|&v| v != 0.0));
                    checked += 1;
                }
            }
        }
        assert!(checked >= 40, "{checked}");
    }

    /// The block kernels' builds for each instruction set this CPU has give the plain build's
    /// bits, on the first image's first `channels` channels.
    #[cfg(target_arch = "x86_64")]
    fn variants_agree(g: Geometry, x: &[f32], dy: &[f32], w: &[f32], channels: usize) {
        let cols = columns(g);
        let (mut xt, mut dyt, mut wt) = (Vec::new(), Vec::new(), Vec::new());
        interleave(x, channels, 0, 0, g.h * g.w, &mut xt);
        interleave(dy, channels, 0, 0, g.oh * g.ow, &mut dyt);
        interleave(w, channels, 0, 0, g.k * g.k, &mut wt);
        let bits = |v: &[Lanes]| v.iter().flatten().map(|f| f.to_bits()).collect::<Vec<_>>();
        let run = |variant: usize| {
            let mut dx = vec![[0.0; LANES]; g.h * g.w];
            let mut sums = vec![[0.0; LANES]; g.oh * g.k * g.k];
            // SAFETY: each variant runs only where the CPU has its instruction set.
            unsafe {
                match variant {
                    0 => {
                        input_grad_block_impl(g, &cols, &dyt, &wt, &mut dx);
                        row_sums_block_impl(g, &cols, &xt, &dyt, &mut sums);
                    }
                    1 => {
                        input_grad_block_avx2(g, &cols, &dyt, &wt, &mut dx);
                        row_sums_block_avx2(g, &cols, &xt, &dyt, &mut sums);
                    }
                    _ => {
                        input_grad_block_avx512(g, &cols, &dyt, &wt, &mut dx);
                        row_sums_block_avx512(g, &cols, &xt, &dyt, &mut sums);
                    }
                }
            }
            (bits(&dx), bits(&sums))
        };
        let plain = run(0);
        if std::arch::is_x86_feature_detected!("avx2") {
            assert_eq!(run(1), plain, "AVX2 build");
        }
        if std::arch::is_x86_feature_detected!("avx512f") {
            assert_eq!(run(2), plain, "AVX-512 build");
        }
    }

    #[test]
    fn inference_takes_the_fast_path_and_other_layers_stay_on_burn() {
        let device = Device::flex();
        device.seed(22);
        let layer = Conv2dConfig::new([4, 4], [5, 5])
            .with_stride([2, 2])
            .with_groups(4)
            .with_padding(PaddingConfig2d::Same)
            .with_bias(false)
            .init(&device);
        let x = Tensor::<4>::random([2, 4, 10, 10], Distribution::Normal(0.0, 1.0), &device);
        let g = geometry(&PaddingConfig2d::Same, 5, 2, 10, 10).expect("covered padding");
        let mine = fast(x.clone(), layer.weight.val(), g).expect("flex inference fast path");
        assert!(max_diff(mine, layer.forward(x.clone())) < 1e-5);
        // With a bias the layer is burn's, and still right.
        let biased = Conv2dConfig::new([4, 4], [3, 3])
            .with_groups(4)
            .with_padding(PaddingConfig2d::Same)
            .init(&device);
        assert!(max_diff(depthwise(&biased, x.clone()), biased.forward(x)) < 1e-6);
    }
}
