//! A compact ResNet-style slice classifier: a conv3x3 stem, `stages` residual stages that halve
//! the resolution and double the features, global average pooling and one logit (tumour).

use crate::autodiff::pool::max_pool2;
use crate::config::ClassifierConfig;
use crate::unet::ConvBlock;
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;

/// What the detection task needs of a network: fresh weights, optional pretrained ones,
/// logits to train and probabilities to validate.
pub trait ClassifierNet: Module + Sized + 'static {
    /// Build with fresh weights on `device`.
    fn build(cfg: &ClassifierConfig, device: &Device) -> Self;
    /// Replace the weights by pretrained ones from `path` (an error where there are none).
    fn load_pretrained(self, path: &std::path::Path) -> Result<Self, String>;
    /// Logits `[batch]` for normalised input `[batch, 3, H, W]`.
    fn logits(&self, x: Tensor<4>) -> Tensor<1>;
    /// Tumour probability per input, in batches, on the fastest path for `device`.
    fn probabilities(&self, images: &[&[f32]], size: u32, device: &Device, batch: usize) -> Vec<f32>;
}

impl ClassifierNet for SliceClassifier {
    fn build(cfg: &ClassifierConfig, device: &Device) -> Self {
        Self::new(cfg, device)
    }
    fn load_pretrained(self, _path: &std::path::Path) -> Result<Self, String> {
        Err("the ResNet classifier has no pretrained weights; --pretrained needs --arch efficientnet-lite0".into())
    }
    fn logits(&self, x: Tensor<4>) -> Tensor<1> {
        self.forward(x)
    }
    fn probabilities(&self, images: &[&[f32]], size: u32, device: &Device, batch: usize) -> Vec<f32> {
        SliceClassifier::probabilities(self, images, size, device, batch)
    }
}

/// The compact ResNet detection network.
#[derive(Module, Debug)]
pub struct SliceClassifier {
    stages: Vec<ConvBlock>,
    pool: MaxPool2d,
    head: Linear,
}

impl SliceClassifier {
    /// Build with fresh weights on `device`.
    pub fn new(cfg: &ClassifierConfig, device: &Device) -> Self {
        let mut stages = Vec::new();
        let mut ch = 3;
        for s in 0..cfg.stages {
            let o = cfg.features << s;
            stages.push(ConvBlock::new(ch, o, true, device));
            ch = o;
        }
        Self {
            stages,
            pool: MaxPool2dConfig::new([2, 2]).init(),
            head: LinearConfig::new(ch, 1).init(device),
        }
    }

    /// The layers, for [`crate::folded`]: residual stages and the linear head.
    pub(crate) fn parts(&self) -> (&[ConvBlock], &Linear) {
        (&self.stages, &self.head)
    }

    /// Every batch-norm of the network (tests set their statistics).
    #[cfg(test)]
    pub(crate) fn norms_mut(&mut self) -> Vec<&mut burn::nn::BatchNorm> {
        self.stages.iter_mut().flat_map(ConvBlock::norms_mut).collect()
    }

    /// Logits `[batch]` for normalised input `[batch, 3, H, W]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<1> {
        let mut x = x;
        for stage in &self.stages {
            x = max_pool2(&self.pool, stage.forward(x));
        }
        let [b, c, _, _] = x.dims();
        let pooled: Tensor<2> = x.mean_dim(3).mean_dim(2).reshape([b, c]);
        self.head.forward(pooled).reshape([b])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_logit_per_slice() {
        let device = Device::flex();
        let net = SliceClassifier::new(
            &ClassifierConfig {
                features: 4,
                stages: 3,
                input_size: 32,
                ..Default::default()
            },
            &device,
        );
        assert_eq!(net.forward(Tensor::zeros([3, 3, 32, 32], &device)).dims(), [3]);
    }
}
