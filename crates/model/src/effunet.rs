//! A U-Net whose encoder is EfficientNet-Lite0 or Lite1 ([`crate::efficientnet`]), so that segmentation
//! can start from ImageNet weights as detection does. The decoder follows the U-Net of
//! [`crate::unet`] (transposed-convolution upsampling, skip concatenation, two conv3x3-BN-ReLU)
//! on the encoder's outputs at strides 2, 4, 8, 16 and 32, and a last level at full resolution
//! that also sees the input image.

use crate::attention::Scse;
use crate::config::{LiteVariant, SegmenterConfig};
use crate::efficientnet::EfficientNetLite;
use crate::folded_effunet::FoldedEfficientUNet;
use crate::unet::{ConvBlock, SegmenterNet};
use burn::nn::conv::{Conv2d, Conv2dConfig, ConvTranspose2d, ConvTranspose2dConfig};
use burn::prelude::*;
use std::path::Path;

/// The EfficientNet-Lite U-Net (input size a multiple of 32).
#[derive(Module, Debug)]
pub struct EfficientUNet {
    encoder: EfficientNetLite,
    upconvs: Vec<ConvTranspose2d>,
    decoders: Vec<ConvBlock>,
    /// scSE after each decoder level, or none ([`SegmenterConfig::decoder_attention`]).
    attention: Vec<Scse>,
    head: Conv2d,
    /// Deep supervision's 1x1 outputs on the decoder levels at strides 2, 4, ... (training only).
    aux: Vec<Conv2d>,
}

impl EfficientUNet {
    /// Default decoder widths, deepest (stride 16) first; the skips come from
    /// [`EfficientNetLite::taps`].
    pub const DECODER: [usize; 5] = [96, 48, 32, 16, 16];

    /// Most channels of a decoder level: far above anything that trains in reasonable time
    /// here, low enough to refuse a typo before allocating.
    pub const MAX_DECODER_WIDTH: usize = 1024;

    /// The decoder widths a config asks for: [`Self::DECODER`] when `widths` is empty, else
    /// `widths` if it names five levels of 1 to [`Self::MAX_DECODER_WIDTH`] channels.
    pub fn decoder_widths(widths: &[usize]) -> Result<Vec<usize>, String> {
        if widths.is_empty() {
            return Ok(Self::DECODER.to_vec());
        }
        if widths.len() != Self::DECODER.len() {
            return Err(format!(
                "decoder widths need {} levels, not {} (deepest first, e.g. {:?})",
                Self::DECODER.len(),
                widths.len(),
                Self::DECODER
            ));
        }
        if let Some(w) = widths.iter().find(|&&w| w == 0 || w > Self::MAX_DECODER_WIDTH) {
            return Err(format!("a decoder width is 1 to {}, not {w}", Self::MAX_DECODER_WIDTH));
        }
        Ok(widths.to_vec())
    }

    /// Lite0's with fresh weights on `device` (three input planes).
    pub fn new(device: &Device) -> Self {
        Self::build(LiteVariant::Lite0, 3, device)
    }

    /// `encoder`'s U-Net with fresh weights for `channels` input planes (more than three: 2.5D
    /// context) and the default decoder. The decoder is the same for both encoders: their taps
    /// have the same widths.
    pub fn build(encoder: LiteVariant, channels: usize, device: &Device) -> Self {
        Self::build_with_decoder(encoder, channels, &Self::DECODER, device)
    }

    /// As [`Self::build`] with the decoder's level widths, deepest first (checked by
    /// [`Self::decoder_widths`]).
    pub fn build_with_decoder(encoder: LiteVariant, channels: usize, decoder: &[usize], device: &Device) -> Self {
        assert_eq!(decoder.len(), Self::DECODER.len(), "one width per decoder level");
        // Channels of the encoder's taps, deepest first, then the input image's.
        let mut skips = EfficientNetLite::TAP_CHANNELS.to_vec();
        skips.reverse();
        let deepest = skips.remove(0);
        skips.push(channels);
        let mut ch = deepest;
        let (mut upconvs, mut decoders) = (Vec::new(), Vec::new());
        for (&out, &skip) in decoder.iter().zip(&skips) {
            upconvs.push(ConvTranspose2dConfig::new([ch, out], [2, 2]).with_stride([2, 2]).init(device));
            decoders.push(ConvBlock::new(out + skip, out, false, device));
            ch = out;
        }
        Self {
            encoder: EfficientNetLite::build(encoder, channels, device),
            upconvs,
            decoders,
            attention: Vec::new(),
            head: Conv2dConfig::new([ch, 1], [1, 1]).init(device),
            aux: Vec::new(),
        }
    }

