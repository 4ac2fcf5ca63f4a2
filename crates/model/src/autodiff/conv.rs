//! Bias-free 3x3 and 1x1 "same" convolutions as one burn autodiff operation on the CPU backend.
//!
//! Why: training on burn flex spent most of a step in its convolution and the gradients it
//! derives from it (`bench/PROFILE.md`): the input gradient runs as a transposed 3D convolution
//! and the weight gradient as a convolution with a 128x128 "kernel". Here the forward pass and
//! both gradients run on the im2col/Winograd + GEMM kernels of [`crate::kernels`]:
//! - forward: `y = W * im2col(x)`;
//! - input gradient: the same convolution of `dy` with the kernels rotated by 180 degrees and
//!   the channel axes swapped;
//! - weight gradient: `dW = sum over images and pixels of dy * im2col(x)^T`.
//!
//! Any other backend (CUDA), dtype or layer shape goes through burn's own `conv2d`.

use super::{contiguous, flex, graph, plain, values, AutodiffTensor, FlexAd};
use crate::kernels::{conv_bands_new, conv_weight_grad, flip_transpose, ConvShape};
use crate::winograd;
use burn::backend::Flex;
use burn::nn::conv::Conv2d;
use burn::nn::PaddingConfig2d;
use burn::prelude::*;
use burn_autodiff::checkpoint::base::Checkpointer;
use burn_autodiff::checkpoint::strategy::NoCheckpointing;
use burn_autodiff::grads::Gradients;
use burn_autodiff::ops::{Backward, Ops, OpsKind};
use burn_autodiff::NodeId;
use burn_flex::FlexTensor;

/// Input channels from which the 3x3 convolutions of training run as Winograd (see
/// `crate::folded` for the inference threshold; measured the same way).
const WINOGRAD_MIN_CIN: usize = 64;

/// `conv.forward(x)` for bias-free, stride-1 "same" layers with 3x3 (padding 1) or 1x1 kernels,
/// on the fast CPU kernels when `x` lives on the flex backend (with or without autodiff);
/// burn's `conv2d` otherwise.
pub fn conv_same(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    let weight = conv.weight.val();
    // burn's `Same` at stride 1 is the symmetric padding of these kernels.
    let padded = match weight.dims()[2..] {
        [3, 3] => matches!(conv.padding, PaddingConfig2d::Explicit(1, 1, 1, 1) | PaddingConfig2d::Same),
        [1, 1] => matches!(
            conv.padding,
            PaddingConfig2d::Valid | PaddingConfig2d::Explicit(0, 0, 0, 0) | PaddingConfig2d::Same
        ),
        _ => false,
    };
    let fits = padded && conv.stride == [1, 1] && conv.dilation == [1, 1] && conv.groups == 1 && conv.bias.is_none();
    if fits {
        if let Some(y) = fast(x.clone(), weight) {
            return y;
        }
    }
    conv.forward(x)
}

/// The convolution on flex, or `None` when the tensors live elsewhere or are not f32.
fn fast(x: Tensor<4>, weight: Tensor<4>) -> Option<Tensor<4>> {
    if let (Some(xp), Some(wp)) = (plain(&x), plain(&weight)) {
        return Some(Tensor::from_primitive::<Flex>(forward(&xp, &wp)));
    }
    // Training: the weights are tracked; the input may be a constant (the image batch).
    let (x, w) = (graph(&x)?, graph(&weight)?);
    Some(Tensor::from_primitive::<FlexAd>(tracked(x, w)))
}

/// Records the convolution in the autodiff graph and runs its forward pass.
fn tracked(x: AutodiffTensor, w: AutodiffTensor) -> AutodiffTensor {
    let output = forward(x.primitive(), w.primitive());
    match ConvSame.prepare::<NoCheckpointing>([x.node(), w.node()]).compute_bound().stateful() {
        OpsKind::Tracked(mut prep) => {
            let state = (prep.checkpoint(&x), prep.checkpoint(&w));
            prep.finish(state, output)
        }
        OpsKind::UnTracked(prep) => prep.finish(output),
    }
}

/// The backward step: gradients for the input and the weights.
#[derive(Debug)]
struct ConvSame;

impl Backward<Flex, 2> for ConvSame {
    type State = (NodeId, NodeId);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, checkpointer: &mut Checkpointer) {
        let [node_x, node_w] = ops.parents;
        let dy = contiguous(grads.consume::<Flex>(&ops.node));
        let (x_state, w_state) = ops.state;
        let x = contiguous(checkpointer.retrieve_node_output::<FlexTensor>(x_state));
        let w = contiguous(checkpointer.retrieve_node_output::<FlexTensor>(w_state));
        let s = shape(&x, &w);
        let (xs, ws, dys) = (values(&x), values(&w), values(&dy));
        if let Some(node) = node_x {
            let t = ConvShape {
                cin: s.cout,
                cout: s.cin,
                ..s
            };
            let flipped = flip_transpose(ws, s.cout, s.cin, s.k);
            let wino = winograd_weights(t, &flipped);
            let dx = conv_bands_new(t, dys, &flipped, wino.as_deref());
            grads.register::<Flex>(node.id, flex(dx, &[s.batch, s.cin, s.h, s.w]));
        }
        if let Some(node) = node_w {
            let dw = conv_weight_grad(s, xs, dys);
            grads.register::<Flex>(node.id, flex(dw, &[s.cout, s.cin, s.k, s.k]));
        }
    }
}

