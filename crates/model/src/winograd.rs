//! Winograd F(2x2, 3x3) convolution (Lavin & Gray 2016) for the folded CPU path: a 3x3,
//! padding-1 convolution as 16 small GEMMs over 4x4 input tiles, 2.25x fewer multiplications
//! than im2col + GEMM. Used for layers with enough input channels for the GEMMs to be efficient.

/// Transform 3x3 kernels `[cout, cin, 3, 3]` into `[16, cout, cin]` (U = G g G^T).
pub(crate) fn transform_weights(w: &[f32], cout: usize, cin: usize) -> Vec<f32> {
    let mut u = vec![0.0; 16 * cout * cin];
    for o in 0..cout {
        for i in 0..cin {
            let g = &w[(o * cin + i) * 9..][..9];
            // G g: 4x3.
            let mut t = [[0.0f32; 3]; 4];
            for c in 0..3 {
                let (g0, g1, g2) = (g[c], g[3 + c], g[6 + c]);
                t[0][c] = g0;
                t[1][c] = 0.5 * (g0 + g1 + g2);
                t[2][c] = 0.5 * (g0 - g1 + g2);
                t[3][c] = g2;
            }
            // (G g) G^T: 4x4.
            for (r, row) in t.iter().enumerate() {
                let v = [row[0], 0.5 * (row[0] + row[1] + row[2]), 0.5 * (row[0] - row[1] + row[2]), row[2]];
                for (c, x) in v.into_iter().enumerate() {
                    u[((r * 4 + c) * cout + o) * cin + i] = x;
                }
            }
        }
    }
    u
}

/// Scratch buffers of one worker.
#[derive(Default)]
pub(crate) struct Scratch {
    v: Vec<f32>,
    m: Vec<f32>,
    rows: Vec<f32>,
}

/// One band of a 3x3 convolution: output rows `y0..y1` (both even) of one image `img`
/// (`[cin, h, w]`, `h` and `w` even) with the transformed weights `u`, written as
/// `[cout, (y1 - y0) * w]` at `dst` with row stride `dst_rs`.
#[derive(Clone, Copy)]
pub(crate) struct Band<'a> {
    pub u: &'a [f32],
    pub cout: usize,
    pub cin: usize,
    pub img: &'a [f32],
    pub h: usize,
    pub w: usize,
    pub y0: usize,
    pub y1: usize,
    pub dst: *mut f32,
    pub dst_rs: usize,
}

/// Convolve one [`Band`]; no bias or activation (the caller's epilogue adds them).
///
/// # Safety
/// `dst` must cover `cout` rows of `dst_rs` elements from which `(y1 - y0) * w` are written.
pub(crate) unsafe fn conv_rows(band: &Band, s: &mut Scratch) {
    // The transforms are plain loops: compiled once more with AVX2 (8 lanes instead of SSE's 4)
    // and chosen at run time, so the binary still runs on any x86-64.
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        return conv_rows_avx2(band, s);
    }
    conv_rows_impl(band, s)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn conv_rows_avx2(band: &Band, s: &mut Scratch) {
    conv_rows_impl(band, s)
}

