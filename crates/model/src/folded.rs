//! Inference-only CPU execution of the trained networks, used by prediction, evaluation and
//! validation on the default (`flex`) backend.
//!
//! Why: profiling (`bench/PROFILE.md`) showed that two thirds of flex's convolution time went
//! into layout changes (NCHW -> NHWC, conv2d run as a depth-1 conv3d) and per-tile allocations
//! rather than arithmetic. Here the weights are extracted once, batch-norm is folded into the
//! preceding convolution, ReLU and the residual add are fused into the GEMM epilogue, and each
//! 3x3 convolution is an im2col over a few output rows (NCHW, cache sized) followed by one
//! `gemm` call (AVX-512 where the CPU has it). Results match the burn forward pass to float
//! rounding (tested below).

use crate::attention::{FoldedScse, Scse};
use crate::classifier::SliceClassifier;
use crate::kernels::{conv_bands, matmul, BandOut, ConvShape};
use crate::unet::{ConvBlock, SegmentationNet};
use crate::winograd;
use burn::module::Param;
use burn::nn::conv::{Conv2d, ConvTranspose2d};
use burn::nn::BatchNorm;
use burn::prelude::*;
use rayon::prelude::*;

fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    // Weights of a loaded model are f32; anything else is a defect of the loader.
    t.into_data().convert::<f32>().try_to_vec::<f32>().expect("f32 weights")
}

fn param<const D: usize>(p: &Param<Tensor<D>>) -> Vec<f32> {
    values(p.val())
}

/// A convolution (kernel 1 or 3, stride 1, "same" padding) with batch-norm folded in. (The
/// EfficientNet's depthwise and strided layers keep their weights here too, in the same layout
/// with `cin` counted per group, and run on kernels of their own: [`crate::folded_effunet`].)
#[derive(Debug, Clone)]
pub(crate) struct Conv {
    /// `[cout, cin * k * k]`, row-major (the im2col row order: channel, ky, kx).
    pub(crate) weight: Vec<f32>,
    pub(crate) bias: Vec<f32>,
    pub(crate) cin: usize,
    pub(crate) cout: usize,
    pub(crate) k: usize,
    /// Winograd-transformed weights `[16, cout, cin]`, for 3x3 layers with enough channels.
    winograd: Option<Vec<f32>>,
}

/// Input channels from which a 3x3 layer runs as Winograd F(2x2, 3x3): below it the 16 GEMMs
/// are too thin to beat one im2col GEMM (`layer_timings` below, idle 2-core machine: 1.3-1.7x
/// faster from 64 input channels, 0.96-1.5x at 32, 0.8-1.1x at 16; a threshold of 32 measured
/// the same as 64 on the whole network).
const WINOGRAD_MIN_CIN: usize = 64;

impl Conv {
    pub(crate) fn fold(conv: &Conv2d, norm: Option<&BatchNorm>) -> Self {
        let [cout, cin, kh, kw] = conv.weight.val().dims();
        assert_eq!(kh, kw, "square kernels only");
        let mut weight = param(&conv.weight);
        let mut bias = conv.bias.as_ref().map(param).unwrap_or_else(|| vec![0.0; cout]);
        if let Some(n) = norm {
            let (gamma, beta) = (param(&n.gamma), param(&n.beta));
            let (mean, var) = (values(n.running_mean.value()), values(n.running_var.value()));
            let row = cin * kh * kw;
            for o in 0..cout {
                let scale = gamma[o] / (var[o] + n.epsilon as f32).sqrt();
                weight[o * row..(o + 1) * row].iter_mut().for_each(|w| *w *= scale);
                bias[o] = (bias[o] - mean[o]) * scale + beta[o];
            }
        }
        let winograd = (kh == 3 && cin >= WINOGRAD_MIN_CIN).then(|| winograd::transform_weights(&weight, cout, cin));
        Self {
            weight,
            bias,
            cin,
            cout,
            k: kh,
            winograd,
        }
    }
}