    /// Most auxiliary outputs: one per decoder level above the full-resolution one.
    pub const MAX_DEEP_SUPERVISION: usize = Self::DECODER.len() - 1;

    /// The same network with auxiliary outputs on `levels` decoder levels (strides 2, 4, ...;
    /// at most [`Self::MAX_DEEP_SUPERVISION`]) for deep supervision ([`SegmenterNet::deep_logits`]).
    pub fn with_deep_supervision(self, levels: usize, device: &Device) -> Self {
        assert!(
            levels <= Self::MAX_DEEP_SUPERVISION,
            "at most {} auxiliary outputs",
            Self::MAX_DEEP_SUPERVISION
        );
        // The level at stride 2^(i+1) is the (i+2)-th from the top; its width is its
        // up-convolution's output channels.
        let n = self.upconvs.len();
        let aux = (0..levels)
            .map(|i| Conv2dConfig::new([self.upconvs[n - 2 - i].weight.dims()[1], 1], [1, 1]).init(device))
            .collect();
        Self { aux, ..self }
    }

    /// The same network with scSE attention after every decoder level.
    pub fn with_decoder_attention(self, device: &Device) -> Self {
        let attention = self.upconvs.iter().map(|u| Scse::new(u.weight.dims()[1], device)).collect();
        Self { attention, ..self }
    }

    /// As [`SegmenterNet::probabilities`], always through burn's forward pass (any backend).
    pub fn probabilities_burn(&self, images: &[&[f32]], size: u32, device: &Device, batch: usize) -> Vec<Vec<f32>> {
        crate::infer::batched_maps(images, size, device, batch, |x| self.forward(x))
    }

    /// The layers, for [`crate::folded_effunet`]: encoder, up-convolutions, decoders, their
    /// attention (empty without), head.
    pub(crate) fn parts(&self) -> (&EfficientNetLite, &[ConvTranspose2d], &[ConvBlock], &[Scse], &Conv2d) {
        (&self.encoder, &self.upconvs, &self.decoders, &self.attention, &self.head)
    }

    /// Every batch-norm of the network (tests set their statistics).
    #[cfg(test)]
    pub(crate) fn norms_mut(&mut self) -> Vec<&mut burn::nn::BatchNorm> {
        let mut v = self.encoder.norms_mut();
        v.extend(self.decoders.iter_mut().flat_map(ConvBlock::norms_mut));
        v
    }

    /// Logits `[batch, 1, H, W]` for normalised input `[batch, C, H, W]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.forward_deep(x).swap_remove(0)
    }

    /// The logits of [`Self::forward`], then those of the auxiliary outputs (coarser and coarser).
    pub fn forward_deep(&self, x: Tensor<4>) -> Vec<Tensor<4>> {
        self.forward_all(x, false).0
    }

    /// [`Self::forward_deep`] and, with `slice`, the encoder's classification head's logits
    /// `[batch]` on the deepest features ([`EfficientNetLite::classify`]), from one pass.
    pub fn forward_all(&self, x: Tensor<4>, slice: bool) -> (Vec<Tensor<4>>, Option<Tensor<1>>) {
        let mut skips = vec![x.clone()];
        skips.extend(self.encoder.taps(x));
        let mut y = skips.pop().expect("the encoder has taps");
        let slice = slice.then(|| self.encoder.classify(y.clone()));
        // Decoder outputs the auxiliary heads read, finest last.
        let mut levels = Vec::with_capacity(self.aux.len());
        let first_kept = self.decoders.len() - 1 - self.aux.len();
        for (i, (up, dec)) in self.upconvs.iter().zip(&self.decoders).enumerate() {
            let skip = skips.pop().expect("one skip per decoder level");
            y = dec.forward(Tensor::cat(vec![up.forward(y), skip], 1));
            if let Some(attention) = self.attention.get(i) {
                y = attention.forward(y);
            }
            if i >= first_kept && i + 1 < self.decoders.len() {
                levels.push(y.clone());
            }
        }
        let mut out = vec![self.head.forward(y)];
        out.extend(
            self.aux
                .iter()
                .zip(levels.into_iter().rev())
                .map(|(head, level)| head.forward(level)),
        );
        (out, slice)
    }

    /// Tumour probability per input from the encoder's classification head (meaningful where
    /// it was trained: [`SegmenterConfig::slice_head`]); the encoder alone runs.
    pub fn slice_probabilities(&self, images: &[&[f32]], size: u32, device: &Device, batch: usize) -> Vec<f32> {
        crate::infer::batched_logits(images, size, device, batch, |x| self.encoder.forward(x))
    }
}

