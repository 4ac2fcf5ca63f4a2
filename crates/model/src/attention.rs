//! Concurrent spatial and channel squeeze & excitation (scSE; Roy, Navab & Wachinger 2018), as
//! the EfficientNet U-Net's optional decoder attention ([`crate::SegmenterConfig::decoder_attention`]):
//! each decoder level's output is reweighted per channel (from its global average) and per
//! pixel (from a 1x1 projection), `x * (channel gate + pixel gate)` as in
//! segmentation_models_pytorch's `SCSEModule`. Roy et al. (IEEE TMI 2019) report U-Nets' Dice
//! 4-9 % higher with it on three benchmarks, whole-brain MRI among them; on v0.10's recipe it
//! measured +0.003 at two seeds (`models/experiments/decoder-attention-192/`), so it is an
//! option, not the default.
//!
//! [`Scse`] is the trainable block; [`FoldedScse`] its CPU inference for [`crate::folded`].

use crate::folded::{head_maps, sigmoid, Act, Conv};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::prelude::*;
use burn::tensor::activation;
use rayon::prelude::*;

/// The channel gate's bottleneck has `channels / REDUCTION` channels, at least one
/// (segmentation_models_pytorch's default reduction).
const REDUCTION: usize = 16;

/// The scSE block over `channels` planes.
#[derive(Module, Debug)]
pub struct Scse {
    /// Channel gate: `channels -> channels / 16`, ReLU, back to `channels`, sigmoid.
    squeeze: Conv2d,
    excite: Conv2d,
    /// Pixel gate: a 1x1 projection to one plane, sigmoid.
    spatial: Conv2d,
}

impl Scse {
    /// Fresh weights on `device`.
    pub fn new(channels: usize, device: &Device) -> Self {
        let reduced = (channels / REDUCTION).max(1);
        Self {
            squeeze: Conv2dConfig::new([channels, reduced], [1, 1]).init(device),
            excite: Conv2dConfig::new([reduced, channels], [1, 1]).init(device),
            spatial: Conv2dConfig::new([channels, 1], [1, 1]).init(device),
        }
    }

    /// `x * (channel gate + pixel gate)` for `x` of `[batch, channels, H, W]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let [batch, channels, h, w] = x.dims();
        let pooled = x.clone().mean_dim(3).mean_dim(2);
        let channel = activation::sigmoid(self.excite.forward(activation::relu(self.squeeze.forward(pooled))));
        let pixel = activation::sigmoid(self.spatial.forward(x.clone()));
        let gate = channel.expand([batch, channels, h, w]) + pixel.expand([batch, channels, h, w]);
        x * gate
    }
}

/// [`Scse`] for CPU inference: its three 1x1 layers as folded convolutions.
#[derive(Debug, Clone)]
pub(crate) struct FoldedScse {
    squeeze: Conv,
    excite: Conv,
    spatial: Conv,
}

impl FoldedScse {
    pub(crate) fn fold(block: &Scse) -> Self {
        Self {
            squeeze: Conv::fold(&block.squeeze, None),
            excite: Conv::fold(&block.excite, None),
            spatial: Conv::fold(&block.spatial, None),
        }
    }

    /// Reweight `x` in place, image by image.
    pub(crate) fn apply(&self, x: &mut Act) {
        let c = self.spatial.cin;
        assert_eq!(x.channels, c, "scSE over the level it was trained on");
        let plane = x.plane();
        // The pixel gate is a one-output 1x1 layer's sigmoid, as the network's head.
        let pixel_gates = head_maps(&self.spatial, x);
        x.data.par_chunks_mut(c * plane).zip(pixel_gates).for_each(|(image, pixel)| {
            let means: Vec<f32> = image.chunks(plane).map(|p| p.iter().sum::<f32>() / plane as f32).collect();
            let hidden = dense(&self.squeeze, &means).map(|v| v.max(0.0)).collect::<Vec<_>>();
            let channel = dense(&self.excite, &hidden).map(sigmoid);
            for (gate, p) in channel.zip(image.chunks_mut(plane)) {
                p.iter_mut().zip(&pixel).for_each(|(v, s)| *v *= gate + s);
            }
        });
    }
}