/// conv3x3-BN-ReLU, conv3x3-BN, optional 1x1 shortcut, ReLU.
#[derive(Debug, Clone)]
pub(crate) struct Block {
    conv1: Conv,
    conv2: Conv,
    shortcut: Option<Conv>,
}

impl Block {
    fn fold(b: &ConvBlock) -> Self {
        let (conv1, norm1, conv2, norm2, shortcut) = b.parts();
        Self {
            conv1: Conv::fold(conv1, Some(norm1)),
            conv2: Conv::fold(conv2, Some(norm2)),
            shortcut: shortcut.map(|(c, n)| Conv::fold(c, Some(n))),
        }
    }

    pub(crate) fn forward(&self, x: &Act, pool: &mut Pool) -> Act {
        let y = conv(&self.conv1, x, None, pool);
        let out = conv(&self.conv2, &y, self.shortcut.as_ref().map(|s| (s, x)), pool);
        pool.give(y);
        out
    }
}

/// Transposed 2x2 convolution with stride 2 (the U-Net's upsampling).
#[derive(Debug, Clone)]
pub(crate) struct UpConv {
    /// `[cout * 4, cin]`: row `(o, dy, dx)` holds the weights applied to every input channel.
    weight: Vec<f32>,
    bias: Vec<f32>,
    cin: usize,
    cout: usize,
}

impl UpConv {
    fn fold(up: &ConvTranspose2d) -> Self {
        let [cin, cout, kh, kw] = up.weight.val().dims();
        assert!(kh == 2 && kw == 2 && up.stride == [2, 2], "2x2 stride-2 up-convolutions only");
        let w = param(&up.weight); // [cin, cout, 2, 2]
        let mut weight = vec![0.0; cout * 4 * cin];
        for i in 0..cin {
            for o in 0..cout {
                for t in 0..4 {
                    weight[(o * 4 + t) * cin + i] = w[(i * cout + o) * 4 + t];
                }
            }
        }
        let bias = up.bias.as_ref().map(param).unwrap_or_else(|| vec![0.0; cout]);
        Self { weight, bias, cin, cout }
    }
}

/// Activation buffers handed back by finished layers, reused by later ones: fresh buffers per
/// layer cost ~10 % of inference in page faults and zeroing (`bench/PROFILE.md`).
#[derive(Default)]
pub(crate) struct Pool(Vec<Vec<f32>>);

impl Pool {
    /// A zeroed buffer of `n` values, reusing the smallest free one that is large enough.
    fn take(&mut self, n: usize) -> Vec<f32> {
        let best = (0..self.0.len())
            .filter(|&i| self.0[i].capacity() >= n)
            .min_by_key(|&i| self.0[i].capacity());
        let mut v = best.map_or_else(|| Vec::with_capacity(n), |i| self.0.swap_remove(i));
        v.clear();
        v.resize(n, 0.0);
        v
    }

    pub(crate) fn give(&mut self, a: Act) {
        self.0.push(a.data);
    }
}

/// Activations of a batch: `[batch, channels, h, w]`, contiguous.
#[derive(Debug, Clone)]
pub(crate) struct Act {
    pub(crate) data: Vec<f32>,
    pub(crate) batch: usize,
    pub(crate) channels: usize,
    pub(crate) h: usize,
    pub(crate) w: usize,
}

impl Act {
    pub(crate) fn zeros(pool: &mut Pool, batch: usize, channels: usize, h: usize, w: usize) -> Self {
        Self {
            data: pool.take(batch * channels * h * w),
            batch,
            channels,
            h,
            w,
        }
    }

    pub(crate) fn plane(&self) -> usize {
        self.h * self.w
    }

    pub(crate) fn image(&self, b: usize) -> &[f32] {
        let n = self.channels * self.plane();
        &self.data[b * n..(b + 1) * n]
    }
}

/// Convolution + folded BN (+ 1x1 shortcut) + ReLU, over the whole batch.
fn conv(c: &Conv, x: &Act, shortcut: Option<(&Conv, &Act)>, pool: &mut Pool) -> Act {
    let add = shortcut.map_or(Add::Nothing, |(s, sx)| Add::Shortcut(s, sx));
    conv_fused(c, x, add, Activation::Relu, pool)
}

