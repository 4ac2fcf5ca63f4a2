//! The layers that dominate a training step on the CPU, as custom burn autodiff operations
//! running on this crate's own kernels instead of burn flex's generic ones:
//! - [`conv`]: bias-free 3x3 and 1x1 "same" convolutions (forward, input and weight gradients);
//! - [`depthwise`]: bias-free depthwise convolutions of any stride (EfficientNet-Lite0);
//! - [`norm`]: batch normalisation in training mode, optionally fused with the ReLU or ReLU6
//!   after it (and in inference, one pass with the running statistics);
//! - [`pool`]: 2x2 max pooling.
//!
//! Tensors on any other backend (CUDA) or dtype go through burn's own layers, so the model code
//! calls these everywhere. Measured effect: `bench/PROFILE.md`.

pub mod conv;
pub mod depthwise;
pub mod norm;
pub mod pool;

use burn::backend::{Autodiff, Flex};
use burn::prelude::*;
use burn::tensor::{DType, TensorData};
use burn_autodiff::checkpoint::strategy::NoCheckpointing;
use burn_flex::FlexTensor;

/// The autodiff backend of the CPU training device (`Device::flex().autodiff()`).
type FlexAd = Autodiff<Flex, NoCheckpointing>;

/// A tensor of the autodiff graph on flex (burn_autodiff's `AutodiffTensor<Flex>`).
type AutodiffTensor = <FlexAd as burn::backend::BackendTypes>::FloatTensorPrimitive;

/// The flex f32 tensor behind `t` when it lives on flex without autodiff.
fn plain<const D: usize>(t: &Tensor<D>) -> Option<FlexTensor> {
    (t.dtype() == DType::F32)
        .then(|| t.clone().try_into_primitive::<Flex>().ok())
        .flatten()
}

/// The autodiff-graph tensor behind `t` on the flex training device; a plain flex tensor
/// enters the graph as a constant.
fn graph<const D: usize>(t: &Tensor<D>) -> Option<AutodiffTensor> {
    if t.dtype() != DType::F32 {
        return None;
    }
    match t.clone().try_into_primitive::<FlexAd>() {
        Ok(t) => Some(t),
        Err(_) => plain(t).map(AutodiffTensor::new),
    }
}

/// `t` with a contiguous layout (a copy only when it was a strided view).
fn contiguous(t: FlexTensor) -> FlexTensor {
    match t.as_slice::<f32>() {
        Some(_) => t,
        None => t.to_contiguous(),
    }
}

/// The values of a contiguous f32 tensor.
fn values(t: &FlexTensor) -> &[f32] {
    // Callers pass tensors made contiguous by `contiguous`, f32 as checked by `plain`/`graph`.
    t.as_slice::<f32>().expect("contiguous f32 tensor")
}

/// The values of a contiguous f32 tensor, to write over: its own buffer when no other tensor
/// shares it, else a copy of its own values only (not of a larger buffer it is a view of).
fn values_mut(t: &mut FlexTensor) -> &mut [f32] {
    if !t.is_unique() {
        *t = flex(values(t).to_vec(), &t.layout().shape().to_vec());
    }
    let (start, end) = t.layout().contiguous_offsets().expect("contiguous f32 tensor");
    &mut t.storage_mut::<f32>()[start..end]
}

/// A flex tensor owning `values`.
fn flex(values: Vec<f32>, shape: &[usize]) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, shape.to_vec()))
}
