//! Pictures for people: slices with masks drawn over them, labelled tiles and grids.
//!
//! The background is the FLAIR channel in gray (the sequence the masks were drawn on). Ground
//! truth is drawn as a green outline; a prediction as a translucent red fill with a red outline.

use ab_glyph::{FontRef, PxScale};
use image::{Rgb, RgbImage};

/// DejaVu Sans Mono, compiled in so pictures look the same everywhere.
pub static FONT_BYTES: &[u8] = include_bytes!("../../../assets/fonts/DejaVuSansMono.ttf");

/// The embedded label font (DejaVu Sans Mono).
pub fn font() -> FontRef<'static> {
    // The font is compiled in; failing to parse it is a build defect, caught by the tests.
    FontRef::try_from_slice(FONT_BYTES).expect("embedded font parses")
}

/// Ground-truth colour (green).
pub const TRUTH: Rgb<u8> = Rgb([40, 220, 60]);
/// Prediction colour (red).
pub const PREDICTION: Rgb<u8> = Rgb([255, 40, 40]);

/// The FLAIR channel of an RGB (HWC) slice as a gray RGB image.
pub fn flair_gray(rgb: &[u8], w: u32, h: u32) -> RgbImage {
    RgbImage::from_fn(w, h, |x, y| {
        let v = rgb[((y * w + x) * 3 + 1) as usize];
        Rgb([v, v, v])
    })
}

/// The slice as stored (pre-contrast, FLAIR, post-contrast as R, G, B), as in the Kaggle notebooks.
pub fn composite(rgb: &[u8], w: u32, h: u32) -> RgbImage {
    RgbImage::from_raw(w, h, rgb.to_vec()).unwrap_or_else(|| RgbImage::new(w, h))
}

fn is_edge(mask: &[u8], w: u32, h: u32, x: u32, y: u32) -> bool {
    let at = |x: i64, y: i64| x >= 0 && y >= 0 && x < w as i64 && y < h as i64 && mask[(y as u32 * w + x as u32) as usize] != 0;
    let (xi, yi) = (x as i64, y as i64);
    at(xi, yi) && !(at(xi - 1, yi) && at(xi + 1, yi) && at(xi, yi - 1) && at(xi, yi + 1))
}

/// Draw the outline of a 0/1 mask.
pub fn draw_outline(img: &mut RgbImage, mask: &[u8], color: Rgb<u8>) {
    let (w, h) = img.dimensions();
    for y in 0..h {
        for x in 0..w {
            if is_edge(mask, w, h, x, y) {
                img.put_pixel(x, y, color);
            }
        }
    }
}

/// Blend a translucent fill of a 0/1 mask (alpha 0..1).
pub fn draw_fill(img: &mut RgbImage, mask: &[u8], color: Rgb<u8>, alpha: f32) {
    let w = img.width();
    for (i, &m) in mask.iter().enumerate() {
        if m != 0 {
            let (x, y) = (i as u32 % w, i as u32 / w);
            let p = img.get_pixel_mut(x, y);
            for c in 0..3 {
                p.0[c] = (p.0[c] as f32 * (1.0 - alpha) + color.0[c] as f32 * alpha).round() as u8;
            }
        }
    }
}

/// FLAIR with ground truth (green outline) and/or prediction (red fill + outline).
pub fn overlay(rgb: &[u8], w: u32, h: u32, truth: Option<&[u8]>, prediction: Option<&[u8]>) -> RgbImage {
    let mut img = flair_gray(rgb, w, h);
    if let Some(p) = prediction {
        draw_fill(&mut img, p, PREDICTION, 0.35);
        draw_outline(&mut img, p, PREDICTION);
    }
    if let Some(t) = truth {
        draw_outline(&mut img, t, TRUTH);
    }
    img
}

/// Write text lines at the top-left on a dark band, scaled to the tile width.
pub fn label(img: &mut RgbImage, lines: &[&str]) {
    let font = font();
    let px = (img.width() as f32 / 18.0).clamp(9.0, 16.0);
    let scale = PxScale::from(px);
    let band = (lines.len() as f32 * (px + 2.0) + 4.0) as u32;
    for y in 0..band.min(img.height()) {
        for x in 0..img.width() {
            let p = img.get_pixel_mut(x, y);
            p.0 = p.0.map(|v| v / 3);
        }
    }
    for (i, line) in lines.iter().enumerate() {
        imageproc::drawing::draw_text_mut(img, Rgb([255, 255, 255]), 3, 2 + (i as f32 * (px + 2.0)) as i32, scale, &font, line);
    }
}

/// Lay tiles out in a grid with `cols` columns and a small gap; tiles may differ in size.
pub fn grid(tiles: &[RgbImage], cols: usize) -> RgbImage {
    let cols = cols.max(1);
    let gap = 4;
    let tw = tiles.iter().map(|t| t.width()).max().unwrap_or(1);
    let th = tiles.iter().map(|t| t.height()).max().unwrap_or(1);
    let rows = tiles.len().div_ceil(cols).max(1);
    let ncols = cols.min(tiles.len().max(1));
    let mut out = RgbImage::from_pixel(ncols as u32 * (tw + gap) + gap, rows as u32 * (th + gap) + gap, Rgb([24, 24, 24]));
    for (i, t) in tiles.iter().enumerate() {
        let (c, r) = ((i % cols) as u32, (i / cols) as u32);
        image::imageops::replace(&mut out, t, (gap + c * (tw + gap)) as i64, (gap + r * (th + gap)) as i64);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlay_draws_truth_and_prediction_where_they_are() {
        let (w, h) = (8, 8);
        let rgb = vec![100u8; 8 * 8 * 3];
        let mut mask = vec![0u8; 64];
        for y in 2..6 {
            for x in 2..6 {
                mask[y * 8 + x] = 1;
            }
        }
        let img = overlay(&rgb, w, h, Some(&mask), Some(&mask));
        assert_eq!(*img.get_pixel(2, 2), TRUTH, "outline pixel");
        assert_eq!(*img.get_pixel(0, 0), Rgb([100, 100, 100]), "background untouched");
        let inside = img.get_pixel(3, 3);
        assert!(inside.0[0] > inside.0[1], "translucent red fill inside");
    }

    #[test]
    fn labels_and_grids() {
        let mut t = RgbImage::from_pixel(64, 64, Rgb([200, 200, 200]));
        label(&mut t, &["CS_4941 #12"]);
        assert!(t.pixels().any(|p| p.0[0] > 150), "text drawn on the darkened band");
        let g = grid(&[t.clone(), t.clone(), t], 2);
        assert_eq!(g.dimensions(), (2 * 68 + 4, 2 * 68 + 4));
    }
}