/// What a convolution's epilogue adds before the activation.
#[derive(Clone, Copy)]
pub(crate) enum Add<'a> {
    Nothing,
    /// A 1x1 convolution of another activation (the ResUNet's projected shortcut).
    Shortcut(&'a Conv, &'a Act),
    /// Another activation of the output's shape (an identity skip).
    Identity(&'a Act),
}

/// The activation at the end of a convolution's epilogue.
#[derive(Clone, Copy, PartialEq)]
pub(crate) enum Activation {
    Linear,
    Relu,
    /// `clamp(0, 6)`, EfficientNet's.
    Relu6,
}

impl Activation {
    pub(crate) fn apply(self, v: f32) -> f32 {
        match self {
            Self::Linear => v,
            Self::Relu => v.max(0.0),
            Self::Relu6 => v.clamp(0.0, 6.0),
        }
    }
}

/// Convolution (kernel 1 or 3, stride 1) + folded BN, then `add` and `act` in the epilogue of
/// every band while it is in the cache, over the whole batch.
pub(crate) fn conv_fused(c: &Conv, x: &Act, add: Add, act: Activation, pool: &mut Pool) -> Act {
    let (h, w, plane) = (x.h, x.w, x.plane());
    let mut out = Act::zeros(pool, x.batch, c.cout, h, w);
    let shape = ConvShape {
        batch: x.batch,
        cin: c.cin,
        cout: c.cout,
        h,
        w,
        k: c.k,
    };
    conv_bands(shape, &x.data, &c.weight, c.winograd.as_deref(), &mut out.data, |band| {
        let BandOut { b, y0, n, dst } = band;
        if let Add::Shortcut(s, sx) = add {
            let simg = sx.image(b);
            // SAFETY: the band's rows of every output channel belong to this task.
            unsafe { matmul(s.cout, n, s.cin, dst, plane, true, &s.weight, simg[y0 * w..].as_ptr(), plane) };
        }
        for o in 0..c.cout {
            let bias = c.bias[o] + if let Add::Shortcut(s, _) = add { s.bias[o] } else { 0.0 };
            // SAFETY: as above.
            let row = unsafe { std::slice::from_raw_parts_mut(dst.add(o * plane), n) };
            match add {
                Add::Identity(skip) => {
                    let src = &skip.image(b)[o * plane + y0 * w..][..n];
                    row.iter_mut().zip(src).for_each(|(v, s)| *v = act.apply(*v + bias + s));
                }
                _ => row.iter_mut().for_each(|v| *v = act.apply(*v + bias)),
            }
        }
    });
    out
}

fn maxpool2(x: &Act, pool: &mut Pool) -> Act {
    let (h, w) = (x.h / 2, x.w / 2);
    let mut out = Act::zeros(pool, x.batch, x.channels, h, w);
    out.data.par_chunks_mut(h * w).enumerate().for_each(|(bc, dst)| {
        let src = &x.data[bc * x.plane()..(bc + 1) * x.plane()];
        for y in 0..h {
            let (r0, r1) = (&src[2 * y * x.w..][..x.w], &src[(2 * y + 1) * x.w..][..x.w]);
            for (xo, d) in dst[y * w..(y + 1) * w].iter_mut().enumerate() {
                *d = r0[2 * xo].max(r0[2 * xo + 1]).max(r1[2 * xo]).max(r1[2 * xo + 1]);
            }
        }
    });
    out
}

thread_local! {
    /// [`up_cat`]'s per-worker buffer of the four taps' outputs.
    static UPSAMPLED: std::cell::RefCell<Vec<f32>> = Default::default();
}

