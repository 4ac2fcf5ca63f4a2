//! Resizing to the model's input size and seeded augmentation, done as one resampling pass.
//!
//! Each output pixel is mapped through an affine transform (flip, rotation, scale about the
//! centre), plus an optional smooth elastic displacement, back into the source slice and
//! sampled bilinearly (zero outside). Without augmentation the transform is a plain resize.
//! Masks are resampled the same way and thresholded at 0.5.

use crate::normalize::Normalizer;
use crate::Slice;
use rand::Rng;

/// Augmentation ranges. [`AugmentConfig::none`] disables everything.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AugmentConfig {
    /// Probability of a horizontal (left-right) flip.
    pub flip_probability: f32,
    /// Largest rotation in degrees (uniform in +-).
    pub max_rotation_deg: f32,
    /// Largest relative scale change (uniform in 1 +- this).
    pub max_scale: f32,
    /// Largest per-channel intensity jitter in normalised units (scale 1 +- this, shift +- this).
    pub intensity: f32,
    /// Probability of imitating a missing sequence the way the dataset fills one in: half of
    /// these samples get FLAIR in all three channels, half FLAIR as post-contrast. Why: 10 of
    /// the 110 patients are stored like that, and a model trained without it lost most of its
    /// Dice on such input (v0.3: 0.83 -> 0.19 on a patient with its channels replaced).
    /// Absent from configs written before it existed (= 0).
    #[serde(default)]
    pub missing_sequence: f32,
    /// Largest gamma change G: on [`GAMMA_PROBABILITY`] of the samples each channel, rescaled
    /// to [0, 1] over the slice, is raised to a power drawn log-uniformly in [1/(1+G), 1+G] and
    /// scaled back (nnU-Net's gamma augmentation: contrast curves differ between scanners).
    /// Absent from configs written before it existed (= 0: off).
    #[serde(default)]
    pub gamma: f32,
    /// Largest elastic displacement E in source pixels: on [`ELASTIC_PROBABILITY`] of the
    /// samples, the interior points of an [`ELASTIC_GRID`] x [`ELASTIC_GRID`] control grid
    /// over the image move by up to +-E in x and y, and the points between follow smoothly
    /// (the random elastic deformation of TorchIO and nnU-Net: tumours and brains vary in
    /// shape, not only in pose). Absent from configs written before it existed (= 0: off).
    #[serde(default)]
    pub elastic: f32,
    /// Random-crop training (0: off): each sample is a `crop x crop` window, at a uniformly
    /// random position, of the slice as resized to the model's input size. Why: the network
    /// then learns at the input size's scale (e.g. `--size 256`: the scans' own resolution) for
    /// a crop's step cost, and validation and inference still see the whole input (nnU-Net's
    /// patch training). Absent from configs written before it existed (= 0: off).
    #[serde(default)]
    pub crop: u32,
}

/// Share of samples that get the gamma change when [`AugmentConfig::gamma`] is set (nnU-Net's).
pub const GAMMA_PROBABILITY: f32 = 0.3;
/// Share of samples deformed when [`AugmentConfig::elastic`] is set.
pub const ELASTIC_PROBABILITY: f32 = 0.5;
/// Control points per side of the elastic displacement grid; the outer ring stays put, so the
/// image frame does not move (TorchIO's default: 7 points, borders locked).
pub const ELASTIC_GRID: usize = 7;

impl AugmentConfig {
    /// No augmentation.
    pub fn none() -> Self {
        Self {
            flip_probability: 0.0,
            max_rotation_deg: 0.0,
            max_scale: 0.0,
            intensity: 0.0,
            missing_sequence: 0.0,
            gamma: 0.0,
            elastic: 0.0,
            crop: 0,
        }
    }
    /// The defaults used for training (close to Buda et al.: flips, +-15 deg, +-5% scale).
    pub fn standard() -> Self {
        Self {
            flip_probability: 0.5,
            max_rotation_deg: 15.0,
            max_scale: 0.05,
            intensity: 0.1,
            missing_sequence: 0.0,
            gamma: 0.0,
            elastic: 0.0,
            crop: 0,
        }
    }

    /// Side of the training samples for a model of input `size`: the crop when one is set
    /// and smaller than `size`, else `size`.
    pub fn sample_size(&self, size: u32) -> u32 {
        if self.crop > 0 && self.crop < size {
            self.crop
        } else {
            size
        }
    }
}

