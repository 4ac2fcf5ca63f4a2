//! The EfficientNet-Lite U-Net ([`crate::EfficientUNet`]) compiled for CPU inference, as
//! [`crate::folded`] does for the U-Net: weights extracted once, every batch norm folded into
//! its convolution, and bias, ReLU6 and the identity skips applied in the convolutions' epilogues.
//!
//! Why: through burn's forward pass (on the custom CPU ops of training) the shipped network ran
//! at 0.69x PyTorch's inference throughput (`bench/results.md` of session 13): every layer
//! allocated a fresh tensor and batch norm was a pass of its own over the six-times expanded
//! activations (`bench/PROFILE.md`). Results match burn's forward pass to float rounding
//! (tested below).

use crate::autodiff::depthwise::{geometry, input_row, output_plane, Geometry};
use crate::efficientnet::ConvBn;
use crate::effunet::EfficientUNet;
use crate::folded::{conv_fused, input, Act, Activation, Add, Conv, Decoder, Pool};
use crate::kernels::matmul;
use burn::nn::PaddingConfig2d;
use rayon::prelude::*;

/// Images run through the network together, whatever batch the caller asks for: at 192 x 192
/// a batch of 16 has activations of 40-60 MB per layer, above glibc's largest mmap threshold,
/// so every layer paid fresh pages, and the planes fall out of the cache between layers; 2-8
/// images keep both cores busy and measured 0.23-0.28 s per 16 slices against 0.30-0.35 s
/// (`tumorscan bench --arch effunet --size 192`, paired runs, before `tune_allocator` kept such
/// blocks in the heap too; the cache locality stands either way).
const SUB_BATCH: usize = 4;

/// A folded convolution with its stride and padding: the stem (3x3, stride 2) or a depthwise
/// layer (`depthwise`: one kernel per channel, weights `[channels, k * k]`).
#[derive(Debug, Clone)]
struct Spatial {
    conv: Conv,
    stride: usize,
    padding: PaddingConfig2d,
    depthwise: bool,
}

impl Spatial {
    fn fold(layer: &ConvBn) -> Self {
        let (conv, norm) = layer.parts();
        Self {
            conv: Conv::fold(conv, Some(norm)),
            stride: conv.stride[0],
            padding: conv.padding.clone(),
            depthwise: conv.groups > 1,
        }
    }

    fn geometry(&self, x: &Act) -> Geometry {
        // The encoder's layers on a plane the network accepts (a multiple of 32) always fit.
        geometry(&self.padding, self.conv.k, self.stride, x.h, x.w).expect("a plane the layer fits")
    }

    /// The layer, bias and ReLU6 over the batch.
    fn forward(&self, x: &Act, pool: &mut Pool) -> Act {
        let g = self.geometry(x);
        let c = &self.conv;
        let mut out = Act::zeros(pool, x.batch, c.cout, g.oh, g.ow);
        let (iplane, oplane) = (x.plane(), g.oh * g.ow);
        if self.depthwise {
            let kk = c.k * c.k;
            out.data.par_chunks_mut(oplane).enumerate().for_each(|(p, y)| {
                let ch = p % c.cout;
                output_plane(g, &x.data[p * iplane..][..iplane], &c.weight[ch * kk..][..kk], y);
                let bias = c.bias[ch];
                y.iter_mut().for_each(|v| *v = Activation::Relu6.apply(*v + bias));
            });
        } else {
            // A strided convolution on few input planes (the stem): im2col of the whole image,
            // one GEMM per image.
            let rows = c.cin * c.k * c.k;
            out.data.par_chunks_mut(c.cout * oplane).enumerate().for_each(|(b, y)| {
                let mut col = vec![0.0f32; rows * oplane];
                im2col_strided(&mut col, &x.data[b * c.cin * iplane..][..c.cin * iplane], c.cin, g);
                // SAFETY: `y` is [cout, oplane] and `col` [rows, oplane], both contiguous.
                unsafe { matmul(c.cout, oplane, rows, y.as_mut_ptr(), oplane, false, &c.weight, col.as_ptr(), oplane) };
                for (o, plane) in y.chunks_mut(oplane).enumerate() {
                    let bias = c.bias[o];
                    plane.iter_mut().for_each(|v| *v = Activation::Relu6.apply(*v + bias));
                }
            });
        }
        out
    }
}