/// Upsample `x` with `up` and concatenate `skip` after it along channels.
pub(crate) fn up_cat(up: &UpConv, x: &Act, skip: &Act, pool: &mut Pool) -> Act {
    let (h, w) = (x.h, x.w);
    let (oh, ow) = (skip.h, skip.w);
    let channels = up.cout + skip.channels;
    let mut out = Act::zeros(pool, x.batch, channels, oh, ow);
    let image = channels * oh * ow;
    out.data.par_chunks_mut(image).enumerate().for_each(|(b, dst)| {
        // A buffer per worker: a fresh one per image (megabytes at full resolution) cost page
        // faults on every call.
        UPSAMPLED.with_borrow_mut(|tmp| {
            tmp.resize(up.cout * 4 * h * w, 0.0);
            // SAFETY: `tmp` is [cout * 4, h * w]; the input image is [cin, h * w].
            unsafe {
                matmul(
                    up.cout * 4,
                    h * w,
                    up.cin,
                    tmp.as_mut_ptr(),
                    h * w,
                    false,
                    &up.weight,
                    x.image(b).as_ptr(),
                    h * w,
                )
            };
            for o in 0..up.cout {
                let plane = &mut dst[o * oh * ow..(o + 1) * oh * ow];
                let bias = up.bias[o];
                // Output row 2y + dy interleaves the rows y of taps (dy, 0) and (dy, 1).
                for (r, drow) in plane.chunks_exact_mut(ow).enumerate().take(2 * h) {
                    let (y, dy) = (r / 2, r % 2);
                    let left = &tmp[(o * 4 + dy * 2) * h * w + y * w..][..w];
                    let right = &tmp[(o * 4 + dy * 2 + 1) * h * w + y * w..][..w];
                    for ((pair, &l), &r) in drow.chunks_exact_mut(2).zip(left).zip(right) {
                        pair[0] = l + bias;
                        pair[1] = r + bias;
                    }
                }
            }
        });
        dst[up.cout * oh * ow..].copy_from_slice(skip.image(b));
    });
    out
}

/// The batch as an activation of `size x size` planes (three, or more with 2.5D context).
pub(crate) fn input(images: &[&[f32]], size: usize) -> Act {
    let mut data = Vec::with_capacity(images.len() * 3 * size * size);
    images.iter().for_each(|x| data.extend_from_slice(x));
    let planes = images.first().map_or(3, |x| x.len() / (size * size).max(1));
    Act {
        data,
        batch: images.len(),
        channels: planes,
        h: size,
        w: size,
    }
}

pub(crate) fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// Probability maps of a one-output 1x1 head over `x`, one per image.
pub(crate) fn head_maps(head: &Conv, x: &Act) -> Vec<Vec<f32>> {
    let plane = x.plane();
    (0..x.batch)
        .into_par_iter()
        .map(|b| {
            // Channel by channel over the whole plane (contiguous, vectorised), in the channel
            // order of a per-pixel sum.
            let mut logits = vec![head.bias[0]; plane];
            for (c, channel) in x.image(b).chunks_exact(plane).enumerate() {
                let wc = head.weight[c];
                logits.iter_mut().zip(channel).for_each(|(l, &v)| *l += wc * v);
            }
            logits.into_iter().map(sigmoid).collect()
        })
        .collect()
}

/// A U-Net decoder, folded: per level an up-convolution, the skip concatenated after it and a
/// block of two conv3x3-BN-ReLU (then scSE attention where trained with it); then a
/// one-output 1x1 head.
#[derive(Debug, Clone)]
pub(crate) struct Decoder {
    pub(crate) upconvs: Vec<UpConv>,
    pub(crate) blocks: Vec<Block>,
    /// One per level, or none.
    attention: Vec<FoldedScse>,
    pub(crate) head: Conv,
}

impl Decoder {
    pub(crate) fn fold(upconvs: &[ConvTranspose2d], blocks: &[ConvBlock], attention: &[Scse], head: &Conv2d) -> Self {
        Self {
            upconvs: upconvs.iter().map(UpConv::fold).collect(),
            blocks: blocks.iter().map(Block::fold).collect(),
            attention: attention.iter().map(FoldedScse::fold).collect(),
            head: Conv::fold(head, None),
        }
    }