/// Affine map from output pixel centres to source pixel coordinates.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Affine {
    m: [f32; 4],
    t: [f32; 2],
}

impl Affine {
    /// Resize `src` (w, h) to `dst` (w, h) with an optional flip, rotation and zoom about the centre.
    pub fn new(src: (u32, u32), dst: (u32, u32), flip: bool, rotation_deg: f32, zoom: f32) -> Self {
        let (sx, sy) = (src.0 as f32 / dst.0 as f32, src.1 as f32 / dst.1 as f32);
        let (s, c) = rotation_deg.to_radians().sin_cos();
        let f = if flip { -1.0 } else { 1.0 };
        // source = centre_src + R * S * F * (out - centre_dst) / zoom
        let m = [c * sx * f / zoom, -s * sx / zoom, s * sy * f / zoom, c * sy / zoom];
        let (cxs, cys) = (src.0 as f32 / 2.0, src.1 as f32 / 2.0);
        let (cxd, cyd) = (dst.0 as f32 / 2.0, dst.1 as f32 / 2.0);
        let t = [cxs - m[0] * cxd - m[1] * cyd, cys - m[2] * cxd - m[3] * cyd];
        Self { m, t }
    }
    /// Plain resize.
    pub fn resize(src: (u32, u32), dst: (u32, u32)) -> Self {
        Self::new(src, dst, false, 0.0, 1.0)
    }
    /// The same map read from a window whose origin sits at (`dx`, `dy`) of the output frame:
    /// output pixel (x, y) of the window samples where (x + dx, y + dy) of the frame did.
    pub fn offset(self, dx: f32, dy: f32) -> Self {
        let (ex, ey) = (self.m[0] * dx + self.m[1] * dy, self.m[2] * dx + self.m[3] * dy);
        Self {
            m: self.m,
            t: [self.t[0] + ex, self.t[1] + ey],
        }
    }
    fn apply(&self, x: f32, y: f32) -> (f32, f32) {
        (self.m[0] * x + self.m[1] * y + self.t[0], self.m[2] * x + self.m[3] * y + self.t[1])
    }
}

/// A smooth displacement field over an output image, in source pixels: displacements at a
/// square grid of control points spanning the image, blended between the four nearest with
/// smoothstep weights (continuous, with a continuous gradient).
#[derive(Debug, Clone, PartialEq)]
pub struct Displacement {
    grid: usize,
    size: (f32, f32),
    points: Vec<(f32, f32)>,
}

impl Displacement {
    /// A random field over a `size` output: the interior points of a `grid x grid` control
    /// grid move by up to `most` source pixels in each direction; the outer ring stays at zero.
    pub fn random<R: Rng>(rng: &mut R, size: (u32, u32), grid: usize, most: f32) -> Self {
        let grid = grid.max(2);
        let points = (0..grid * grid)
            .map(|i| {
                let (gx, gy) = (i % grid, i / grid);
                if gx == 0 || gy == 0 || gx == grid - 1 || gy == grid - 1 {
                    (0.0, 0.0)
                } else {
                    let mut draw = || (rng.random::<f32>() * 2.0 - 1.0) * most;
                    (draw(), draw())
                }
            })
            .collect();
        Self {
            grid,
            size: (size.0 as f32, size.1 as f32),
            points,
        }
    }

    /// The displacement at output position (`x`, `y`).
    pub fn at(&self, x: f32, y: f32) -> (f32, f32) {
        let last = (self.grid - 1) as f32;
        let (u, v) = ((x / self.size.0 * last).clamp(0.0, last), (y / self.size.1 * last).clamp(0.0, last));
        let (i, j) = ((u.floor() as usize).min(self.grid - 2), (v.floor() as usize).min(self.grid - 2));
        let smooth = |t: f32| t * t * (3.0 - 2.0 * t);
        let (a, b) = (smooth(u - i as f32), smooth(v - j as f32));
        let p = |di: usize, dj: usize| self.points[(j + dj) * self.grid + i + di];
        let weights = [
            (p(0, 0), (1.0 - a) * (1.0 - b)),
            (p(1, 0), a * (1.0 - b)),
            (p(0, 1), (1.0 - a) * b),
            (p(1, 1), a * b),
        ];
        weights
            .iter()
            .fold((0.0, 0.0), |(dx, dy), &((px, py), w)| (dx + w * px, dy + w * py))
    }
}