/// `col[(c, ky, kx), (oy, ox)] = x[c, oy * stride + ky - top, ox * stride + kx - left]`, zero
/// outside the image (`col` zeroed by the caller).
fn im2col_strided(col: &mut [f32], x: &[f32], channels: usize, g: Geometry) {
    let (k, oplane) = (g.k, g.oh * g.ow);
    for c in 0..channels {
        let plane = &x[c * g.h * g.w..][..g.h * g.w];
        for ky in 0..k {
            for kx in 0..k {
                let row = &mut col[((c * k + ky) * k + kx) * oplane..][..oplane];
                for oy in 0..g.oh {
                    let Some(iy) = input_row(g, oy, ky) else { continue };
                    for ox in 0..g.ow {
                        if let Some(ix) = (ox * g.stride + kx).checked_sub(g.left).filter(|&ix| ix < g.w) {
                            row[oy * g.ow + ox] = plane[iy * g.w + ix];
                        }
                    }
                }
            }
        }
    }
}

/// Mobile inverted bottleneck, folded.
#[derive(Debug, Clone)]
struct MbConv {
    expand: Option<Conv>,
    depthwise: Spatial,
    project: Conv,
    skip: bool,
}

impl MbConv {
    fn forward(&self, x: &Act, pool: &mut Pool) -> Act {
        let expanded = self
            .expand
            .as_ref()
            .map(|e| conv_fused(e, x, Add::Nothing, Activation::Relu6, pool));
        let d = self.depthwise.forward(expanded.as_ref().unwrap_or(x), pool);
        if let Some(e) = expanded {
            pool.give(e);
        }
        let add = if self.skip { Add::Identity(x) } else { Add::Nothing };
        let y = conv_fused(&self.project, &d, add, Activation::Linear, pool);
        pool.give(d);
        y
    }
}

/// [`EfficientUNet`] compiled for CPU inference.
#[derive(Debug, Clone)]
pub struct FoldedEfficientUNet {
    stem: Spatial,
    blocks: Vec<MbConv>,
    /// The blocks whose outputs are the decoder's skips (the encoder's taps).
    taps: Vec<usize>,
    decoder: Decoder,
}

impl FoldedEfficientUNet {
    /// Fold a trained network (its weights are copied; the network is not changed).
    pub fn new(net: &EfficientUNet) -> Self {
        let (encoder, upconvs, decoders, attention, head) = net.parts();
        let (stem, blocks) = encoder.parts();
        let blocks = blocks
            .iter()
            .map(|b| {
                let (expand, depthwise, project, skip) = b.parts();
                let fold = |l: &ConvBn| {
                    let (conv, norm) = l.parts();
                    Conv::fold(conv, Some(norm))
                };
                MbConv {
                    expand: expand.map(fold),
                    depthwise: Spatial::fold(depthwise),
                    project: fold(project),
                    skip,
                }
            })
            .collect();
        Self {
            stem: Spatial::fold(stem),
            blocks,
            taps: encoder.tap_blocks(),
            decoder: Decoder::fold(upconvs, decoders, attention, head),
        }
    }

    /// Tumour probability maps (`size x size`) for normalised inputs of `C x size x size`
    /// (`size` a multiple of 32), `batch` slices at a time.
    pub fn probabilities(&self, images: &[&[f32]], size: u32, batch: usize) -> Vec<Vec<f32>> {
        let mut pool = Pool::default();
        images
            .chunks(batch.clamp(1, SUB_BATCH))
            .flat_map(|chunk| self.forward(chunk, size as usize, &mut pool))
            .collect()
    }

