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
    /// Tumour probability maps (`size x size` each), in batches, on the fastest path for `device`.
    fn probabilities(&self, images: &[&[f32]], size: u32, device: &Device, batch: usize) -> Vec<Vec<f32>>;
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
mod tests {
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
}
