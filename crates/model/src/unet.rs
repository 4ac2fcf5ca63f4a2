//! U-Net of Buda et al. (2019): `depth` encoder levels of two conv3x3-BN-ReLU, max-pooling,
//! transposed-convolution upsampling and skip concatenation; a 1x1 head gives one logit per
//! pixel. With `residual`, every block adds a 1x1-projected shortcut (ResUNet).

use crate::autodiff::conv::conv_same;
use crate::autodiff::norm::batch_norm;
use crate::autodiff::pool::max_pool2;
use crate::config::SegmenterConfig;
use burn::nn::conv::{Conv2d, Conv2dConfig, ConvTranspose2d, ConvTranspose2dConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, PaddingConfig2d};
use burn::prelude::*;
use burn::tensor::activation::relu;

/// What the segmentation task needs of a network: fresh weights, optional pretrained ones,
/// logits to train and probabilities to validate.
pub trait SegmenterNet: Module + Sized + 'static {
    /// Build with fresh weights on `device`.
    fn build(cfg: &SegmenterConfig, device: &Device) -> Self;
    /// Replace (part of) the weights by pretrained ones from `path` (an error where there are none).
    fn load_pretrained(self, path: &std::path::Path) -> Result<Self, String>;
    /// Logits `[batch, 1, H, W]` for normalised input `[batch, C, H, W]` (C = [`SegmenterConfig::input_channels`]).
    fn logits(&self, x: Tensor<4>) -> Tensor<4>;
    /// The logits of [`Self::logits`], then those of the auxiliary outputs at strides 2, 4, ...
    /// (deep supervision, [`SegmenterConfig::deep_supervision`]); without any, the logits alone.
    fn deep_logits(&self, x: Tensor<4>) -> Vec<Tensor<4>> {
        vec![self.logits(x)]
    }
    /// [`Self::deep_logits`] and, where the network has a classification head, its slice
    /// logits `[batch]` from the same forward pass.
    fn deep_and_slice_logits(&self, x: Tensor<4>) -> (Vec<Tensor<4>>, Option<Tensor<1>>) {
        (self.deep_logits(x), None)
    }
    /// Tumour probability per input from the classification head, where the network has one.
    fn slice_probabilities(&self, _images: &[&[f32]], _size: u32, _device: &Device, _batch: usize) -> Option<Vec<f32>> {
        None
    }
    /// Tumour probability maps (`size x size` each), in batches, on the fastest path for `device`.
    fn probabilities(&self, images: &[&[f32]], size: u32, device: &Device, batch: usize) -> Vec<Vec<f32>>;
    /// Start the output layer at tumour probability `p` on every pixel (see [`prior_head`]).
    fn with_output_prior(self, p: f32) -> Self;
    /// The parameters that pretrained weights initialise (an ImageNet encoder), so that
    /// training can give them their own learning rate; `None` where the network has no such part.
    fn pretrained_part(&self) -> Option<burn::module::ParamGroup> {
        None
    }
}

/// A 1x1 output layer that starts at probability `p` everywhere: bias logit(p), weights scaled
/// by 0.01 (RetinaNet's prior initialisation). Why: a fresh head says 0.5 on every pixel of
/// slices that are 98 % background, and the Tversky-type losses spend the first epochs undoing it.
pub fn prior_head(mut head: Conv2d, p: f32) -> Conv2d {
    let logit = (p / (1.0 - p)).ln();
    head.weight = head.weight.map(|w| leaf(w * 0.01));
    head.bias = head.bias.map(|b| b.map(|t| leaf(t.zeros_like() + logit)));
    head
}

/// `t` as a new trainable leaf: a computed tensor left in a parameter would tie every training
/// step to the graph that computed it.
fn leaf<const D: usize>(t: Tensor<D>) -> Tensor<D> {
    let t = t.detach();
    if t.is_autodiff() {
        t.require_grad()
    } else {
        t
    }
}

