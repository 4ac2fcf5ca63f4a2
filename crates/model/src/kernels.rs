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
    strided_matmul(m, n, k, dst, dst_rs, accumulate, (lhs.as_ptr(), 1, k), (rhs, 1, rhs_rs))
}

/// `dst[m, n] (+)= lhs[m, k] * rhs[k, n]` on one thread, the operands given as
/// `(pointer, column stride, row stride)` and `dst` with column stride 1.
///
/// # Safety
/// As [`matmul`].
#[allow(clippy::too_many_arguments)]
unsafe fn strided_matmul(
    m: usize,
    n: usize,
    k: usize,
    dst: *mut f32,
    dst_rs: usize,
    accumulate: bool,
    lhs: (*const f32, usize, usize),
    rhs: (*const f32, usize, usize),
) {
    gemm::gemm(
        m,
        n,
        k,
        dst,
        1,
        dst_rs as isize,
        accumulate,
        lhs.0,
        lhs.1 as isize,
        lhs.2 as isize,
        rhs.0,
        rhs.1 as isize,
        rhs.2 as isize,
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
/// `col` becomes `[c * 9, (y1 - y0) * w]` with row stride `ld` (row order: channel, ky, kx).
#[allow(clippy::too_many_arguments)]
pub(crate) fn im2col3(col: &mut [f32], ld: usize, x: &[f32], c: usize, h: usize, w: usize, y0: usize, y1: usize) {
    let n = (y1 - y0) * w;
    for ci in 0..c {
        let plane = &x[ci * h * w..(ci + 1) * h * w];
        for ky in 0..3 {
            for kx in 0..3 {
                let row = &mut col[((ci * 3 + ky) * 3 + kx) * ld..][..n];
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

/// Per-worker buffers, kept between layers and calls.
#[derive(Default)]
struct Scratch {
    /// im2col bands.
    col: Vec<f32>,
    winograd: winograd::Scratch,
    /// Output gradients of several images gathered into one matrix.
    gathered: Vec<f32>,
}

thread_local! {
    static SCRATCH: std::cell::RefCell<Scratch> = Default::default();
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
    assert_eq!(out.len(), s.batch * s.cout * s.plane(), "conv output size");
    // SAFETY: `out` holds the whole output.
    unsafe { conv_bands_into(s, x, weight, winograd, Out(out.as_mut_ptr()), epilogue) }
}

/// [`conv_bands`] into a new vector, without zeroing it first: every value is written (by the
/// GEMM or the Winograd rows, which do not read their destination).
pub(crate) fn conv_bands_new(s: ConvShape, x: &[f32], weight: &[f32], winograd: Option<&[f32]>) -> Vec<f32> {
    let len = s.batch * s.cout * s.plane();
    let mut out: Vec<f32> = Vec::with_capacity(len);
    // SAFETY: the capacity holds the whole output; every value of it is written before
    // `set_len`, and nothing reads it before.
    unsafe {
        conv_bands_into(s, x, weight, winograd, Out(out.as_mut_ptr()), |_| {});
        out.set_len(len);
    }
    out
}

/// [`conv_bands`] with the output given as a pointer; every output value is written (through
/// the pointer: the GEMM and the Winograd rows never read or reference it before).
///
/// # Safety
/// `out` must point to `batch * cout * h * w` writable values.
unsafe fn conv_bands_into(s: ConvShape, x: &[f32], weight: &[f32], winograd: Option<&[f32]>, ptr: Out, epilogue: impl Fn(BandOut) + Sync) {
    let (h, w, plane) = (s.h, s.w, s.plane());
    assert_eq!(x.len(), s.batch * s.cin * plane, "conv input size");
    // The GEMMs read the weights through pointers: their sizes are checked here.
    assert!(s.k == 1 || s.k == 3, "conv kernels are 1x1 or 3x3, not {0}x{0}", s.k);
    assert_eq!(weight.len(), s.cout * s.cin * s.k * s.k, "conv weight size");
    if let Some(u) = winograd {
        assert_eq!(u.len(), 16 * s.cout * s.cin, "Winograd weight size");
    }
    let wino = winograd.filter(|_| s.k == 3 && h % 2 == 0 && w % 2 == 0);
    let mut rows = rows_per_tile(w, s.cin * s.k * s.k);
    if wino.is_some() {
        rows = (rows + 1) & !1; // whole 2x2 tiles
    }
    let tiles = h.div_ceil(rows);
    (0..s.batch * tiles).into_par_iter().for_each(|task| {
        SCRATCH.with_borrow_mut(
            |Scratch {
                 col, winograd: scratch, ..
             }| {
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
                        im2col3(col, n, img, s.cin, h, w, y0, y1);
                        (col.as_ptr(), n)
                    } else {
                        (img[y0 * w..].as_ptr(), plane)
                    };
                    // SAFETY: as above; `rhs` is the im2col band or the input rows.
                    unsafe { matmul(s.cout, n, s.cin * s.k * s.k, dst, plane, false, weight, rhs, rhs_rs) };
                }
                epilogue(BandOut { b, y0, n, dst });
            },
        )
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

/// Pixels summed over by one GEMM of [`conv_weight_grad`] (its `k` dimension). One small image
/// per task (64 pixels at 8x8) let the accumulator's read-modify-write dominate the deep layers;
/// 640-4096 measured alike once the scratch strides were padded (`weight_grad_timings`).
const WEIGHT_GRAD_PIXELS: usize = 640;

/// One unit of [`conv_weight_grad`]: images `b0..b1`, output rows `y0..y1` of each.
#[derive(Clone, Copy)]
struct GradTask {
    b0: usize,
    b1: usize,
    y0: usize,
    y1: usize,
}

/// Gradient of a 1x1 or 3x3 "same" convolution with respect to its weights:
/// `[cout, cin * k * k]`, the sum over the batch and pixels of `dy` times the im2col of `x`.
/// The pixels are cut into tasks of about [`WEIGHT_GRAD_PIXELS`] (bands of rows of one image,
/// or several whole small images); each adds `dy_task [cout, n] x col_task^T [n, cin * k * k]`
/// into its worker's accumulator.
pub(crate) fn conv_weight_grad(s: ConvShape, x: &[f32], dy: &[f32]) -> Vec<f32> {
    conv_weight_grad_by(s, x, dy, WEIGHT_GRAD_PIXELS)
}

fn conv_weight_grad_by(s: ConvShape, x: &[f32], dy: &[f32], pixels: usize) -> Vec<f32> {
    let (h, w, plane) = (s.h, s.w, s.plane());
    assert_eq!(x.len(), s.batch * s.cin * plane, "conv input size");
    assert_eq!(dy.len(), s.batch * s.cout * plane, "conv output-gradient size");
    let kk = s.cin * s.k * s.k;
    let mut tasks = Vec::new();
    if plane >= pixels {
        let rows = pixels.div_ceil(w);
        for b in 0..s.batch {
            for y0 in (0..h).step_by(rows) {
                tasks.push(GradTask {
                    b0: b,
                    b1: b + 1,
                    y0,
                    y1: (y0 + rows).min(h),
                });
            }
        }
    } else {
        let group = pixels.div_ceil(plane);
        for b0 in (0..s.batch).step_by(group) {
            tasks.push(GradTask {
                b0,
                b1: (b0 + group).min(s.batch),
                y0: 0,
                y1: h,
            });
        }
    }
    // A fixed partition of the tasks, each part summed in order and the parts added in order:
    // the result does not depend on scheduling or thread count, so training stays bit-for-bit
    // reproducible (rayon's fold/reduce would split by work stealing).
    let part = tasks.len().div_ceil(WEIGHT_GRAD_PARTS).max(1);
    let partials: Vec<Vec<f32>> = tasks
        .par_chunks(part)
        .map(|chunk| {
            let mut acc = vec![0.0f32; s.cout * kk];
            SCRATCH.with_borrow_mut(|sc| {
                for &t in chunk {
                    grad_task(s, x, dy, t, &mut acc, &mut sc.col, &mut sc.gathered);
                }
            });
            acc
        })
        .collect();
    let mut parts = partials.into_iter();
    let mut total = parts.next().unwrap_or_else(|| vec![0.0; s.cout * kk]);
    for p in parts {
        total.iter_mut().zip(&p).for_each(|(a, b)| *a += b);
    }
    total
}

/// Parts the weight-gradient tasks are split into (the parallelism available to it).
const WEIGHT_GRAD_PARTS: usize = 16;

/// `acc += dy_task x col_task^T` for one [`GradTask`]; `col` and `gathered` are scratch.
fn grad_task(s: ConvShape, x: &[f32], dy: &[f32], t: GradTask, acc: &mut [f32], col: &mut Vec<f32>, gathered: &mut Vec<f32>) {
    let (w, plane) = (s.w, s.plane());
    let kk = s.cin * s.k * s.k;
    let per_image = (t.y1 - t.y0) * w;
    let n = (t.b1 - t.b0) * per_image;
    let image = |b: usize| &x[b * s.cin * plane..(b + 1) * s.cin * plane];
    // Row stride of the scratch matrices: n padded off powers of two. `gemm` reads the im2col
    // transposed (column stride = this), and with 512-2048 pixels the 4 KiB aliasing made the
    // weight gradient 3-4x slower (`weight_grad_timings`).
    let ld = n.next_multiple_of(16) + 16;
    // The input side as [kk, n]: the im2col, or for 1x1 kernels the input rows themselves when
    // the task is one image.
    let (rhs, rhs_cs) = if s.k == 1 && t.b1 - t.b0 == 1 {
        (image(t.b0)[t.y0 * w..].as_ptr(), plane)
    } else {
        col.resize(kk * ld, 0.0);
        for (i, b) in (t.b0..t.b1).enumerate() {
            let dst = &mut col[i * per_image..];
            if s.k == 3 {
                im2col3(dst, ld, image(b), s.cin, s.h, w, t.y0, t.y1);
            } else {
                for c in 0..s.cin {
                    dst[c * ld..][..per_image].copy_from_slice(&image(b)[c * plane + t.y0 * w..][..per_image]);
                }
            }
        }
        (col.as_ptr(), ld)
    };
    // The output-gradient side as [cout, n]: in place for one image, gathered otherwise.
    let (lhs, lhs_rs) = if t.b1 - t.b0 == 1 {
        (dy[t.b0 * s.cout * plane + t.y0 * w..].as_ptr(), plane)
    } else {
        gathered.resize(s.cout * ld, 0.0);
        for (i, b) in (t.b0..t.b1).enumerate() {
            for o in 0..s.cout {
                gathered[o * ld + i * per_image..][..per_image].copy_from_slice(&dy[(b * s.cout + o) * plane + t.y0 * w..][..per_image]);
            }
        }
        (gathered.as_ptr(), ld)
    };
    // SAFETY: acc is [cout, kk]; lhs covers cout rows of n pixels (row stride lhs_rs); rhs is
    // read transposed, [n, kk] with column stride rhs_cs.
    unsafe { strided_matmul(s.cout, kk, n, acc.as_mut_ptr(), kk, true, (lhs, 1, lhs_rs), (rhs, rhs_cs, 1)) };
}

#[cfg(test)]
pub(crate) mod tests {
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
    fn weight_gradient_does_not_depend_on_the_thread_count() {
        let s = ConvShape {
            batch: 16,
            cin: 4,
            cout: 3,
            h: 32,
            w: 32,
            k: 3,
        };
        let (x, g) = (pseudo(16 * 4 * 32 * 32, 5), pseudo(16 * 3 * 32 * 32, 6));
        let on = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().expect("thread pool");
            pool.install(|| conv_weight_grad(s, &x, &g))
        };
        let one = on(1);
        assert!(one == on(3) && one == on(8), "bit-identical across thread counts");
    }

    /// Process CPU time (user + system) in ms, less disturbed by other load than wall time.
    pub(crate) fn cpu_ms() -> f64 {
        let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
        let f: Vec<f64> = stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .split_whitespace()
            .filter_map(|v| v.parse().ok())
            .collect();
        (f.get(10).unwrap_or(&0.0) + f.get(11).unwrap_or(&0.0)) * 10.0
    }

    /// Weight-gradient time by pixels per task, for the U-Net F=16 layer shapes (batch 16):
    /// `cargo test --release -p tumorscan-model weight_grad_timings -- --ignored --nocapture`.
    #[test]
    #[ignore = "timing report, not a test"]
    fn weight_grad_timings() {
        let cpu = cpu_ms;
        for (cin, cout, hw) in [(16, 16, 128), (32, 32, 64), (64, 64, 32), (128, 128, 16), (256, 256, 8)] {
            let s = ConvShape {
                batch: 16,
                cin,
                cout,
                h: hw,
                w: hw,
                k: 3,
            };
            let (x, g) = (pseudo(16 * cin * hw * hw, 1), pseudo(16 * cout * hw * hw, 3));
            let mut line = format!("{cin:3}->{cout:3} {hw:3}: ");
            for pixels in [64, 640, 1024, 2048, 4096] {
                let t = cpu();
                let w0 = std::time::Instant::now();
                for _ in 0..3 {
                    std::hint::black_box(conv_weight_grad_by(s, &x, &g, pixels));
                }
                line += &format!(
                    " {pixels} px: {:6.1} ms cpu {:6.1} wall |",
                    (cpu() - t) / 3.0,
                    w0.elapsed().as_secs_f64() * 1e3 / 3.0
                );
            }
            println!("{line}");
        }
    }

    #[test]
    fn forward_input_and_weight_gradients_match_the_definition() {
        // Gradients by the chain rule on L = sum(y * g): dL/dx = conv(g, flip_transpose(w)),
        // dL/dw = sum g * im2col(x), checked against the naive convolution's own adjoint.
        // Weight-gradient tasks of every kind: small images grouped, bands of rows of one large
        // image, 1x1 kernels.
        let shapes = [
            (2, 3, 4, 7, 5, 3),
            (1, 5, 2, 12, 8, 3),
            (3, 2, 3, 1, 1, 3),
            (2, 4, 3, 6, 5, 1),
            (8, 3, 4, 32, 32, 3),
            (8, 3, 2, 32, 32, 1),
            (1, 2, 3, 64, 40, 3),
            (2, 2, 3, 64, 40, 1),
        ];
        for (batch, cin, cout, h, w, k) in shapes {
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