/// The transforms run on whole rows of tiles so that the inner loops are over contiguous
/// memory and vectorise; the GEMMs are the only per-tile work left.
#[inline(always)]
unsafe fn conv_rows_impl(band: &Band, s: &mut Scratch) {
    let Band {
        u,
        cout,
        cin,
        img,
        h,
        w,
        y0,
        y1,
        dst,
        dst_rs,
    } = *band;
    let (tw, trows) = (w / 2, (y1 - y0) / 2);
    let tiles = tw * trows;
    let hw = tw + 1; // de-interleaved padded row: even and odd columns, tw + 1 each
    s.v.resize(16 * cin * tiles, 0.0);
    s.m.resize(16 * cout * tiles, 0.0);
    s.rows.resize(16 * hw, 0.0);
    // Input transform V = B^T d B on a row of tiles at a time, zero outside the image. Rows are
    // split into even and odd (padded) columns so every loop below is contiguous and vectorises.
    for ci in 0..cin {
        let plane = &img[ci * h * w..(ci + 1) * h * w];
        for ty in 0..trows {
            let top = y0 + 2 * ty; // input rows top-1 ..= top+2
            let (d, t) = s.rows.split_at_mut(8 * hw);
            for (r, row) in d.chunks_exact_mut(2 * hw).enumerate() {
                let (even, odd) = row.split_at_mut(hw);
                let iy = top + r;
                if iy == 0 || iy > h {
                    even.fill(0.0);
                    odd.fill(0.0);
                    continue;
                }
                // Padded column p = x + 1: even p are odd x (and the left zero), odd p even x.
                let src = &plane[(iy - 1) * w..iy * w];
                even[0] = 0.0;
                odd[tw] = 0.0;
                for (j, pair) in src.chunks_exact(2).enumerate() {
                    odd[j] = pair[0];
                    even[j + 1] = pair[1];
                }
            }
            // B^T d on whole rows (both halves at once).
            let n = 2 * hw;
            let (d0, d1, d2, d3) = (&d[..n], &d[n..2 * n], &d[2 * n..3 * n], &d[3 * n..4 * n]);
            let (t0, rest) = t.split_at_mut(n);
            let (t1, rest) = rest.split_at_mut(n);
            let (t2, t3) = rest.split_at_mut(n);
            for j in 0..n {
                t0[j] = d0[j] - d2[j];
                t1[j] = d1[j] + d2[j];
                t2[j] = d2[j] - d1[j];
                t3[j] = d1[j] - d3[j];
            }
            // (B^T d) B: tile tx uses padded columns 2tx .. 2tx+3 = even[tx], odd[tx], even[tx+1], odd[tx+1].
            for (r, tr) in [&*t0, &*t1, &*t2, &*t3].into_iter().enumerate() {
                let (x0, x1) = (&tr[..tw], &tr[hw..hw + tw]);
                let (x2, x3) = (&tr[1..=tw], &tr[hw + 1..hw + 1 + tw]);
                let at = |c: usize| ((r * 4 + c) * cin + ci) * tiles + ty * tw;
                let (v0, rest) = s.v[at(0)..].split_at_mut(at(1) - at(0));
                let (v1, rest) = rest.split_at_mut(at(2) - at(1));
                let (v2, rest) = rest.split_at_mut(at(3) - at(2));
                let (v0, v1, v2, v3) = (&mut v0[..tw], &mut v1[..tw], &mut v2[..tw], &mut rest[..tw]);
                for i in 0..tw {
                    v0[i] = x0[i] - x2[i];
                    v1[i] = x1[i] + x2[i];
                    v2[i] = x2[i] - x1[i];
                    v3[i] = x1[i] - x3[i];
                }
            }
        }
    }
    // 16 GEMMs: M_k [cout, tiles] = U_k [cout, cin] x V_k [cin, tiles].
    for k in 0..16 {
        let (m, v, uk) = (&mut s.m[k * cout * tiles..], &s.v[k * cin * tiles..], &u[k * cout * cin..]);
        crate::kernels::matmul(cout, tiles, cin, m.as_mut_ptr(), tiles, false, uk, v.as_ptr(), tiles);
    }
    // Output transform Y = A^T M A, a row of tiles (two output rows) at a time.
    let (r0, rest) = s.rows.split_at_mut(4 * tw);
    let (r1, y) = rest.split_at_mut(4 * tw);
    for o in 0..cout {
        for ty in 0..trows {
            let m = |k: usize| &s.m[(k * cout + o) * tiles + ty * tw..][..tw];
            for c in 0..4 {
                let (m0, m1, m2, m3) = (m(c), m(4 + c), m(8 + c), m(12 + c));
                let (a, b) = (&mut r0[c * tw..(c + 1) * tw], &mut r1[c * tw..(c + 1) * tw]);
                for tx in 0..tw {
                    a[tx] = m0[tx] + m1[tx] + m2[tx];
                    b[tx] = m1[tx] - m2[tx] - m3[tx];
                }
            }
            for (dy, r) in [&*r0, &*r1].into_iter().enumerate() {
                let (c0, c1, c2, c3) = (&r[..tw], &r[tw..2 * tw], &r[2 * tw..3 * tw], &r[3 * tw..4 * tw]);
                let (even, odd) = y[..2 * tw].split_at_mut(tw);
                for tx in 0..tw {
                    even[tx] = c0[tx] + c1[tx] + c2[tx];
                    odd[tx] = c1[tx] - c2[tx] - c3[tx];
                }
                // Written through the pointer, not a slice: the destination may be uninitialised
                // (`conv_bands_new`), and `w` is even here (a whole number of tiles).
                let out = dst.add(o * dst_rs + (2 * ty + dy) * w);
                for (t, (e, od)) in even.iter().zip(odd.iter()).enumerate().take(w / 2) {
                    out.add(2 * t).write(*e);
                    out.add(2 * t + 1).write(*od);
                }
            }
        }
    }
}