impl SegmenterNet for SegmentationNet {
    fn build(cfg: &SegmenterConfig, device: &Device) -> Self {
        Self::new(cfg, device)
    }
    fn load_pretrained(self, _path: &std::path::Path) -> Result<Self, String> {
        Err("the U-Net has no pretrained weights; --pretrained needs --arch efficientnet-lite0-unet".into())
    }
    fn logits(&self, x: Tensor<4>) -> Tensor<4> {
        self.forward(x)
    }
    fn probabilities(&self, images: &[&[f32]], size: u32, device: &Device, batch: usize) -> Vec<Vec<f32>> {
        SegmentationNet::probabilities(self, images, size, device, batch)
    }
    fn with_output_prior(mut self, p: f32) -> Self {
        self.head = prior_head(self.head, p);
        self
    }
}

/// 1x1 projection used by residual blocks.
#[derive(Module, Debug)]
pub struct Shortcut {
    conv: Conv2d,
    norm: BatchNorm,
}

/// Two conv3x3-BN-ReLU, optionally with a residual shortcut.
#[derive(Module, Debug)]
pub struct ConvBlock {
    conv1: Conv2d,
    norm1: BatchNorm,
    conv2: Conv2d,
    norm2: BatchNorm,
    shortcut: Option<Shortcut>,
}

fn conv3(i: usize, o: usize, device: &Device) -> Conv2d {
    Conv2dConfig::new([i, o], [3, 3])
        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
        .with_bias(false)
        .init(device)
}

impl ConvBlock {
    /// A block from `i` to `o` channels.
    pub fn new(i: usize, o: usize, residual: bool, device: &Device) -> Self {
        Self {
            conv1: conv3(i, o, device),
            norm1: BatchNormConfig::new(o).init(device),
            conv2: conv3(o, o, device),
            norm2: BatchNormConfig::new(o).init(device),
            shortcut: residual.then(|| Shortcut {
                conv: Conv2dConfig::new([i, o], [1, 1]).with_bias(false).init(device),
                norm: BatchNormConfig::new(o).init(device),
            }),
        }
    }

    /// The layers, for [`crate::folded`]: conv1, norm1, conv2, norm2 and the shortcut.
    pub(crate) fn parts(&self) -> (&Conv2d, &BatchNorm, &Conv2d, &BatchNorm, Option<(&Conv2d, &BatchNorm)>) {
        let s = self.shortcut.as_ref().map(|s| (&s.conv, &s.norm));
        (&self.conv1, &self.norm1, &self.conv2, &self.norm2, s)
    }

    /// Every batch-norm of the block (tests set their statistics).
    #[cfg(test)]
    pub(crate) fn norms_mut(&mut self) -> Vec<&mut BatchNorm> {
        let mut v = vec![&mut self.norm1, &mut self.norm2];
        v.extend(self.shortcut.as_mut().map(|s| &mut s.norm));
        v
    }

    /// Forward pass.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        // On the CPU these run as fused autodiff operations (crate::autodiff).
        let y = batch_norm(&self.norm1, conv_same(&self.conv1, x.clone()), true);
        match &self.shortcut {
            Some(s) => {
                let y = batch_norm(&self.norm2, conv_same(&self.conv2, y), false);
                relu(y + batch_norm(&s.norm, conv_same(&s.conv, x), false))
            }
            None => batch_norm(&self.norm2, conv_same(&self.conv2, y), true),
        }
    }
}

/// The segmentation network.
#[derive(Module, Debug)]
pub struct SegmentationNet {
    encoders: Vec<ConvBlock>,
    pool: MaxPool2d,
    bottleneck: ConvBlock,
    upconvs: Vec<ConvTranspose2d>,
    decoders: Vec<ConvBlock>,
    head: Conv2d,
}

