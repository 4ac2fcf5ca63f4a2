//! CPU convolution kernels shared by folded inference ([`crate::folded`]) and the training
//! convolution ([`crate::autodiff`]): NCHW f32, "same" padding, stride 1.
//!
//! A convolution is cut into bands of output rows of one image (sized for the cache) and the
//! bands are spread over the cores with rayon; each band is an im2col followed by one
//! single-threaded `gemm` call (or Winograd F(2x2, 3x3) for wide layers).

use crate::winograd;
use rayon::prelude::*;

/// Raw output pointer shared by tasks that write disjoint regions.
#[derive(Clone, Copy)]
pub(crate) struct Out(pub *mut f32);
// SAFETY: every task writes a disjoint set of elements (its own image and rows).
unsafe impl Send for Out {}
unsafe impl Sync for Out {}

impl Out {
    // A method (not field access) so closures capture the Send + Sync wrapper.
    pub(crate) fn at(self, offset: usize) -> *mut f32 {
        // SAFETY: callers stay within the buffer the pointer came from.
        unsafe { self.0.add(offset) }
    }
}

/// `dst[m, n] (+)= lhs[m, k] * rhs[k, n]`; row strides given, column stride 1.
///
/// # Safety
/// The pointers must cover the given shapes and strides, and `dst` must not alias the inputs.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn matmul(
    m: usize,
    n: usize,
    k: usize,
    dst: *mut f32,
    dst_rs: usize,
    accumulate: bool,
    lhs: &[f32],
    rhs: *const f32,
    rhs_rs: usize,
) {
    gemm::gemm(
        m,
        n,
        k,
        dst,
        1,
        dst_rs as isize,
        accumulate,
        lhs.as_ptr(),
        1,
        k as isize,
        rhs,
        1,
        rhs_rs as isize,
        1.0,
        1.0,
        false,
        false,
        false,
        gemm::Parallelism::None,
    )
}

/// Output rows per task: enough columns for an efficient GEMM, small enough for the cache.
pub(crate) fn rows_per_tile(w: usize, k_rows: usize) -> usize {
    let target = (96 * 1024 / k_rows.max(1)).clamp(256, 4096);
    (target / w).max(1)
}

/// im2col of a 3x3, padding-1 window for output rows `y0..y1` of one image `[c, h, w]`:
/// `col` becomes `[c * 9, (y1 - y0) * w]` (row order: channel, ky, kx).
pub(crate) fn im2col3(col: &mut [f32], x: &[f32], c: usize, h: usize, w: usize, y0: usize, y1: usize) {
    let n = (y1 - y0) * w;
    for ci in 0..c {
        let plane = &x[ci * h * w..(ci + 1) * h * w];
        for ky in 0..3 {
            for kx in 0..3 {
                let row = &mut col[((ci * 3 + ky) * 3 + kx) * n..][..n];
                for (j, y) in (y0..y1).enumerate() {
                    let dst = &mut row[j * w..(j + 1) * w];
                    let iy = y + ky;
                    if iy == 0 || iy > h {
                        dst.fill(0.0);
                        continue;
                    }
                    let src = &plane[(iy - 1) * w..iy * w];
                    match kx {
                        0 => {
                            dst[0] = 0.0;
                            dst[1..].copy_from_slice(&src[..w - 1]);
                        }
                        1 => dst.copy_from_slice(src),
                        _ => {
                            dst[..w - 1].copy_from_slice(&src[1..]);
                            dst[w - 1] = 0.0;
                        }
                    }
                }
            }
        }
    }
}

thread_local! {
    /// Per-worker im2col and Winograd buffers, kept between layers and calls.
    static SCRATCH: std::cell::RefCell<(Vec<f32>, winograd::Scratch)> = Default::default();
}

/// Shape of a stride-1 "same" convolution over a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ConvShape {
    pub batch: usize,
    pub cin: usize,
    pub cout: usize,
    pub h: usize,
    pub w: usize,
    /// Kernel size: 1 or 3.
    pub k: usize,
}

impl ConvShape {
    fn plane(&self) -> usize {
        self.h * self.w
    }
}

/// A band of output rows handed to the epilogue of [`conv_bands`]: image `b`, rows from `y0`,
/// `n` pixels, written at `dst` as `[cout, n]` with row stride `h * w`.
#[derive(Clone, Copy)]
pub(crate) struct BandOut {
    pub b: usize,
    pub y0: usize,
    pub n: usize,
    pub dst: *mut f32,
}