/// Bilinearly resample planar `channels x h x w` data to `dst`, zero outside the source.
pub fn resample(src: &[f32], channels: usize, w: u32, h: u32, dst: (u32, u32), a: &Affine) -> Vec<f32> {
    resample_warped(src, channels, w, h, dst, a, None)
}

/// [`resample`] with an optional displacement added to the affine's source position.
pub fn resample_warped(src: &[f32], channels: usize, w: u32, h: u32, dst: (u32, u32), a: &Affine, warp: Option<&Displacement>) -> Vec<f32> {
    let (w, h) = (w as usize, h as usize);
    let (dw, dh) = (dst.0 as usize, dst.1 as usize);
    let mut out = vec![0f32; channels * dw * dh];
    for oy in 0..dh {
        for ox in 0..dw {
            // Pixel centres at +0.5 on both sides keep the image centred when resizing.
            let (x, y) = (ox as f32 + 0.5, oy as f32 + 0.5);
            let (sx, sy) = a.apply(x, y);
            let (sx, sy) = match warp {
                Some(d) => {
                    let (dx, dy) = d.at(x, y);
                    (sx + dx, sy + dy)
                }
                None => (sx, sy),
            };
            let (fx, fy) = (sx - 0.5, sy - 0.5);
            let (x0, y0) = (fx.floor(), fy.floor());
            let (ax, ay) = (fx - x0, fy - y0);
            let (x0, y0) = (x0 as isize, y0 as isize);
            let taps = [
                (x0, y0, (1.0 - ax) * (1.0 - ay)),
                (x0 + 1, y0, ax * (1.0 - ay)),
                (x0, y0 + 1, (1.0 - ax) * ay),
                (x0 + 1, y0 + 1, ax * ay),
            ];
            for c in 0..channels {
                let plane = &src[c * w * h..(c + 1) * w * h];
                let mut v = 0.0;
                for &(x, y, wt) in &taps {
                    if wt != 0.0 && x >= 0 && y >= 0 && (x as usize) < w && (y as usize) < h {
                        v += wt * plane[y as usize * w + x as usize];
                    }
                }
                out[c * dw * dh + oy * dw + ox] = v;
            }
        }
    }
    out
}

/// Resize a probability map (e.g. a model output) to another size, bilinearly.
pub fn resize_map(map: &[f32], w: u32, h: u32, dst: (u32, u32)) -> Vec<f32> {
    if (w, h) == dst {
        return map.to_vec();
    }
    resample(map, 1, w, h, dst, &Affine::resize((w, h), dst))
}

/// Normalise and resize an RGB (HWC) slice to the model's `size x size` planar input.
pub fn prepare_image(rgb: &[u8], width: u32, height: u32, norm: &Normalizer, size: u32) -> Vec<f32> {
    prepare_image_in_context(rgb, width, height, &[], norm, size)
}

/// [`prepare_image`] with the FLAIR planes of neighbouring slices appended (2.5D input, see
/// [`planes_in_context`]).
pub fn prepare_image_in_context(rgb: &[u8], width: u32, height: u32, context: &[Neighbour], norm: &Normalizer, size: u32) -> Vec<f32> {
    resample(
        &planes_in_context(rgb, width, height, context, norm),
        3 + context.len(),
        width,
        height,
        (size, size),
        &Affine::resize((width, height), (size, size)),
    )
}

/// A neighbouring slice given as context: its RGB (HWC) bytes, width and height.
pub type Neighbour<'a> = (&'a [u8], u32, u32);

/// Positions of the `k` slices on each side of slice `i` of `len`, nearest first
/// (`[i-1, i+1, i-2, i+2, ...]`); beyond either end the end slice repeats.
pub fn context_indices(i: usize, len: usize, k: usize) -> Vec<usize> {
    let last = len.saturating_sub(1);
    (1..=k).flat_map(|d| [i.saturating_sub(d), (i + d).min(last)]).collect()
}

/// The normalised planes of a slice (pre-contrast, FLAIR, post-contrast) followed by each
/// neighbour's FLAIR plane, at the slice's own size. A neighbour of another size contributes
/// the slice's own FLAIR instead.
pub fn planes_in_context(rgb: &[u8], width: u32, height: u32, context: &[Neighbour], norm: &Normalizer) -> Vec<f32> {
    let mut planes = norm.apply(rgb);
    let n = (width * height) as usize;
    for &(other, w, h) in context {
        let flair = if (w, h) == (width, height) && other.len() == rgb.len() {
            norm.apply(other)[n..2 * n].to_vec()
        } else {
            planes[n..2 * n].to_vec()
        };
        planes.extend(flair);
    }
    planes
}