/// A 1x1 layer on one value per channel: `bias + weight . x` per output.
fn dense<'a>(layer: &'a Conv, x: &'a [f32]) -> impl Iterator<Item = f32> + 'a {
    layer
        .weight
        .chunks(layer.cin)
        .zip(&layer.bias)
        .map(move |(row, b)| b + row.iter().zip(x).map(|(w, v)| w * v).sum::<f32>())
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Distribution;

    /// The folded block reweights exactly as burn's forward pass, on planes of several images.
    #[test]
    fn folded_matches_burn() {
        let device = Device::flex();
        device.seed(7);
        let block = Scse::new(20, &device);
        let x = Tensor::<4>::random([3, 20, 6, 5], Distribution::Normal(0.0, 1.0), &device);
        let want: Vec<f32> = block.forward(x.clone()).into_data().try_to_vec().expect("f32");
        let mut act = Act {
            data: x.into_data().try_to_vec().expect("f32"),
            batch: 3,
            channels: 20,
            h: 6,
            w: 5,
        };
        FoldedScse::fold(&block).apply(&mut act);
        let worst = act.data.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
        assert!(worst < 1e-5, "folded and burn differ by {worst}");
    }

    /// Both gates train: every layer's weights get a gradient through the block's output.
    #[test]
    fn every_gate_trains() {
        let device = Device::flex().autodiff();
        device.seed(8);
        let block = Scse::new(32, &device);
        // The squeeze's ReLU passes no gradient when its 2 units are negative for every image:
        // with 2 images of unit noise that was a 1-in-16 draw (the seeded generator is shared by
        // tests running at once, so the draw varies), and CI once drew it. 8 images whose means
        // outweigh the biases make it about 1 in 65,000.
        let x = Tensor::<4>::random([8, 32, 4, 4], Distribution::Normal(0.0, 10.0), &device);
        let g = block.forward(x).powi_scalar(2).sum().backward();
        for (name, conv) in [("squeeze", &block.squeeze), ("excite", &block.excite), ("spatial", &block.spatial)] {
            let grad: Vec<f32> = conv
                .weight
                .val()
                .grad(&g)
                .expect("a gradient")
                .into_data()
                .try_to_vec()
                .expect("f32");
            assert!(grad.iter().any(|&v| v != 0.0), "{name} got no gradient");
        }
        assert_eq!(block.squeeze.weight.dims(), [2, 32, 1, 1], "reduction 16");
    }

    /// Hand-computed: with every weight zero and biases set, the channel gate is sigmoid of the
    /// excite bias and the pixel gate sigmoid of the spatial bias, whatever the input.
    #[test]
    fn gates_from_biases_alone() {
        let device = Device::flex();
        let block = Scse::new(2, &device);
        let mut folded = FoldedScse::fold(&block);
        folded.squeeze.weight.fill(0.0);
        folded.excite.weight.fill(0.0);
        folded.spatial.weight.fill(0.0);
        folded.excite.bias = vec![0.0, 2.0_f32.ln()]; // gates 1/2 and 2/3
        folded.spatial.bias = vec![0.0]; // gate 1/2
        let mut act = Act {
            data: vec![2.0, -4.0, 6.0, 3.0],
            batch: 1,
            channels: 2,
            h: 1,
            w: 2,
        };
        folded.apply(&mut act);
        let want = [2.0, -4.0, 6.0 * (2.0 / 3.0 + 0.5), 3.0 * (2.0 / 3.0 + 0.5)];
        for (a, b) in act.data.iter().zip(want) {
            assert!((a - b).abs() < 1e-6, "{:?} vs {want:?}", act.data);
        }
    }
}