impl SegmenterNet for EfficientUNet {
    fn build(cfg: &SegmenterConfig, device: &Device) -> Self {
        // Callers check the widths first (the CLI, the model loader); a bad card fails here.
        let decoder = Self::decoder_widths(&cfg.decoder_widths).expect("valid decoder widths");
        let net = Self::build_with_decoder(cfg.arch.lite_encoder().unwrap_or_default(), cfg.input_channels(), &decoder, device)
            .with_deep_supervision(cfg.deep_supervision, device);
        if cfg.decoder_attention {
            net.with_decoder_attention(device)
        } else {
            net
        }
    }
    fn load_pretrained(mut self, path: &Path) -> Result<Self, String> {
        self.encoder = self.encoder.load_pytorch(path)?;
        Ok(self)
    }
    /// The whole encoder (its classification head included): what [`Self::load_pretrained`] fills.
    fn pretrained_part(&self) -> Option<burn::module::ParamGroup> {
        Some(burn::module::ParamGroup::ids_from_module(self.encoder.clone()))
    }
    fn logits(&self, x: Tensor<4>) -> Tensor<4> {
        self.forward(x)
    }
    fn deep_logits(&self, x: Tensor<4>) -> Vec<Tensor<4>> {
        self.forward_deep(x)
    }
    fn deep_and_slice_logits(&self, x: Tensor<4>) -> (Vec<Tensor<4>>, Option<Tensor<1>>) {
        self.forward_all(x, true)
    }
    fn slice_probabilities(&self, images: &[&[f32]], size: u32, device: &Device, batch: usize) -> Option<Vec<f32>> {
        Some(EfficientUNet::slice_probabilities(self, images, size, device, batch))
    }
    fn probabilities(&self, images: &[&[f32]], size: u32, device: &Device, batch: usize) -> Vec<Vec<f32>> {
        if !crate::is_cpu(device) {
            return self.probabilities_burn(images, size, device, batch);
        }
        FoldedEfficientUNet::new(self).probabilities(images, size, batch)
    }
    fn with_output_prior(mut self, p: f32) -> Self {
        self.head = crate::unet::prior_head(self.head, p);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every parameter id of `m`, in visiting order.
    fn param_ids<M: Module>(m: &M) -> Vec<burn::module::ParamId> {
        struct Ids(Vec<burn::module::ParamId>);
        impl burn::module::ModuleVisitor for Ids {
            fn visit_float<const D: usize>(&mut self, p: &burn::module::Param<Tensor<D>>) {
                self.0.push(p.id);
            }
        }
        let mut ids = Ids(Vec::new());
        m.visit(&mut ids);
        ids.0
    }

    /// The part a lower encoder learning rate slows is the encoder, every tensor of it, and
    /// nothing of the decoder or the output layer.
    #[test]
    fn pretrained_part_is_the_encoder_and_only_it() {
        let net = EfficientUNet::new(&Device::flex()).with_deep_supervision(2, &Device::flex());
        let group = net.pretrained_part().expect("an EfficientNet U-Net has an encoder");
        let encoder = param_ids(&net.encoder);
        let all = param_ids(&net);
        let slowed = all.iter().filter(|id| group.matches(id, None)).count();
        assert!(encoder.iter().all(|id| group.matches(id, None)));
        assert_eq!(slowed, encoder.len());
        assert!(slowed > 100 && slowed < all.len(), "{slowed} of {}", all.len());
        let rest = [
            param_ids(&net.upconvs),
            param_ids(&net.decoders),
            param_ids(&net.head),
            param_ids(&net.aux),
        ];
        assert!(rest.iter().flatten().all(|id| !group.matches(id, None)));
    }

    #[test]
    fn one_logit_per_pixel_at_the_input_size() {
        let device = Device::flex();
        let net = EfficientUNet::new(&device);
        assert_eq!(net.forward(Tensor::zeros([2, 3, 64, 64], &device)).dims(), [2, 1, 64, 64]);
        let p = net.probabilities(&[&vec![0.1; 3 * 32 * 32]], 32, &device, 1);
        assert_eq!(p[0].len(), 32 * 32);
        assert!(p[0].iter().all(|v| (0.0..=1.0).contains(v)));
    }

    /// The CPU's folded inference and burn's forward pass give the same probabilities.
    fn assert_folded_matches_burn(net: &EfficientUNet, image: &[f32], size: u32, device: &Device) {
        let folded = net.probabilities(&[image], size, device, 1);
        let burn = net.probabilities_burn(&[image], size, device, 1);
        let worst = folded[0].iter().zip(&burn[0]).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
        assert!(worst < 1e-4, "folded and burn inference differ by {worst}");
    }

    /// Deep supervision adds coarser outputs and leaves the network's own output, and the folded
    /// inference that ignores the auxiliary heads, as they are.
    #[test]
    fn deep_supervision_adds_coarser_outputs_that_inference_ignores() {
        let device = Device::flex();
        device.seed(5);
        let cfg = SegmenterConfig {
            input_size: 64,
            arch: crate::SegmenterArch::EfficientnetLite0Unet,
            deep_supervision: 2,
            ..Default::default()
        };
        let net = <EfficientUNet as SegmenterNet>::build(&cfg, &device);
        let x = Tensor::<4>::random([2, 3, 64, 64], burn::tensor::Distribution::Normal(0.0, 1.0), &device);
        let out = net.deep_logits(x.clone());
        let dims: Vec<_> = out.iter().map(|t| t.dims()).collect();
        assert_eq!(dims, [[2, 1, 64, 64], [2, 1, 32, 32], [2, 1, 16, 16]]);
        let plain = net.forward(x.clone()).into_data().try_to_vec::<f32>().unwrap();
        assert_eq!(out[0].clone().into_data().try_to_vec::<f32>().unwrap(), plain);
        // The auxiliary heads read the decoder levels: different inputs, different outputs.
        assert_ne!(out[1].clone().into_data(), net.forward_deep(x.clone() * 2.0)[1].clone().into_data());
        let image = x.narrow(0, 0, 1).into_data().try_to_vec::<f32>().unwrap();
        assert_folded_matches_burn(&net, &image, 64, &device);
        // Without deep supervision the network has its one output.
        assert_eq!(
            EfficientUNet::new(&device)
                .deep_logits(Tensor::zeros([1, 3, 32, 32], &device))
                .len(),
            1
        );
        // The auxiliary heads train: each gets a gradient through its output.
        let device = Device::flex().autodiff();
        let net = <EfficientUNet as SegmenterNet>::build(&cfg, &device);
        let out = net.deep_logits(Tensor::random(
            [1, 3, 64, 64],
            burn::tensor::Distribution::Normal(0.0, 1.0),
            &device,
        ));
        let g = out
            .into_iter()
            .map(|t| t.powi_scalar(2).sum())
            .reduce(|a, b| a + b)
            .unwrap()
            .backward();
        for head in &net.aux {
            let grad = head
                .weight
                .val()
                .grad(&g)
                .expect("a gradient")
                .into_data()
                .try_to_vec::<f32>()
                .unwrap();
            assert!(grad.iter().any(|&v| v != 0.0));
        }
    }

    /// Other decoder widths build a network of those widths whose folded inference matches
    /// burn's; widths that cannot make a decoder are refused with a message.
    #[test]
    fn decoder_widths_shape_the_decoder() {
        assert_eq!(EfficientUNet::decoder_widths(&[]).unwrap(), EfficientUNet::DECODER);
        assert!(EfficientUNet::decoder_widths(&[8, 8]).unwrap_err().contains("need 5 levels, not 2"));
        assert!(EfficientUNet::decoder_widths(&[8, 8, 0, 8, 8]).unwrap_err().contains("not 0"));
        let device = Device::flex();
        device.seed(4);
        let cfg = SegmenterConfig {
            input_size: 64,
            arch: crate::SegmenterArch::EfficientnetLite0Unet,
            deep_supervision: 1,
            decoder_widths: vec![40, 24, 20, 12, 8],
            ..Default::default()
        };
        let net = <EfficientUNet as SegmenterNet>::build(&cfg, &device);
        let widths: Vec<_> = net.upconvs.iter().map(|u| u.weight.dims()[1]).collect();
        assert_eq!(widths, cfg.decoder_widths);
        assert_eq!(net.head.weight.dims(), [1, 8, 1, 1]);
        assert_eq!(net.aux[0].weight.dims(), [1, 12, 1, 1]);
        let x = Tensor::<4>::random([1, 3, 64, 64], burn::tensor::Distribution::Normal(0.0, 1.0), &device);
        let image = x.into_data().try_to_vec::<f32>().unwrap();
        assert_folded_matches_burn(&net, &image, 64, &device);
    }

    /// scSE attention sits on every decoder level, changes the output, and the folded
    /// inference applies it as burn's forward pass does.
    #[test]
    fn decoder_attention_reweights_every_level() {
        let cfg = SegmenterConfig {
            input_size: 64,
            arch: crate::SegmenterArch::EfficientnetLite0Unet,
            deep_supervision: 1,
            decoder_attention: true,
            ..Default::default()
        };
        let device = Device::flex();
        device.seed(6);
        let net = <EfficientUNet as SegmenterNet>::build(&cfg, &device);
        assert_eq!(net.attention.len(), EfficientUNet::DECODER.len());
        let x = Tensor::<4>::random([1, 3, 64, 64], burn::tensor::Distribution::Normal(0.0, 1.0), &device);
        let plain = EfficientUNet {
            attention: Vec::new(),
            ..net.clone()
        };
        assert_ne!(net.forward(x.clone()).into_data(), plain.forward(x.clone()).into_data());
        assert_folded_matches_burn(&net, &x.into_data().try_to_vec::<f32>().unwrap(), 64, &device);
    }

    #[test]
    fn output_prior_starts_every_pixel_near_it() {
        crate::unet::tests::assert_starts_near_prior(EfficientUNet::new(&Device::flex()));
    }

    /// The CPU training ops (depthwise, 1x1 and 3x3 convolutions, batch norm) sum in a fixed
    /// order, so a training step is bit-for-bit repeatable: the premise of shipping weights
    /// that the committed command rebuilds exactly.
    #[test]
    fn training_gradients_repeat_bit_for_bit() {
        let device = Device::flex().autodiff();
        device.seed(3);
        let net = EfficientUNet::new(&device);
        let x = Tensor::<4>::random([4, 3, 64, 64], burn::tensor::Distribution::Normal(0.0, 1.0), &device);
        let run = || {
            let g = net.forward(x.clone()).powi_scalar(2).sum().backward();
            let grab = |t: Tensor<4>| t.grad(&g).expect("a gradient").into_data().try_to_vec::<f32>().expect("f32");
            let mut weights = vec![net.encoder.stem_weight(), net.head.weight.val()];
            weights.extend(net.upconvs.iter().map(|u| u.weight.val()));
            weights.extend(net.encoder.block_weights());
            weights.into_iter().map(grab).collect::<Vec<_>>()
        };
        let (a, b) = (run(), run());
        assert_eq!(a.len(), 2 + 5 + 16 * 2 + 15);
        for (i, (x, y)) in a.iter().zip(&b).enumerate() {
            assert!(x.iter().any(|&v| v != 0.0), "weight {i} got no gradient");
            assert!(x.iter().zip(y).all(|(p, q)| p.to_bits() == q.to_bits()), "weight {i} differs");
        }
    }
}