    /// The decoder's skips, shallowest first: the input image, then the encoder's taps (the
    /// last one is the deepest, where the decoder starts).
    fn encode(&self, images: &[&[f32]], size: usize, pool: &mut Pool) -> Vec<Act> {
        let image = input(images, size);
        let mut x = self.stem.forward(&image, pool);
        let mut skips = vec![image];
        let mut tapped = false;
        for (i, block) in self.blocks.iter().enumerate() {
            let y = block.forward(&x, pool);
            let prev = std::mem::replace(&mut x, y);
            if tapped {
                skips.push(prev);
            } else {
                pool.give(prev);
            }
            tapped = self.taps.contains(&i);
        }
        // The last block is tapped.
        skips.push(x);
        skips
    }

    fn forward(&self, images: &[&[f32]], size: usize, pool: &mut Pool) -> Vec<Vec<f32>> {
        let mut skips = self.encode(images, size, pool);
        let deepest = skips.pop().expect("the encoder has taps");
        self.decoder.decode(deepest, skips, pool)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::LiteVariant;
    use crate::folded::tests::randomize;
    use burn::prelude::*;
    use burn::tensor::Distribution;

    /// A fresh network for `channels` input planes with random batch-norm statistics (so that
    /// folding is exercised), and a batch of three random inputs of `size x size`.
    fn network(encoder: LiteVariant, channels: usize, size: usize, device: &Device) -> (EfficientUNet, Vec<f32>) {
        let mut net = EfficientUNet::build(encoder, channels, device);
        net.norms_mut().into_iter().for_each(|n| randomize(n, device));
        let x = Tensor::<4>::random([3, channels, size, size], Distribution::Normal(0.0, 1.0), device);
        (net, x.into_data().try_to_vec().expect("f32"))
    }

    /// Largest difference between `got` and `want`, relative to `want`'s largest magnitude.
    fn relative_gap(got: &[f32], want: &[f32]) -> f32 {
        assert_eq!(got.len(), want.len());
        let scale = want.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        assert!(scale > 1e-3, "trivially zero");
        got.iter().zip(want).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max) / scale
    }

    /// Every encoder tap (stem, depthwise layers at both strides and kernel sizes, identity
    /// skips) equals burn's, and so do the probability maps (a batch cut into uneven chunks),
    /// for three planes and for 2.5D context, on both encoders.
    #[test]
    fn matches_burn_forward() {
        let device = Device::flex();
        device.seed(11);
        for (encoder, channels, size) in [
            (LiteVariant::Lite0, 3, 64),
            (LiteVariant::Lite0, 5, 32),
            (LiteVariant::Lite1, 3, 32),
        ] {
            let (net, flat) = network(encoder, channels, size, &device);
            let images: Vec<&[f32]> = flat.chunks(channels * size * size).collect();
            let folded = FoldedEfficientUNet::new(&net);
            let taps = net
                .parts()
                .0
                .taps(Tensor::from_data(TensorData::new(flat.clone(), [3, channels, size, size]), &device));
            let skips = folded.encode(&images, size, &mut Pool::default());
            assert_eq!(skips.len(), taps.len() + 1);
            for (i, (tap, act)) in taps.into_iter().zip(&skips[1..]).enumerate() {
                assert_eq!(tap.dims(), [act.batch, act.channels, act.h, act.w], "tap {i}");
                let want: Vec<f32> = tap.into_data().try_to_vec().expect("f32");
                let gap = relative_gap(&act.data, &want);
                assert!(gap < 1e-5, "{encoder:?}, {channels} planes, tap {i}: {gap}");
            }
            let want = net.probabilities_burn(&images, size as u32, &device, 3);
            let got = folded.probabilities(&images, size as u32, 2);
            assert_eq!(got.len(), 3);
            let gap = relative_gap(&got.concat(), &want.concat());
            assert!(gap < 1e-5, "{encoder:?}, {channels} planes, {size}px maps: {gap}");
        }
    }

