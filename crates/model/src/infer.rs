//! Batched inference on prepared (normalised, model-size) inputs, shared by validation,
//! evaluation and prediction. On the CPU backend it runs the folded networks of
//! [`crate::folded`] and [`crate::folded_effunet`] (same results to float rounding, faster);
//! elsewhere burn's forward pass.

use crate::backend::is_cpu;
use crate::folded::{FoldedClassifier, FoldedSegmenter};
use crate::{SegmentationNet, SliceClassifier};
use burn::prelude::*;
use burn::tensor::activation::sigmoid;

fn stack(images: &[&[f32]], size: u32, device: &Device) -> Tensor<4> {
    let s = size as usize;
    // Three planes, or more with 2.5D context.
    let planes = images.first().map_or(3, |x| x.len() / (s * s).max(1));
    let data: Vec<f32> = images.iter().flat_map(|x| x.iter().copied()).collect();
    Tensor::from_data(TensorData::new(data, [images.len(), planes, s, s]), device)
}

fn to_vec<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    // Inference tensors are f32; a failure here is a backend defect, not a user error.
    t.into_data().try_to_vec::<f32>().expect("f32 tensor data")
}

/// Sigmoid of `forward`'s logits for `batch` inputs at a time, each batch's values (in input
/// order, flattened) handed to `each`.
fn for_each_batch<const D: usize>(
    images: &[&[f32]],
    size: u32,
    device: &Device,
    batch: usize,
    forward: impl Fn(Tensor<4>) -> Tensor<D>,
    mut each: impl FnMut(Vec<f32>),
) {
    for chunk in images.chunks(batch.max(1)) {
        each(to_vec(sigmoid(forward(stack(chunk, size, device)))));
    }
}

/// Sigmoid of one logit per input through `forward`, `batch` inputs at a time.
pub(crate) fn batched_logits(
    images: &[&[f32]],
    size: u32,
    device: &Device,
    batch: usize,
    forward: impl Fn(Tensor<4>) -> Tensor<1>,
) -> Vec<f32> {
    let mut out = Vec::with_capacity(images.len());
    for_each_batch(images, size, device, batch, forward, |p| out.extend(p));
    out
}

/// Sigmoid of one logit map per input through `forward` (`[batch, 1, size, size]`), `batch`
/// inputs at a time, as `size * size` probabilities each.
pub(crate) fn batched_maps(
    images: &[&[f32]],
    size: u32,
    device: &Device,
    batch: usize,
    forward: impl Fn(Tensor<4>) -> Tensor<4>,
) -> Vec<Vec<f32>> {
    let n = (size * size) as usize;
    let mut out = Vec::with_capacity(images.len());
    for_each_batch(images, size, device, batch, forward, |p| {
        out.extend(p.chunks(n).map(<[f32]>::to_vec))
    });
    out
}

impl SegmentationNet {
    /// Tumour probability maps (`size x size` each) for `3 x size x size` inputs, in batches.
    pub fn probabilities(&self, images: &[&[f32]], size: u32, device: &Device, batch: usize) -> Vec<Vec<f32>> {
        if !is_cpu(device) {
            return self.probabilities_burn(images, size, device, batch);
        }
        FoldedSegmenter::new(self).probabilities(images, size, batch)
    }

    /// As [`Self::probabilities`], always through burn's forward pass (any backend).
    pub fn probabilities_burn(&self, images: &[&[f32]], size: u32, device: &Device, batch: usize) -> Vec<Vec<f32>> {
        batched_maps(images, size, device, batch, |x| self.forward(x))
    }
}

impl SliceClassifier {
    /// Tumour probability per input, in batches.
    pub fn probabilities(&self, images: &[&[f32]], size: u32, device: &Device, batch: usize) -> Vec<f32> {
        if !is_cpu(device) {
            return self.probabilities_burn(images, size, device, batch);
        }
        FoldedClassifier::new(self).probabilities(images, size, batch)
    }

    /// As [`Self::probabilities`], always through burn's forward pass (any backend).
    pub fn probabilities_burn(&self, images: &[&[f32]], size: u32, device: &Device, batch: usize) -> Vec<f32> {
        batched_logits(images, size, device, batch, |x| self.forward(x))
    }
}