    /// Probability maps from the deepest activation `x` and the skips (shallowest first; one
    /// per level, taken from the end); every buffer goes back to `pool`.
    pub(crate) fn decode(&self, mut x: Act, mut skips: Vec<Act>, pool: &mut Pool) -> Vec<Vec<f32>> {
        for (i, (up, block)) in self.upconvs.iter().zip(&self.blocks).enumerate() {
            let skip = skips.pop().expect("one skip per decoder level");
            let cat = up_cat(up, &x, &skip, pool);
            pool.give(x);
            pool.give(skip);
            x = block.forward(&cat, pool);
            pool.give(cat);
            if let Some(attention) = self.attention.get(i) {
                attention.apply(&mut x);
            }
        }
        let maps = head_maps(&self.head, &x);
        pool.give(x);
        maps
    }
}

/// [`SegmentationNet`] compiled for CPU inference.
#[derive(Debug, Clone)]
pub struct FoldedSegmenter {
    encoders: Vec<Block>,
    bottleneck: Block,
    decoder: Decoder,
}

impl FoldedSegmenter {
    /// Fold a trained network (its weights are copied; the network is not changed).
    pub fn new(net: &SegmentationNet) -> Self {
        let (encoders, bottleneck, upconvs, decoders, head) = net.parts();
        Self {
            encoders: encoders.iter().map(Block::fold).collect(),
            bottleneck: Block::fold(bottleneck),
            decoder: Decoder::fold(upconvs, decoders, &[], head),
        }
    }

    /// Tumour probability maps (`size x size`) for normalised `3 x size x size` inputs,
    /// `batch` slices at a time (bounds memory: about 15 MB per slice at 128 x 128, F=16).
    pub fn probabilities(&self, images: &[&[f32]], size: u32, batch: usize) -> Vec<Vec<f32>> {
        let mut pool = Pool::default();
        images
            .chunks(batch.max(1))
            .flat_map(|chunk| self.forward(chunk, size as usize, &mut pool))
            .collect()
    }

    fn forward(&self, images: &[&[f32]], size: usize, pool: &mut Pool) -> Vec<Vec<f32>> {
        let mut skips = Vec::with_capacity(self.encoders.len());
        let mut x = input(images, size);
        for enc in &self.encoders {
            let y = enc.forward(&x, pool);
            let pooled = maxpool2(&y, pool);
            pool.give(std::mem::replace(&mut x, pooled));
            skips.push(y);
        }
        let y = self.bottleneck.forward(&x, pool);
        pool.give(x);
        self.decoder.decode(y, skips, pool)
    }
}

/// [`SliceClassifier`] compiled for CPU inference.
#[derive(Debug, Clone)]
pub struct FoldedClassifier {
    stages: Vec<Block>,
    head_weight: Vec<f32>,
    head_bias: f32,
}

impl FoldedClassifier {
    /// Fold a trained classifier (its weights are copied; the network is not changed).
    pub fn new(net: &SliceClassifier) -> Self {
        let (stages, head) = net.parts();
        Self {
            stages: stages.iter().map(Block::fold).collect(),
            head_weight: param(&head.weight),
            head_bias: head.bias.as_ref().map_or(0.0, |b| param(b)[0]),
        }
    }

    /// Tumour probability per normalised `3 x size x size` input, `batch` slices at a time.
    pub fn probabilities(&self, images: &[&[f32]], size: u32, batch: usize) -> Vec<f32> {
        let mut pool = Pool::default();
        images
            .chunks(batch.max(1))
            .flat_map(|chunk| self.forward(chunk, size as usize, &mut pool))
            .collect()
    }