/// `out[b] = weight * x[b]` for the whole batch (`weight` is `[cout, cin * k * k]`, `winograd`
/// its [`winograd::transform_weights`] when wanted), then `epilogue` on every finished band
/// (bias, activation, residual add) while it is still in the cache.
pub(crate) fn conv_bands(
    s: ConvShape,
    x: &[f32],
    weight: &[f32],
    winograd: Option<&[f32]>,
    out: &mut [f32],
    epilogue: impl Fn(BandOut) + Sync,
) {
    let (h, w, plane) = (s.h, s.w, s.plane());
    assert_eq!(x.len(), s.batch * s.cin * plane, "conv input size");
    assert_eq!(out.len(), s.batch * s.cout * plane, "conv output size");
    let wino = winograd.filter(|_| s.k == 3 && h % 2 == 0 && w % 2 == 0);
    let mut rows = rows_per_tile(w, s.cin * s.k * s.k);
    if wino.is_some() {
        rows = (rows + 1) & !1; // whole 2x2 tiles
    }
    let tiles = h.div_ceil(rows);
    let ptr = Out(out.as_mut_ptr());
    (0..s.batch * tiles).into_par_iter().for_each(|task| {
        SCRATCH.with_borrow_mut(|(col, scratch)| {
            let (b, t) = (task / tiles, task % tiles);
            let (y0, y1) = (t * rows, ((t + 1) * rows).min(h));
            let n = (y1 - y0) * w;
            let img = &x[b * s.cin * plane..(b + 1) * s.cin * plane];
            // This task owns rows y0..y1 of image b in every output channel.
            let dst = ptr.at(b * s.cout * plane + y0 * w);
            if let Some(u) = wino {
                let band = winograd::Band {
                    u,
                    cout: s.cout,
                    cin: s.cin,
                    img,
                    h,
                    w,
                    y0,
                    y1,
                    dst,
                    dst_rs: plane,
                };
                // SAFETY: `dst` covers `cout` rows of `plane` elements from y0 * w on.
                unsafe { winograd::conv_rows(&band, scratch) };
            } else {
                let (rhs, rhs_rs) = if s.k == 3 {
                    col.resize(s.cin * 9 * n, 0.0);
                    im2col3(col, img, s.cin, h, w, y0, y1);
                    (col.as_ptr(), n)
                } else {
                    (img[y0 * w..].as_ptr(), plane)
                };
                // SAFETY: as above; `rhs` is the im2col band or the input rows.
                unsafe { matmul(s.cout, n, s.cin * s.k * s.k, dst, plane, false, weight, rhs, rhs_rs) };
            }
            epilogue(BandOut { b, y0, n, dst });
        })
    });
}

/// `k x k` kernels `[cout, cin, k, k]` rotated by 180 degrees with the channel axes swapped:
/// `[cin, cout, k, k]`, the weights of the convolution that gives the input gradient.
pub(crate) fn flip_transpose(weight: &[f32], cout: usize, cin: usize, k: usize) -> Vec<f32> {
    let kk = k * k;
    let mut t = vec![0.0; weight.len()];
    for o in 0..cout {
        for i in 0..cin {
            for j in 0..kk {
                t[(i * cout + o) * kk + kk - 1 - j] = weight[(o * cin + i) * kk + j];
            }
        }
    }
    t
}