fn forward(x: &FlexTensor, w: &FlexTensor) -> FlexTensor {
    let (x, w) = (contiguous(x.clone()), contiguous(w.clone()));
    let s = shape(&x, &w);
    let ws = values(&w);
    let wino = winograd_weights(s, ws);
    let y = conv_bands_new(s, values(&x), ws, wino.as_deref());
    flex(y, &[s.batch, s.cout, s.h, s.w])
}

/// Winograd-transformed kernels for 3x3 layers wide enough to gain from them.
fn winograd_weights(s: ConvShape, weight: &[f32]) -> Option<Vec<f32>> {
    (s.k == 3 && s.cin >= WINOGRAD_MIN_CIN).then(|| winograd::transform_weights(weight, s.cout, s.cin))
}

fn shape(x: &FlexTensor, w: &FlexTensor) -> ConvShape {
    let (xd, wd) = (x.layout().shape(), w.layout().shape());
    assert!(
        xd.num_dims() == 4 && wd.num_dims() == 4 && xd[1] == wd[1],
        "conv: {xd:?} with kernels {wd:?}"
    );
    ConvShape {
        batch: xd[0],
        cin: xd[1],
        cout: wd[0],
        h: xd[2],
        w: xd[3],
        k: wd[2],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::conv::Conv2dConfig;
    use burn::tensor::Distribution;

    fn conv(i: usize, o: usize, device: &Device) -> Conv2d {
        conv_k(i, o, 3, device)
    }

    fn conv_k(i: usize, o: usize, k: usize, device: &Device) -> Conv2d {
        let p = k / 2;
        Conv2dConfig::new([i, o], [k, k])
            .with_padding(PaddingConfig2d::Explicit(p, p, p, p))
            .with_bias(false)
            .init(device)
    }

    fn max_diff(a: Tensor<4>, b: Tensor<4>) -> f32 {
        (a - b).abs().max().into_scalar::<f32>()
    }

    #[test]
    fn matches_burn_conv2d_and_its_gradients() {
        // Both paths on the same layer and input: outputs, input gradients, weight gradients.
        // 3x3: channels 3 -> 8 (first-layer shape), 64 -> 8 (Winograd forward) and 8 -> 64
        // (Winograd input gradient); 1x1: a residual shortcut.
        let device = Device::flex().autodiff();
        device.seed(11);
        for (cin, cout, h, w, k) in [(3, 8, 12, 10, 3), (64, 8, 8, 6, 3), (8, 64, 6, 4, 3), (6, 5, 7, 9, 1)] {
            let layer = conv_k(cin, cout, k, &device);
            let x = Tensor::<4>::random([2, cin, h, w], Distribution::Normal(0.0, 1.0), &device).require_grad();
            let g = Tensor::<4>::random([2, cout, h, w], Distribution::Normal(0.0, 1.0), &device);
            // `fast` itself, so that a silent fallback to burn cannot pass the test.
            let mine = fast(x.clone(), layer.weight.val()).expect("flex autodiff fast path");
            let theirs = layer.forward(x.clone());
            assert!(max_diff(mine.clone(), theirs.clone()) < 1e-4, "forward {cin}->{cout}");
            let ga = (mine * g.clone()).sum().backward();
            let gb = (theirs * g).sum().backward();
            let (dxa, dxb) = (x.grad(&ga).expect("x grad"), x.grad(&gb).expect("x grad"));
            let (dwa, dwb) = (
                layer.weight.val().grad(&ga).expect("w grad"),
                layer.weight.val().grad(&gb).expect("w grad"),
            );
            let (ex, ew) = (max_diff(dxa, dxb), max_diff(dwa, dwb));
            assert!(ex < 1e-3 && ew < 1e-3, "{cin}->{cout}: dx {ex}, dw {ew}");
        }
    }

    #[test]
    fn inference_tensors_and_constant_inputs_work() {
        let device = Device::flex();
        device.seed(12);
        let layer = conv(4, 5, &device);
        let x = Tensor::<4>::random([1, 4, 6, 6], Distribution::Normal(0.0, 1.0), &device);
        let y = fast(x.clone(), layer.weight.val()).expect("flex fast path");
        assert!(max_diff(y, layer.forward(x)) < 1e-4);
        // Untracked input on the autodiff device: only the weights get a gradient.
        let device = device.autodiff();
        let layer = conv(4, 5, &device);
        let x = Tensor::<4>::random([1, 4, 6, 6], Distribution::Normal(0.0, 1.0), &device);
        let grads = fast(x.clone(), layer.weight.val()).expect("constant input").sum().backward();
        assert!(layer.weight.val().grad(&grads).is_some());
        assert!(x.grad(&grads).is_none());
    }
}