impl SegmentationNet {
    /// Build with fresh weights on `device`.
    pub fn new(cfg: &SegmenterConfig, device: &Device) -> Self {
        let f = cfg.features;
        let mut encoders = Vec::new();
        let mut ch = 3;
        for level in 0..cfg.depth {
            encoders.push(ConvBlock::new(ch, f << level, cfg.residual, device));
            ch = f << level;
        }
        let bottleneck = ConvBlock::new(ch, f << cfg.depth, cfg.residual, device);
        let mut upconvs = Vec::new();
        let mut decoders = Vec::new();
        for level in (0..cfg.depth).rev() {
            let (hi, lo) = (f << (level + 1), f << level);
            upconvs.push(ConvTranspose2dConfig::new([hi, lo], [2, 2]).with_stride([2, 2]).init(device));
            decoders.push(ConvBlock::new(lo * 2, lo, cfg.residual, device));
        }
        Self {
            encoders,
            pool: MaxPool2dConfig::new([2, 2]).init(),
            bottleneck,
            upconvs,
            decoders,
            head: Conv2dConfig::new([f, 1], [1, 1]).init(device),
        }
    }

    /// The layers, for [`crate::folded`]: encoders, bottleneck, up-convolutions, decoders, head.
    pub(crate) fn parts(&self) -> (&[ConvBlock], &ConvBlock, &[ConvTranspose2d], &[ConvBlock], &Conv2d) {
        (&self.encoders, &self.bottleneck, &self.upconvs, &self.decoders, &self.head)
    }

    /// Every batch-norm of the network (tests set their statistics).
    #[cfg(test)]
    pub(crate) fn norms_mut(&mut self) -> Vec<&mut BatchNorm> {
        let blocks = self
            .encoders
            .iter_mut()
            .chain(std::iter::once(&mut self.bottleneck))
            .chain(self.decoders.iter_mut());
        blocks.flat_map(ConvBlock::norms_mut).collect()
    }

    /// Logits `[batch, 1, H, W]` for normalised input `[batch, 3, H, W]` (H, W divisible by 2^depth).
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let mut skips = Vec::with_capacity(self.encoders.len());
        let mut x = x;
        for enc in &self.encoders {
            let y = enc.forward(x);
            x = max_pool2(&self.pool, y.clone());
            skips.push(y);
        }
        let mut x = self.bottleneck.forward(x);
        for (up, dec) in self.upconvs.iter().zip(&self.decoders) {
            let skip = skips.pop().expect("one skip per level");
            x = dec.forward(Tensor::cat(vec![up.forward(x), skip], 1));
        }
        self.head.forward(x)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn shapes_round_trip_for_both_variants() {
        let device = Device::flex();
        for residual in [false, true] {
            let cfg = SegmenterConfig {
                features: 4,
                depth: 3,
                residual,
                input_size: 32,
                ..Default::default()
            };
            let net = SegmentationNet::new(&cfg, &device);
            let y = net.forward(Tensor::zeros([2, 3, 32, 32], &device));
            assert_eq!(y.dims(), [2, 1, 32, 32]);
        }
    }

    /// Every pixel of a network started with [`SegmenterNet::with_output_prior`]`(0.01)` is
    /// within a quarter of 0.01 on random input.
    pub(crate) fn assert_starts_near_prior<N: SegmenterNet>(net: N) {
        let device = Device::flex();
        let x = Tensor::<4>::random([2, 3, 32, 32], burn::tensor::Distribution::Normal(0.0, 1.0), &device);
        let p = burn::tensor::activation::sigmoid(net.with_output_prior(0.01).logits(x));
        let p = p.into_data().try_to_vec::<f32>().expect("f32 probabilities");
        assert_eq!(p.len(), 2 * 32 * 32);
        let (lo, hi) = p.iter().fold((1f32, 0f32), |(a, b), &v| (a.min(v), b.max(v)));
        assert!(lo > 0.0075 && hi < 0.0125, "probabilities from {lo} to {hi}");
    }

    #[test]
    fn output_prior_starts_every_pixel_near_it() {
        let cfg = SegmenterConfig {
            features: 4,
            depth: 3,
            input_size: 32,
            ..Default::default()
        };
        assert_starts_near_prior(SegmentationNet::new(&cfg, &Device::flex()));
    }
}