/// A missing sequence filled in with FLAIR, as the dataset stores 10 of its 110 patients.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum MissingSequence {
    /// Pre- and post-contrast replaced: FLAIR in all three channels.
    Both,
    /// Post-contrast replaced.
    PostContrast,
}

impl MissingSequence {
    /// Replace the channels of an RGB (HWC; pre-contrast, FLAIR, post-contrast) image in place.
    pub fn apply_to_rgb(self, rgb: &mut [u8]) {
        for px in rgb.chunks_exact_mut(3) {
            px[2] = px[1];
            if self == Self::Both {
                px[0] = px[1];
            }
        }
    }

    /// The same on planar data (`3 x plane`, e.g. a normalised model input).
    pub fn apply_to_planes(self, image: &mut [f32], plane: usize) {
        let (pre_and_flair, post) = image.split_at_mut(2 * plane);
        let (pre, flair) = pre_and_flair.split_at_mut(plane);
        post.copy_from_slice(flair);
        if self == Self::Both {
            pre.copy_from_slice(flair);
        }
    }
}

/// One training / inference sample at model size (a training sample with a crop set: at
/// [`AugmentConfig::sample_size`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Normalised image, `(3 + context slices) x size x size`, planar.
    pub image: Vec<f32>,
    /// Mask, `size x size`, 0.0 or 1.0.
    pub mask: Vec<f32>,
}

/// Normalise, resize and (when `augment` is given) randomly transform and crop one slice.
pub fn prepare_sample<R: Rng>(slice: &Slice, norm: &Normalizer, size: u32, augment: Option<(&AugmentConfig, &mut R)>) -> Sample {
    prepare_sample_in_context(slice, &[], norm, size, augment)
}

/// [`prepare_sample`] with the FLAIR planes of `context` slices appended (2.5D input): they get
/// the same geometric transform and FLAIR's intensity jitter, so no extra random numbers are
/// drawn and a run without context keeps its random stream.
pub fn prepare_sample_in_context<R: Rng>(
    slice: &Slice,
    context: &[&Slice],
    norm: &Normalizer,
    size: u32,
    augment: Option<(&AugmentConfig, &mut R)>,
) -> Sample {
    let neighbours: Vec<Neighbour> = context.iter().map(|c| (c.image.as_slice(), c.width, c.height)).collect();
    let planar = planes_in_context(&slice.image, slice.width, slice.height, &neighbours, norm);
    let channels = 3 + context.len();
    let mask: Vec<f32> = slice.mask.iter().map(|&v| v as f32).collect();
    let src = (slice.width, slice.height);
    let mut substitute = None;
    let mut gammas = None;
    let mut warp = None;
    let (affine, jitter, out) = match augment {
        Some((cfg, rng)) => {
            // Drawn only when enabled, so that older configurations keep their random stream.
            if cfg.missing_sequence > 0.0 && rng.random::<f32>() < cfg.missing_sequence {
                substitute = Some(if rng.random::<bool>() {
                    MissingSequence::Both
                } else {
                    MissingSequence::PostContrast
                });
            }
            let flip = rng.random::<f32>() < cfg.flip_probability;
            let rot = (rng.random::<f32>() * 2.0 - 1.0) * cfg.max_rotation_deg;
            let zoom = 1.0 + (rng.random::<f32>() * 2.0 - 1.0) * cfg.max_scale;
            let jitter: [(f32, f32); 3] = std::array::from_fn(|_| {
                (
                    1.0 + (rng.random::<f32>() * 2.0 - 1.0) * cfg.intensity,
                    (rng.random::<f32>() * 2.0 - 1.0) * cfg.intensity,
                )
            });
            // Drawn last and only when enabled, for the same reason as above.
            if cfg.gamma > 0.0 && rng.random::<f32>() < GAMMA_PROBABILITY {
                let most = (1.0 + cfg.gamma).ln();
                gammas = Some(std::array::from_fn::<f32, 3, _>(|_| {
                    ((rng.random::<f32>() * 2.0 - 1.0) * most).exp()
                }));
            }
            let out = cfg.sample_size(size);
            // After the gamma draws, and only when enabled, for the same reason.
            if cfg.elastic > 0.0 && rng.random::<f32>() < ELASTIC_PROBABILITY {
                warp = Some(Displacement::random(rng, (out, out), ELASTIC_GRID, cfg.elastic));
            }
            let mut affine = Affine::new(src, (size, size), flip, rot, zoom);
            // Drawn last and only when cropping, for the same reason.
            if out < size {
                let mut at = || rng.random_range(0..=size - out) as f32;
                let (dx, dy) = (at(), at());
                affine = affine.offset(dx, dy);
            }
            (affine, Some(jitter), out)
        }
        None => (Affine::resize(src, (size, size)), None, size),
    };
    let dst = (out, out);
    let mut image = resample_warped(&planar, channels, slice.width, slice.height, dst, &affine, warp.as_ref());
    let n = (out * out) as usize;
    if let Some(missing) = substitute {
        // Channels: 0 pre-contrast, 1 FLAIR, 2 post-contrast (normalised per volume, so a
        // FLAIR copy is exactly what a volume stored that way normalises to); context planes
        // are FLAIR already.
        missing.apply_to_planes(&mut image[..3 * n], n);
    }
    for (c, plane) in image.chunks_exact_mut(n.max(1)).enumerate() {
        // Context planes (after the first three) are FLAIR: they take FLAIR's draws.
        let k = if c < 3 { c } else { 1 };
        if let Some(g) = gammas {
            apply_gamma(plane, g[k]);
        }
        if let Some(j) = jitter {
            let (s, b) = j[k];
            plane.iter_mut().for_each(|v| *v = *v * s + b);
        }
    }
    let mask = resample_warped(&mask, 1, slice.width, slice.height, dst, &affine, warp.as_ref())
        .into_iter()
        .map(|v| if v >= 0.5 { 1.0 } else { 0.0 })
        .collect();
    Sample { image, mask }
}