    #[test]
    fn strided_im2col_pads_as_tensorflow_same() {
        // 4x4 plane, 3x3 stride 2, "same": 2x2 outputs, padding 0 before and 1 after.
        let g = geometry(&PaddingConfig2d::Same, 3, 2, 4, 4).expect("fits");
        assert_eq!((g.top, g.left, g.oh, g.ow), (0, 0, 2, 2));
        let x: Vec<f32> = (0..16).map(|v| v as f32).collect();
        let mut col = vec![0.0; 9 * 4];
        im2col_strided(&mut col, &x, 1, g);
        // Kernel tap (2, 2) of output (1, 1) reads input (4, 4): outside, so zero; of output
        // (0, 0) it reads input (2, 2) = 10.
        assert_eq!(&col[8 * 4..9 * 4], &[10.0, 0.0, 0.0, 0.0]);
        // Tap (0, 0) reads inputs (0, 0), (0, 2), (2, 0), (2, 2).
        assert_eq!(&col[..4], &[0.0, 2.0, 8.0, 10.0]);
    }
}

#[cfg(test)]
mod timing {
    use super::*;
    use crate::folded::{head_maps, up_cat};
    use burn::prelude::*;
    use std::time::Instant;

    /// Where the folded forward pass spends its time, by kind of layer (batch 16, 192 x 192):
    /// `cargo test --release -p tumorscan-model effunet_layer_timings -- --ignored --nocapture`.
    #[test]
    #[ignore = "timing report, not a test"]
    fn effunet_layer_timings() {
        crate::tune_allocator();
        let device = Device::flex();
        let f = FoldedEfficientUNet::new(&EfficientUNet::new(&device));
        let (size, batch) = (192, 16);
        let flat = vec![0.3f32; batch * 3 * size * size];
        let all: Vec<&[f32]> = flat.chunks(3 * size * size).collect();
        for _ in 0..3 {
            let s = Instant::now();
            let _ = f.probabilities(&all, size as u32, batch);
            println!("whole batch: {:.1} ms", s.elapsed().as_secs_f64() * 1e3);
        }
        // Per layer kind on one sub-batch, times the sub-batches of a batch of 16.
        let images = &all[..SUB_BATCH];
        let reps = batch / SUB_BATCH;
        let mut pool = Pool::default();
        let _ = f.forward(images, size, &mut pool);
        let mut t = std::collections::BTreeMap::<String, f64>::new();
        let mut add = |k: &str, s: Instant| *t.entry(k.to_string()).or_default() += s.elapsed().as_secs_f64();
        for _ in 0..3 * reps {
            let s = Instant::now();
            let image = input(images, size);
            let mut x = f.stem.forward(&image, &mut pool);
            add("stem", s);
            for b in &f.blocks {
                let s = Instant::now();
                let e = b
                    .expand
                    .as_ref()
                    .map(|e| conv_fused(e, &x, Add::Nothing, Activation::Relu6, &mut pool));
                add("expand 1x1", s);
                let s = Instant::now();
                let d = b.depthwise.forward(e.as_ref().unwrap_or(&x), &mut pool);
                add(&format!("depthwise k{} s{}", b.depthwise.conv.k, b.depthwise.stride), s);
                if let Some(e) = e {
                    pool.give(e);
                }
                let s = Instant::now();
                let y = conv_fused(&b.project, &d, Add::Nothing, Activation::Linear, &mut pool);
                add("project 1x1", s);
                pool.give(d);
                pool.give(std::mem::replace(&mut x, y));
            }
            pool.give(x);
            pool.give(image);
            let mut skips = f.encode(images, size, &mut pool);
            let mut x = skips.pop().expect("taps");
            for (l, (up, dec)) in f.decoder.upconvs.iter().zip(&f.decoder.blocks).enumerate() {
                let skip = skips.pop().expect("skip");
                let s = Instant::now();
                let cat = up_cat(up, &x, &skip, &mut pool);
                add(&format!("dec{l} up+cat"), s);
                let s = Instant::now();
                let y = dec.forward(&cat, &mut pool);
                pool.give(std::mem::replace(&mut x, y));
                add(&format!("dec{l} block {}x{}", cat.channels, cat.h), s);
                pool.give(cat);
                pool.give(skip);
            }
            let s = Instant::now();
            let _ = head_maps(&f.decoder.head, &x);
            add("head", s);
            pool.give(x);
        }
        for (k, v) in t {
            println!("{k:20} {:7.1} ms per batch", v / 3.0 * 1e3);
        }
    }
}
