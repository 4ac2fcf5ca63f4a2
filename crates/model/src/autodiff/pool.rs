//! 2x2, stride-2 max pooling as one burn autodiff operation on the CPU backend.
//!
//! Why: flex runs it as a 3D pooling that records an i64 index per output and scatters the
//! gradient through it; here the forward pass keeps which of the four inputs won (one byte per
//! output) and the backward pass writes each input gradient once.

use super::{contiguous, flex, graph, plain, values, FlexAd};
use burn::backend::Flex;
use burn::nn::pool::MaxPool2d;
use burn::nn::PaddingConfig2d;
use burn::prelude::*;
use burn_autodiff::checkpoint::base::Checkpointer;
use burn_autodiff::checkpoint::strategy::NoCheckpointing;
use burn_autodiff::grads::Gradients;
use burn_autodiff::ops::{Backward, Ops, OpsKind};
use rayon::prelude::*;

/// `pool.forward(x)` for 2x2 stride-2 unpadded pooling of even-sized planes, on the flex backend
/// (with or without autodiff); burn's pooling otherwise.
pub fn max_pool2(pool: &MaxPool2d, x: Tensor<4>) -> Tensor<4> {
    let [_, _, h, w] = x.dims();
    let fits = pool.kernel_size == [2, 2]
        && pool.stride == [2, 2]
        && pool.dilation == [1, 1]
        && matches!(pool.padding, PaddingConfig2d::Valid)
        && h % 2 == 0
        && w % 2 == 0;
    if fits {
        if let Some(y) = fast(&x) {
            return y;
        }
    }
    pool.forward(x)
}

fn fast(x: &Tensor<4>) -> Option<Tensor<4>> {
    let dims = x.dims();
    if let Some(xp) = plain(x) {
        let (y, _) = forward(values(&contiguous(xp)), dims);
        return Some(Tensor::from_primitive::<Flex>(flex(y, &out_dims(dims))));
    }
    let xg = graph(x)?;
    let (y, winners) = forward(values(&contiguous(xg.primitive().clone())), dims);
    let y = flex(y, &out_dims(dims));
    let out = match MaxPool.prepare::<NoCheckpointing>([xg.node()]).compute_bound().stateful() {
        OpsKind::Tracked(prep) => prep.finish(Winners { dims, winners }, y),
        OpsKind::UnTracked(prep) => prep.finish(y),
    };
    Some(Tensor::from_primitive::<FlexAd>(out))
}

fn out_dims([b, c, h, w]: [usize; 4]) -> [usize; 4] {
    [b, c, h / 2, w / 2]
}

/// The pooled values and, per output, which input of its window won (0-3, row-major; the
/// first of equal maxima, as burn).
fn forward(x: &[f32], dims: [usize; 4]) -> (Vec<f32>, Vec<u8>) {
    let (h, w) = (dims[2], dims[3]);
    let (oh, ow) = (h / 2, w / 2);
    let mut y = vec![0.0; x.len() / 4];
    let mut winners = vec![0u8; y.len()];
    y.par_chunks_mut(oh * ow)
        .zip(winners.par_chunks_mut(oh * ow))
        .zip(x.par_chunks(h * w))
        .for_each(|((yp, wp), xp)| {
            for r in 0..oh {
                let (r0, r1) = (&xp[2 * r * w..][..w], &xp[(2 * r + 1) * w..][..w]);
                for c in 0..ow {
                    let cand = [r0[2 * c], r0[2 * c + 1], r1[2 * c], r1[2 * c + 1]];
                    let mut best = 0;
                    for k in 1..4 {
                        if cand[k] > cand[best] {
                            best = k;
                        }
                    }
                    yp[r * ow + c] = cand[best];
                    wp[r * ow + c] = best as u8;
                }
            }
        });
    (y, winners)
}

/// The winners of the forward pass, all the backward pass needs.
#[derive(Debug, Clone)]
struct Winners {
    dims: [usize; 4],
    winners: Vec<u8>,
}

#[derive(Debug)]
struct MaxPool;

impl Backward<Flex, 1> for MaxPool {
    type State = Winners;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _checkpointer: &mut Checkpointer) {
        let [node_x] = ops.parents;
        let dy = contiguous(grads.consume::<Flex>(&ops.node));
        let Some(node) = node_x else { return };
        let Winners { dims, winners } = ops.state;
        let (h, w) = (dims[2], dims[3]);
        let (oh, ow) = (h / 2, w / 2);
        let dyv = values(&dy);
        let mut dx = vec![0.0; dims.iter().product()];
        dx.par_chunks_mut(h * w)
            .zip(dyv.par_chunks(oh * ow))
            .zip(winners.par_chunks(oh * ow))
            .for_each(|((dp, gp), wp)| {
                for r in 0..oh {
                    for c in 0..ow {
                        let k = wp[r * ow + c] as usize;
                        dp[(2 * r + k / 2) * w + 2 * c + k % 2] = gp[r * ow + c];
                    }
                }
            });
        grads.register::<Flex>(node.id, flex(dx, &dims));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::pool::MaxPool2dConfig;
    use burn::tensor::Distribution;

    #[test]
    fn matches_burn_max_pool_and_its_gradient() {
        let device = Device::flex().autodiff();
        device.seed(31);
        let pool = MaxPool2dConfig::new([2, 2]).init();
        let x = Tensor::<4>::random([2, 3, 6, 8], Distribution::Normal(0.0, 1.0), &device).require_grad();
        let g = Tensor::<4>::random([2, 3, 3, 4], Distribution::Normal(0.0, 1.0), &device);
        let mine = fast(&x).expect("flex autodiff fast path");
        let theirs = pool.forward(x.clone());
        let diff = |a: Tensor<4>, b: Tensor<4>| (a - b).abs().max().into_scalar::<f32>();
        assert_eq!(diff(mine.clone(), theirs.clone()), 0.0);
        let (ga, gb) = ((mine * g.clone()).sum().backward(), (theirs * g).sum().backward());
        assert!(diff(x.grad(&ga).expect("dx"), x.grad(&gb).expect("dx")) < 1e-6);
        // Without autodiff, and odd planes (burn's pooling).
        let plain = Tensor::<4>::random([1, 2, 4, 4], Distribution::Normal(0.0, 1.0), &Device::flex());
        assert_eq!(diff(fast(&plain).expect("flex fast path"), pool.forward(plain)), 0.0);
        let odd = Tensor::<4>::random([1, 2, 5, 4], Distribution::Normal(0.0, 1.0), &Device::flex());
        assert_eq!(max_pool2(&pool, odd).dims(), [1, 2, 2, 2]);
    }
}