    fn forward(&self, images: &[&[f32]], size: usize, pool: &mut Pool) -> Vec<f32> {
        let mut x = input(images, size);
        for stage in &self.stages {
            let y = stage.forward(&x, pool);
            let pooled = maxpool2(&y, pool);
            pool.give(std::mem::replace(&mut x, pooled));
            pool.give(y);
        }
        let plane = x.plane();
        let probs = (0..x.batch)
            .map(|b| {
                let img = x.image(b);
                let logit = (0..x.channels).fold(self.head_bias, |acc, c| {
                    let mean = img[c * plane..(c + 1) * plane].iter().sum::<f32>() / plane as f32;
                    acc + self.head_weight[c] * mean
                });
                sigmoid(logit)
            })
            .collect();
        pool.give(x);
        probs
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::config::{ClassifierConfig, SegmenterConfig};
    use burn::module::RunningState;
    use burn::tensor::Distribution;

    /// Give every batch-norm non-trivial statistics so that folding is actually exercised.
    pub(crate) fn randomize(n: &mut BatchNorm, device: &Device) {
        let c = n.gamma.val().dims()[0];
        let r = |lo: f64, hi: f64| Tensor::<1>::random([c], Distribution::Uniform(lo, hi), device);
        n.gamma = Param::from_tensor(r(0.5, 1.5));
        n.beta = Param::from_tensor(r(-0.5, 0.5));
        n.running_mean = RunningState::new(r(-0.3, 0.3));
        n.running_var = RunningState::new(r(0.5, 2.0));
    }

    fn max_diff(a: &[f32], b: &[f32]) -> f32 {
        assert_eq!(a.len(), b.len());
        a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
    }

    fn images(n: usize, size: usize, device: &Device) -> Vec<Vec<f32>> {
        let t = Tensor::<4>::random([n, 3, size, size], Distribution::Normal(0.0, 1.0), device);
        let flat = values(t);
        flat.chunks(3 * size * size).map(<[f32]>::to_vec).collect()
    }

    /// Folded and burn probability maps of a fresh network (batch-norms randomised or not)
    /// on `n` random images: the largest difference and burn's maps.
    fn segmenter_gap(features: usize, depth: usize, residual: bool, size: usize, n: usize, norms: bool) -> (f32, Vec<Vec<f32>>) {
        let device = Device::flex();
        let cfg = SegmenterConfig {
            features,
            depth,
            residual,
            input_size: size as u32,
            ..Default::default()
        };
        let mut net = SegmentationNet::new(&cfg, &device);
        if norms {
            net.norms_mut().into_iter().for_each(|b| randomize(b, &device));
        }
        let imgs = images(n, size, &device);
        let refs: Vec<&[f32]> = imgs.iter().map(Vec::as_slice).collect();
        let want = net.probabilities_burn(&refs, size as u32, &device, n);
        let got = FoldedSegmenter::new(&net).probabilities(&refs, size as u32, n);
        let gap = got.iter().zip(&want).map(|(g, w)| max_diff(g, w)).fold(0.0, f32::max);
        (gap, want)
    }

    #[test]
    fn segmenter_matches_burn_forward() {
        Device::flex().seed(7);
        for residual in [false, true] {
            let (gap, want) = segmenter_gap(4, 3, residual, 32, 3, true);
            assert!(gap < 1e-4, "residual={residual}: {gap}");
            // The maps are not trivially constant (over the whole batch: with random weights one
            // image's map can saturate).
            let all = want.concat();
            let (lo, hi) = all.iter().fold((f32::MAX, f32::MIN), |(l, h), &p| (l.min(p), h.max(p)));
            assert!(hi - lo > 1e-4, "constant maps");
        }
    }

    #[test]
    fn classifier_matches_burn_forward() {
        let device = Device::flex();
        device.seed(8);
        let cfg = ClassifierConfig {
            features: 4,
            stages: 3,
            input_size: 32,
            ..Default::default()
        };
        let mut net = SliceClassifier::new(&cfg, &device);
        net.norms_mut().into_iter().for_each(|n| randomize(n, &device));
        let imgs = images(4, 32, &device);
        let refs: Vec<&[f32]> = imgs.iter().map(Vec::as_slice).collect();
        let want = net.probabilities_burn(&refs, 32, &device, 4);
        let got = FoldedClassifier::new(&net).probabilities(&refs, 32, 3);
        assert!(max_diff(&got, &want) < 1e-5, "{got:?} vs {want:?}");
    }

    /// A random 3x3 layer twice (im2col and Winograd) and a random batch of `batch` inputs.
    fn layer_pair(cin: usize, cout: usize, batch: usize, h: usize, w: usize) -> (Conv, Conv, Act) {
        let device = Device::flex();
        let r = |n: usize, std: f64| values(Tensor::<1>::random([n], Distribution::Normal(0.0, std), &device));
        let weight = r(cout * cin * 9, 0.2);
        let direct = Conv {
            winograd: None,
            bias: r(cout, 0.2),
            weight: weight.clone(),
            cin,
            cout,
            k: 3,
        };
        let wino = Conv {
            winograd: Some(winograd::transform_weights(&weight, cout, cin)),
            ..direct.clone()
        };
        let x = Act {
            data: r(batch * cin * h * w, 1.0),
            batch,
            channels: cin,
            h,
            w,
        };
        (direct, wino, x)
    }

    #[test]
    fn winograd_matches_im2col() {
        // Several bands of tile rows (tall image), a band height that does not divide h, and
        // non-square planes; same layer with and without the Winograd weights.
        Device::flex().seed(10);
        for (cin, cout, h, w) in [(16, 8, 10, 14), (32, 16, 64, 8), (24, 5, 2, 2), (16, 16, 130, 12)] {
            let (direct, wino, x) = layer_pair(cin, cout, 2, h, w);
            let (a, b) = (
                conv(&direct, &x, None, &mut Pool::default()),
                conv(&wino, &x, None, &mut Pool::default()),
            );
            assert!(
                max_diff(&a.data, &b.data) < 1e-4,
                "{cin}x{cout} {h}x{w}: {}",
                max_diff(&a.data, &b.data)
            );
            assert!(a.data.iter().filter(|&&v| v > 0.0).count() > a.data.len() / 4);
        }
    }

    /// Per-layer timing of im2col + GEMM against Winograd for the U-Net F=16 layer shapes
    /// (batch 16): `cargo test --release -p tumorscan-model layer_timings -- --ignored --nocapture`.
    #[test]
    #[ignore = "timing report, not a test"]
    fn layer_timings() {
        for (cin, cout, hw) in [
            (16, 16, 128),
            (32, 16, 128),
            (16, 32, 64),
            (32, 32, 64),
            (64, 32, 64),
            (32, 64, 32),
            (64, 64, 32),
            (128, 64, 32),
            (64, 128, 16),
            (128, 128, 16),
            (256, 128, 16),
            (128, 256, 8),
            (256, 256, 8),
        ] {
            let (direct, wino, x) = layer_pair(cin, cout, 16, hw, hw);
            let cpu = crate::kernels::tests::cpu_ms;
            let time = |c: &Conv| {
                let t = cpu();
                for _ in 0..8 {
                    let _ = conv(c, &x, None, &mut Pool::default());
                }
                (cpu() - t) / 8.0
            };
            let (a, b) = (time(&direct), time(&wino));
            println!(
                "cin {cin:3} cout {cout:3} {hw:3}x{hw:<3}: im2col {a:7.2} ms  winograd {b:7.2} ms  ({:.2}x)",
                a / b
            );
        }
    }

    /// Time to fold the shipped-size network (paid once per `probabilities` call).
    #[test]
    #[ignore = "timing report, not a test"]
    fn fold_timing() {
        let device = Device::flex();
        let cfg = SegmenterConfig {
            features: 16,
            depth: 4,
            residual: true,
            input_size: 128,
            ..Default::default()
        };
        let net = SegmentationNet::new(&cfg, &device);
        let t = std::time::Instant::now();
        let folded = FoldedSegmenter::new(&net);
        println!("fold: {:.1} ms", t.elapsed().as_secs_f64() * 1e3);
        let img = vec![0.1f32; 3 * 128 * 128];
        let t = std::time::Instant::now();
        let _ = folded.probabilities(&[img.as_slice()], 128, 1);
        println!("one slice: {:.1} ms", t.elapsed().as_secs_f64() * 1e3);
    }

    #[test]
    fn odd_rows_per_tile_and_one_image() {
        // 24 rows do not divide into the tile height chosen for w=24: exercises the last tile.
        Device::flex().seed(9);
        let (gap, _) = segmenter_gap(2, 2, true, 24, 1, false);
        assert!(gap < 1e-4, "{gap}");
    }
}