/// Raise a plane, rescaled to [0, 1] over its own range, to the power `gamma` and scale it back
/// to that range: the darkest and brightest values stay, the contrast curve between them bends.
pub fn apply_gamma(plane: &mut [f32], gamma: f32) {
    let (lo, hi) = plane
        .iter()
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    let range = hi - lo;
    if range.is_nan() || range <= 0.0 {
        return; // a flat (or empty) plane has no contrast to change
    }
    plane.iter_mut().for_each(|v| *v = lo + range * ((*v - lo) / range).powf(gamma));
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn identity_resize_is_exact_and_half_size_averages() {
        let src: Vec<f32> = (0..16).map(|v| v as f32).collect();
        assert_eq!(resample(&src, 1, 4, 4, (4, 4), &Affine::resize((4, 4), (4, 4))), src);
        let half = resample(&src, 1, 4, 4, (2, 2), &Affine::resize((4, 4), (2, 2)));
        assert_eq!(half, vec![2.5, 4.5, 10.5, 12.5]);
    }

    #[test]
    fn flip_mirrors() {
        let src = vec![1.0, 2.0, 3.0, 4.0];
        let out = resample(&src, 1, 2, 2, (2, 2), &Affine::new((2, 2), (2, 2), true, 0.0, 1.0));
        assert_eq!(out, vec![2.0, 1.0, 4.0, 3.0]);
    }

    #[test]
    fn gamma_bends_the_contrast_between_the_planes_extremes() {
        let mut plane = vec![-1.0, 0.0, 1.0, 3.0]; // range [-1, 3]: 0, 1/4, 1/2, 1 of it
        apply_gamma(&mut plane, 2.0);
        assert_eq!(plane, vec![-1.0, -1.0 + 4.0 / 16.0, -1.0 + 4.0 / 4.0, 3.0]);
        let mut flat = vec![0.5; 4];
        apply_gamma(&mut flat, 2.0);
        assert_eq!(flat, vec![0.5; 4]);
    }

    /// An 8x8 slice with an intensity ramp and its right half marked as tumour.
    fn ramp_slice() -> Slice {
        Slice {
            patient: "p".into(),
            number: 1,
            image_path: Default::default(),
            mask_path: Default::default(),
            width: 8,
            height: 8,
            image: (0..192).map(|v| v as u8).collect(),
            mask: (0..64).map(|i| (i % 8 > 3) as u8).collect(),
        }
    }

    /// Each of 40 seeds' sample of `slice` under `plain` and under `other`, from the same seed.
    fn paired_samples(slice: &Slice, size: u32, plain: &AugmentConfig, other: &AugmentConfig) -> Vec<(u64, Sample, Sample)> {
        let norm = Normalizer::fit([slice.image.as_slice()]);
        (0..40)
            .map(|seed| {
                let mut r1 = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
                let mut r2 = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
                let a = prepare_sample(slice, &norm, size, Some((plain, &mut r1)));
                (seed, a, prepare_sample(slice, &norm, size, Some((other, &mut r2))))
            })
            .collect()
    }

    #[test]
    fn gamma_changes_some_samples_and_leaves_the_rest_as_without_it() {
        let slice = ramp_slice();
        let plain = AugmentConfig::standard();
        let with_gamma = AugmentConfig { gamma: 0.5, ..plain };
        let (mut changed, mut kept) = (0, 0);
        for (_, a, b) in paired_samples(&slice, 8, &plain, &with_gamma) {
            // The gamma draw comes after every other one: the geometry is the same either way.
            assert_eq!(a.mask, b.mask);
            if a.image == b.image {
                kept += 1;
            } else {
                changed += 1;
            }
        }
        // GAMMA_PROBABILITY = 0.3 of 40 samples: 12 expected; a fair draw lands well inside 4..=24.
        assert!((4..=24).contains(&changed), "{changed} of 40 changed");
        assert_eq!(changed + kept, 40);
        let old: AugmentConfig =
            serde_json::from_str(r#"{"flip_probability":0.5,"max_rotation_deg":15.0,"max_scale":0.05,"intensity":0.1}"#)
                .expect("a config written before the gamma option");
        assert_eq!(old.gamma, 0.0);
    }

    #[test]
    fn displacement_is_zero_on_the_frame_and_hits_the_control_points() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let d = Displacement::random(&mut rng, (60, 60), 7, 4.0);
        // Control points sit every 10 output pixels; the outer ring is locked.
        for t in [0.0, 10.0, 30.0, 55.0, 60.0] {
            assert_eq!(d.at(t, 0.0), (0.0, 0.0));
            assert_eq!(d.at(60.0, t), (0.0, 0.0));
        }
        let (gx, gy) = (2, 3);
        let (px, py) = d.points[gy * 7 + gx];
        let (dx, dy) = d.at(20.0, 30.0);
        assert!((dx - px).abs() < 1e-5 && (dy - py).abs() < 1e-5);
        assert!(d.points.iter().all(|&(x, y)| x.abs() <= 4.0 && y.abs() <= 4.0));
        assert!(d.points.iter().any(|&(x, _)| x != 0.0));
        // Smooth: a tenth of a pixel moves the field by far less than a pixel.
        let (ax, ay) = d.at(24.0, 33.0);
        let (bx, by) = d.at(24.1, 33.1);
        assert!((ax - bx).abs() < 0.1 && (ay - by).abs() < 0.1);
    }

    #[test]
    fn elastic_deforms_image_and_mask_together_on_some_samples() {
        // A 32x32 slice whose FLAIR channel is bright exactly where the mask is (a disc).
        let disc = |i: usize| ((i % 32) as f32 - 15.5).hypot((i / 32) as f32 - 15.5) < 8.0;
        let slice = Slice {
            patient: "p".into(),
            number: 1,
            image_path: Default::default(),
            mask_path: Default::default(),
            width: 32,
            height: 32,
            image: (0..1024).flat_map(|i| [40, if disc(i) { 250 } else { 10 }, 90]).collect(),
            mask: (0..1024).map(|i| disc(i) as u8).collect(),
        };
        let plain = AugmentConfig::standard();
        let elastic = AugmentConfig { elastic: 3.0, ..plain };
        let (mut changed, mut kept) = (0, 0);
        for (seed, a, b) in paired_samples(&slice, 32, &plain, &elastic) {
            assert!(b.mask.iter().all(|&v| v == 0.0 || v == 1.0));
            if a == b {
                kept += 1;
                continue;
            }
            changed += 1;
            // The deformed FLAIR still lines up with the deformed mask: its brighter half is
            // the mask, up to the blurred edge pixels.
            let flair = &b.image[1024..2048];
            let (lo, hi) = flair.iter().fold((f32::MAX, f32::MIN), |(l, h), &v| (l.min(v), h.max(v)));
            let disagree = flair
                .iter()
                .zip(&b.mask)
                .filter(|&(&v, &m)| (v > (lo + hi) / 2.0) != (m == 1.0))
                .count();
            assert!(disagree <= 8, "seed {seed}: {disagree} pixels disagree");
        }
        // ELASTIC_PROBABILITY = 0.5 of 40 samples: 20 expected; a fair draw lands in 8..=32.
        assert!((8..=32).contains(&changed), "{changed} of 40 changed");
        assert_eq!(changed + kept, 40);
        let old: AugmentConfig =
            serde_json::from_str(r#"{"flip_probability":0.5,"max_rotation_deg":15.0,"max_scale":0.05,"intensity":0.1,"gamma":0.5}"#)
                .expect("a config written before the elastic option");
        assert_eq!(old.elastic, 0.0);
    }

    #[test]
    fn augmentation_is_seeded_and_keeps_masks_binary() {
        let slice = ramp_slice();
        let norm = Normalizer::fit([slice.image.as_slice()]);
        let cfg = AugmentConfig::standard();
        let mut r1 = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let mut r2 = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let a = prepare_sample(&slice, &norm, 4, Some((&cfg, &mut r1)));
        let b = prepare_sample(&slice, &norm, 4, Some((&cfg, &mut r2)));
        assert_eq!(a, b);
        assert!(a.mask.iter().all(|&v| v == 0.0 || v == 1.0));
        assert_eq!(a.image.len(), 48);
    }

    #[test]
    fn a_crop_is_a_window_of_the_uncropped_sample_under_the_same_draws() {
        let slice = Slice {
            patient: "p".into(),
            number: 1,
            image_path: Default::default(),
            mask_path: Default::default(),
            width: 16,
            height: 16,
            image: (0..768u32).map(|v| ((v * 37 + v * v / 5) % 251) as u8).collect(),
            mask: (0..256)
                .map(|i| (i % 16 > 4 && i % 16 < 11 && i / 16 > 3 && i / 16 < 12) as u8)
                .collect(),
        };
        let norm = Normalizer::fit([slice.image.as_slice()]);
        let whole = AugmentConfig {
            missing_sequence: 0.5,
            ..AugmentConfig::standard()
        };
        let cropped = AugmentConfig { crop: 8, ..whole };
        assert_eq!((cropped.sample_size(16), cropped.sample_size(8), whole.sample_size(16)), (8, 8, 16));
        let window = |v: &[f32], planes: usize, dx: usize, dy: usize| -> Vec<f32> {
            (0..planes * 64)
                .map(|k| v[(k / 64) * 256 + (dy + k % 64 / 8) * 16 + dx + k % 8])
                .collect()
        };
        let mut offsets = std::collections::BTreeSet::new();
        for seed in 0..16 {
            let rng = || rand_chacha::ChaCha8Rng::seed_from_u64(seed);
            let full = prepare_sample(&slice, &norm, 16, Some((&whole, &mut rng())));
            let crop = prepare_sample(&slice, &norm, 16, Some((&cropped, &mut rng())));
            assert_eq!((crop.image.len(), crop.mask.len()), (3 * 64, 64));
            // The same flip, rotation, zoom, channels and jitter: some window of the whole
            // sample, to float rounding (a mask pixel at exactly 0.5 may round either way).
            let at = (0..=8usize).flat_map(|dy| (0..=8usize).map(move |dx| (dx, dy))).find(|&(dx, dy)| {
                let same_image = window(&full.image, 3, dx, dy)
                    .iter()
                    .zip(&crop.image)
                    .all(|(a, b)| (a - b).abs() < 1e-4);
                let mask_differs = window(&full.mask, 1, dx, dy).iter().zip(&crop.mask).filter(|(a, b)| a != b).count();
                same_image && mask_differs <= 1
            });
            offsets.insert(at.expect("the crop is a window of the whole sample"));
        }
        assert!(offsets.len() > 8, "the window moves between samples: {offsets:?}");
        // Without augmentation (validation, inference) the whole input, crop or not.
        let plain = prepare_sample::<rand_chacha::ChaCha8Rng>(&slice, &norm, 16, None);
        assert_eq!(plain.mask.len(), 256);
    }

    #[test]
    fn context_indices_are_nearest_first_and_repeat_the_ends() {
        assert_eq!(context_indices(0, 5, 1), [0, 1]);
        assert_eq!(context_indices(4, 5, 1), [3, 4]);
        assert_eq!(context_indices(2, 5, 2), [1, 3, 0, 4]);
        assert_eq!(context_indices(0, 1, 1), [0, 0]);
        assert!(context_indices(3, 5, 0).is_empty());
    }

    #[test]
    fn context_planes_are_the_neighbours_flair_under_the_same_transform() {
        let slice = |number: u32, shift: u32| Slice {
            patient: "p".into(),
            number,
            image_path: Default::default(),
            mask_path: Default::default(),
            width: 8,
            height: 8,
            image: (0..192u32).map(|v| ((v * 7 + shift * 31) % 251) as u8).collect(),
            mask: (0..64).map(|i| (i % 8 > 3) as u8).collect(),
        };
        let (prev, centre, next) = (slice(1, 1), slice(2, 2), slice(3, 3));
        let norm = Normalizer::fit([prev.image.as_slice(), centre.image.as_slice(), next.image.as_slice()]);
        let n = 16;
        let plain = |s: &Slice| prepare_sample::<rand_chacha::ChaCha8Rng>(s, &norm, 4, None);
        let with = prepare_sample_in_context::<rand_chacha::ChaCha8Rng>(&centre, &[&prev, &next], &norm, 4, None);
        assert_eq!(with.image.len(), 5 * n);
        assert_eq!(with.image[..3 * n], plain(&centre).image[..]);
        assert_eq!(with.image[3 * n..4 * n], plain(&prev).image[n..2 * n]);
        assert_eq!(with.image[4 * n..], plain(&next).image[n..2 * n]);
        assert_eq!(with.mask, plain(&centre).mask);
        // Augmented: the slice's own planes are what the run without context gets (same random
        // stream), and a neighbour identical to the slice gets exactly its FLAIR plane.
        let cfg = AugmentConfig {
            missing_sequence: 0.5,
            ..AugmentConfig::standard()
        };
        for seed in 0..8 {
            let mut r1 = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
            let mut r2 = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
            let alone = prepare_sample(&centre, &norm, 4, Some((&cfg, &mut r1)));
            let ctx = prepare_sample_in_context(&centre, &[&centre, &next], &norm, 4, Some((&cfg, &mut r2)));
            assert_eq!(ctx.image[..3 * n], alone.image[..]);
            assert_eq!(ctx.mask, alone.mask);
            let original_flair = prepare_sample_in_context(
                &centre,
                &[&centre],
                &norm,
                4,
                Some((
                    &AugmentConfig {
                        missing_sequence: 0.0,
                        ..cfg
                    },
                    &mut rand_chacha::ChaCha8Rng::seed_from_u64(seed),
                )),
            );
            assert_eq!(original_flair.image[3 * n..], original_flair.image[n..2 * n]);
        }
    }

    #[test]
    fn missing_sequence_on_rgb_copies_the_green_flair_channel() {
        let mut rgb = vec![1, 2, 3, 4, 5, 6];
        MissingSequence::PostContrast.apply_to_rgb(&mut rgb);
        assert_eq!(rgb, [1, 2, 2, 4, 5, 5]);
        MissingSequence::Both.apply_to_rgb(&mut rgb);
        assert_eq!(rgb, [2, 2, 2, 5, 5, 5]);
    }

    #[test]
    fn missing_sequences_copy_flair_into_the_other_channels() {
        let slice = Slice {
            patient: "p".into(),
            number: 1,
            image_path: Default::default(),
            mask_path: Default::default(),
            width: 4,
            height: 4,
            // Three differently shaped channels (a ramp in each would normalise to equal ones).
            image: (0..16u32)
                .flat_map(|i| [(i * 7 % 50) as u8, (i * 5) as u8, (i * i % 97) as u8])
                .collect(),
            mask: vec![0; 16],
        };
        let norm = Normalizer::fit([slice.image.as_slice()]);
        let cfg = AugmentConfig {
            missing_sequence: 1.0,
            ..AugmentConfig::none()
        };
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let (mut both, mut post_only) = (0, 0);
        for _ in 0..40 {
            let img = prepare_sample(&slice, &norm, 4, Some((&cfg, &mut rng))).image;
            let (pre, flair, post) = (&img[..16], &img[16..32], &img[32..]);
            assert_eq!(post, flair);
            if pre == flair {
                both += 1;
            } else {
                post_only += 1;
            }
        }
        assert!(both > 5 && post_only > 5, "{both} / {post_only}");
        // Disabled: channels untouched, and no random number drawn for it.
        let plain = prepare_sample(&slice, &norm, 4, Some((&AugmentConfig::none(), &mut rng))).image;
        assert!(plain[32..] != plain[16..32] && plain[..16] != plain[16..32]);
    }
}