/// Gradient of a 1x1 or 3x3 "same" convolution with respect to its weights:
/// `[cout, cin * k * k]`, the sum over the batch and pixels of `dy` times the im2col of `x`.
/// Each task adds one band's `dy_band [cout, n] x col_band^T [n, cin * k * k]` into its
/// worker's accumulator (for 1x1 kernels the input rows are the im2col).
pub(crate) fn conv_weight_grad(s: ConvShape, x: &[f32], dy: &[f32]) -> Vec<f32> {
    let (h, w, plane) = (s.h, s.w, s.plane());
    assert_eq!(x.len(), s.batch * s.cin * plane, "conv input size");
    assert_eq!(dy.len(), s.batch * s.cout * plane, "conv output-gradient size");
    let kk = s.cin * s.k * s.k;
    let rows = rows_per_tile(w, kk);
    let tiles = h.div_ceil(rows);
    (0..s.batch * tiles)
        .into_par_iter()
        .fold(
            || vec![0.0f32; s.cout * kk],
            |mut acc, task| {
                SCRATCH.with_borrow_mut(|(col, _)| {
                    let (b, t) = (task / tiles, task % tiles);
                    let (y0, y1) = (t * rows, ((t + 1) * rows).min(h));
                    let n = (y1 - y0) * w;
                    let img = &x[b * s.cin * plane..(b + 1) * s.cin * plane];
                    let (rhs, rhs_cs) = if s.k == 3 {
                        col.resize(kk * n, 0.0);
                        im2col3(col, img, s.cin, h, w, y0, y1);
                        (col.as_ptr(), n)
                    } else {
                        (img[y0 * w..].as_ptr(), plane)
                    };
                    let lhs = &dy[b * s.cout * plane + y0 * w..];
                    // SAFETY: acc is [cout, kk]; lhs rows (stride plane) cover n pixels of each
                    // channel; the im2col (or input) rows are read transposed: [n, kk] with
                    // column stride `rhs_cs`.
                    unsafe {
                        gemm::gemm(
                            s.cout,
                            kk,
                            n,
                            acc.as_mut_ptr(),
                            1,
                            kk as isize,
                            true,
                            lhs.as_ptr(),
                            1,
                            plane as isize,
                            rhs,
                            rhs_cs as isize,
                            1,
                            1.0,
                            1.0,
                            false,
                            false,
                            false,
                            gemm::Parallelism::None,
                        )
                    };
                });
                acc
            },
        )
        .reduce_with(|mut a, b| {
            a.iter_mut().zip(&b).for_each(|(a, b)| *a += b);
            a
        })
        .unwrap_or_else(|| vec![0.0; s.cout * kk])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reference 1x1 or 3x3 "same" convolution, straight from the definition.
    fn naive(s: ConvShape, x: &[f32], wt: &[f32]) -> Vec<f32> {
        let (h, w) = (s.h as isize, s.w as isize);
        let (kk, r) = ((s.k * s.k) as isize, (s.k / 2) as isize);
        let mut y = vec![0.0; s.batch * s.cout * s.h * s.w];
        for b in 0..s.batch {
            for o in 0..s.cout {
                for yy in 0..h {
                    for xx in 0..w {
                        let mut acc = 0.0;
                        for i in 0..s.cin {
                            for k in 0..kk {
                                let (iy, ix) = (yy + k / s.k as isize - r, xx + k % s.k as isize - r);
                                if iy >= 0 && iy < h && ix >= 0 && ix < w {
                                    acc += wt[((o * s.cin + i) as isize * kk + k) as usize]
                                        * x[((b * s.cin + i) * s.h + iy as usize) * s.w + ix as usize];
                                }
                            }
                        }
                        y[((b * s.cout + o) * s.h + yy as usize) * s.w + xx as usize] = acc;
                    }
                }
            }
        }
        y
    }

    fn pseudo(n: usize, seed: u32) -> Vec<f32> {
        // Deterministic values in [-1, 1) without a random-number crate.
        (0..n as u32)
            .map(|i| {
                let v = (i.wrapping_mul(2_654_435_761) ^ seed.wrapping_mul(40_503)).wrapping_mul(2_246_822_519);
                (v >> 8) as f32 / (1u32 << 23) as f32 - 1.0
            })
            .collect()
    }

    fn max_diff(a: &[f32], b: &[f32]) -> f32 {
        a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
    }

    #[test]
    fn forward_input_and_weight_gradients_match_the_definition() {
        // Gradients by the chain rule on L = sum(y * g): dL/dx = conv(g, flip_transpose(w)),
        // dL/dw = sum g * im2col(x), checked against the naive convolution's own adjoint.
        for (batch, cin, cout, h, w, k) in [(2, 3, 4, 7, 5, 3), (1, 5, 2, 12, 8, 3), (3, 2, 3, 1, 1, 3), (2, 4, 3, 6, 5, 1)] {
            let s = ConvShape { batch, cin, cout, h, w, k };
            let (x, wt, g) = (
                pseudo(batch * cin * h * w, 1),
                pseudo(cout * cin * k * k, 2),
                pseudo(batch * cout * h * w, 3),
            );
            let mut y = vec![0.0; g.len()];
            conv_bands(s, &x, &wt, None, &mut y, |_| {});
            assert!(max_diff(&y, &naive(s, &x, &wt)) < 1e-4);

            // Input gradient: each x element's partial derivative, summed through the naive conv.
            let t = ConvShape { cin: cout, cout: cin, ..s };
            let mut dx = vec![0.0; x.len()];
            conv_bands(t, &g, &flip_transpose(&wt, cout, cin, k), None, &mut dx, |_| {});
            let dot = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(a, b)| (a * b) as f64).sum::<f64>();
            // <conv(x), g> = <x, dx> for every x (linearity): test on unit vectors of a few indices.
            for idx in [0, x.len() / 2, x.len() - 1] {
                let mut e = vec![0.0; x.len()];
                e[idx] = 1.0;
                let want = dot(&naive(s, &e, &wt), &g);
                assert!((dx[idx] as f64 - want).abs() < 1e-4, "dx[{idx}] {} vs {want}", dx[idx]);
            }
            // Weight gradient: <conv_w(x), g> is linear in w the same way.
            let dw = conv_weight_grad(s, &x, &g);
            for idx in [0, dw.len() / 3, dw.len() - 1] {
                let mut e = vec![0.0; wt.len()];
                e[idx] = 1.0;
                let want = dot(&naive(s, &x, &e), &g);
                assert!((dw[idx] as f64 - want).abs() < 1e-3, "dw[{idx}] {} vs {want}", dw[idx]);
            }
        }
    }
}
