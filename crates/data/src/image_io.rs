//! Decoding slice images and masks, with size limits and explicit channel / depth rules.
//!
//! Dataset slices must be 8-bit RGB (pre-contrast, FLAIR, post-contrast) as in the LGG data.
//! Documented conversions: an alpha channel is dropped; for prediction inputs
//! ([`ChannelPolicy::Lenient`]) a grayscale slice is taken as FLAIR and copied into all three
//! channels, and 16-bit data is scaled to 8 bits (per-volume normalisation makes the scale
//! irrelevant). Masks must be single-channel (or RGB with equal channels) holding 0 and 255
//! (0/1 is accepted too).

use crate::error::{DataError, Result};
use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, ImageReader, Limits};
use std::path::Path;

/// Largest width or height accepted: guards against decompression bombs.
pub const MAX_SIDE: u32 = 8192;
/// Largest decoder allocation accepted.
pub const MAX_ALLOC: u64 = 512 * 1024 * 1024;

/// Side of the LGG dataset's slices (and of the field of view the models learned).
pub const LGG_SIDE: u32 = 256;

/// How strictly to treat images that are not 8-bit RGB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelPolicy {
    /// Dataset reading: only 8-bit RGB (alpha dropped).
    Strict,
    /// Prediction inputs: also grayscale (as FLAIR) and 16-bit (scaled).
    Lenient,
}

/// An 8-bit RGB image in row-major HWC order.
#[derive(Debug, Clone, PartialEq)]
pub struct RgbImage {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// `width * height * 3` bytes.
    pub data: Vec<u8>,
    /// Whether a JPEG's EXIF orientation turned or mirrored it while decoding (a mask beside
    /// it may have been drawn either way).
    pub turned: bool,
    /// Conversions applied while reading (empty when the file was 8-bit RGB).
    pub notes: Vec<String>,
}

/// A binary mask (values 0 or 1), row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Mask {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// `width * height` values, each 0 or 1.
    pub data: Vec<u8>,
}

/// Start of the note on a slice that a JPEG's EXIF orientation turned.
pub const EXIF_TURNED: &str = "turned as its EXIF orientation says";

/// Decode an image; for a JPEG, also apply its EXIF orientation and return it (`None` when
/// nothing was turned). Other formats are read as stored: a TIFF or PNG orientation tag is rare
/// in scans, and a slice and its mask must be read alike.
fn decode(path: &Path, bytes: &[u8]) -> Result<(DynamicImage, Option<Orientation>)> {
    let mut reader = ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| DataError::io(path, e))?;
    if reader.format().is_none() {
        // Fall back to the extension so that e.g. TIFFs with odd magic still get a decoder.
        if let Ok(f) = image::ImageFormat::from_path(path) {
            reader.set_format(f);
        }
    }
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_ALLOC);
    reader.limits(limits);
    let reader_format = reader.format();
    let failed = |e: image::ImageError| DataError::Decode {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    let mut decoder = reader.into_decoder().map_err(failed)?;
    if decoder.total_bytes() > MAX_ALLOC {
        return Err(DataError::invalid(
            path,
            format!("decoding needs {} bytes, more than the {MAX_ALLOC} allowed", decoder.total_bytes()),
        ));
    }
    // A photo's EXIF orientation (a JPEG from a phone or a viewer's export) says how it is
    // shown.
    let jpeg = reader_format == Some(image::ImageFormat::Jpeg);
    let orientation = decoder.orientation().ok().filter(|o| jpeg && *o != Orientation::NoTransforms);
    let mut img = DynamicImage::from_decoder(decoder).map_err(failed)?;
    if let Some(o) = orientation {
        img.apply_orientation(o);
    }
    Ok((img, orientation))
}

/// Read a file's bytes with a clear error (dangling symlinks and directories included).
pub fn read_bytes(path: &Path) -> Result<Vec<u8>> {
    let meta = std::fs::metadata(path).map_err(|e| DataError::io(path, e))?;
    if !meta.is_file() {
        return Err(DataError::invalid(path, "is not a regular file"));
    }
    if meta.len() == 0 {
        return Err(DataError::Decode {
            path: path.to_path_buf(),
            reason: "file is empty (0 bytes)".into(),
        });
    }
    std::fs::read(path).map_err(|e| DataError::io(path, e))
}

/// Decode a slice image from bytes (`path` is only used in messages and to guess the format).
pub fn decode_slice(path: &Path, bytes: &[u8], policy: ChannelPolicy) -> Result<RgbImage> {
    let (img, turned) = decode(path, bytes)?;
    let (width, height) = (img.width(), img.height());
    if width == 0 || height == 0 {
        return Err(DataError::invalid(path, "image has zero width or height"));
    }
    let mut notes: Vec<String> = turned.map(|o| format!("{EXIF_TURNED}: {o:?}")).into_iter().collect();
    if policy == ChannelPolicy::Lenient && (width, height) != (LGG_SIDE, LGG_SIDE) {
        // Resizing changes the scale the network learned tumours at; say so beside the result.
        notes.push(format!(
            "{width}x{height}, not the {LGG_SIDE}x{LGG_SIDE} of the LGG scans the model learned from: resized, outlines less certain"
        ));
    }
    let data = match img {
        DynamicImage::ImageRgb8(b) => b.into_raw(),
        DynamicImage::ImageRgba8(b) => {
            notes.push("alpha channel dropped".to_string());
            DynamicImage::ImageRgba8(b).to_rgb8().into_raw()
        }
        DynamicImage::ImageLuma8(_) | DynamicImage::ImageLumaA8(_) if policy == ChannelPolicy::Lenient => {
            notes.push("grayscale image used as FLAIR in all three channels".to_string());
            img.to_rgb8().into_raw()
        }
        DynamicImage::ImageRgb16(_) | DynamicImage::ImageRgba16(_) | DynamicImage::ImageLuma16(_) | DynamicImage::ImageLumaA16(_)
            if policy == ChannelPolicy::Lenient =>
        {
            notes.push("16-bit image scaled to 8 bits by its maximum".to_string());
            let rgb = img.to_rgb16();
            let max = rgb.iter().copied().max().unwrap_or(0).max(1) as u32;
            rgb.iter().map(|&v| ((v as u32 * 255 + max / 2) / max) as u8).collect()
        }
        other => {
            return Err(DataError::invalid(
                path,
                format!(
                    "unsupported pixel format {:?}: expected 8-bit RGB (pre-contrast, FLAIR, post-contrast)",
                    other.color()
                ),
            ))
        }
    };
    // The model leans on FLAIR above all, and overlays show it: an empty FLAIR plane beside
    // non-empty others (seen in the dataset at the ends of a volume) deserves a word.
    if policy == ChannelPolicy::Lenient && data.chunks_exact(3).all(|p| p[1] == 0) && data.iter().any(|&v| v != 0) {
        notes.push("FLAIR channel (the second) is empty on this slice".to_string());
    }
    Ok(RgbImage {
        width,
        height,
        data,
        turned: turned.is_some(),
        notes,
    })
}

/// Read and decode a slice image file.
pub fn read_slice(path: &Path, policy: ChannelPolicy) -> Result<RgbImage> {
    decode_slice(path, &read_bytes(path)?, policy)
}

/// Decode a ground-truth mask from bytes; rejects non-binary masks.
pub fn decode_mask(path: &Path, bytes: &[u8]) -> Result<Mask> {
    let (img, _) = decode(path, bytes)?;
    let (width, height) = (img.width(), img.height());
    let gray: Vec<u8> = match img {
        DynamicImage::ImageLuma8(b) => b.into_raw(),
        DynamicImage::ImageRgb8(b) => {
            let raw = b.into_raw();
            if raw.chunks_exact(3).any(|p| p[0] != p[1] || p[1] != p[2]) {
                return Err(DataError::invalid(path, "mask is a colour image; expected one channel of 0/255"));
            }
            raw.chunks_exact(3).map(|p| p[0]).collect()
        }
        other => {
            return Err(DataError::invalid(
                path,
                format!(
                    "unsupported mask format {:?}: expected 8-bit single channel of 0/255",
                    other.color()
                ),
            ))
        }
    };
    let max = gray.iter().copied().max().unwrap_or(0);
    let on = if max == 1 { 1 } else { 255 };
    if let Some(v) = gray.iter().find(|&&v| v != 0 && v != on) {
        return Err(DataError::invalid(
            path,
            format!("mask is not binary: found value {v}; expected only 0 and 255"),
        ));
    }
    Ok(Mask {
        width,
        height,
        data: gray.into_iter().map(|v| (v != 0) as u8).collect(),
    })
}

/// Read and decode a mask file.
pub fn read_mask(path: &Path) -> Result<Mask> {
    decode_mask(path, &read_bytes(path)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(img: DynamicImage) -> Vec<u8> {
        let mut out = std::io::Cursor::new(Vec::new());
        img.write_to(&mut out, image::ImageFormat::Png).unwrap();
        out.into_inner()
    }

    #[test]
    fn rgb_is_read_as_is_and_alpha_dropped() {
        let p = Path::new("x.png");
        let rgb = image::RgbImage::from_pixel(4, 3, image::Rgb([1, 2, 3]));
        let s = decode_slice(p, &png(rgb.into()), ChannelPolicy::Strict).unwrap();
        assert_eq!((s.width, s.height, &s.data[..3]), (4, 3, &[1u8, 2, 3][..]));
        assert!(s.notes.is_empty());
        let rgba = image::RgbaImage::from_pixel(2, 2, image::Rgba([9, 8, 7, 100]));
        let s = decode_slice(p, &png(rgba.into()), ChannelPolicy::Strict).unwrap();
        assert_eq!(&s.data[..3], &[9, 8, 7]);
        assert_eq!(s.notes.len(), 1);
    }

    /// A JPEG's EXIF orientation was ignored: a phone photo stored on its side was read so.
    /// (Only JPEG's: a TIFF or PNG tag on a slice but not its mask misaligned the pair.)
    #[test]
    fn exif_orientation_is_applied() {
        // 16 wide, 8 high: the left half dark, the right half bright.
        let img = image::RgbImage::from_fn(16, 8, |x, _| image::Rgb([if x < 8 { 0 } else { 250 }; 3]));
        let mut jpeg = std::io::Cursor::new(Vec::new());
        DynamicImage::from(img).write_to(&mut jpeg, image::ImageFormat::Jpeg).unwrap();
        let jpeg = jpeg.into_inner();
        // An APP1 EXIF segment after SOI: a little-endian TIFF IFD with Orientation (0x0112) = 6,
        // "rotate 90 degrees clockwise to show".
        let mut exif = b"Exif\0\0II*\0\x08\0\0\0\x01\0".to_vec();
        exif.extend([0x12, 0x01, 3, 0, 1, 0, 0, 0, 6, 0, 0, 0, 0, 0, 0, 0]);
        let mut rotated = jpeg[..2].to_vec();
        rotated.extend([0xFF, 0xE1]);
        rotated.extend(((exif.len() + 2) as u16).to_be_bytes());
        rotated.extend(&exif);
        rotated.extend(&jpeg[2..]);
        let p = Path::new("photo.jpg");
        let plain = decode_slice(p, &jpeg, ChannelPolicy::Strict).unwrap();
        assert_eq!((plain.width, plain.height), (16, 8));
        let shown = decode_slice(p, &rotated, ChannelPolicy::Strict).unwrap();
        assert_eq!((shown.width, shown.height), (8, 16));
        assert!(shown.turned && !plain.turned);
        assert!(shown.notes[0].starts_with(EXIF_TURNED), "{:?}", shown.notes);
        // Turned clockwise: the dark left half is now on top.
        assert!(shown.data[0] < 50 && shown.data[(15 * 8) * 3] > 200, "{:?}", &shown.data[..6]);
    }

    #[test]
    fn grayscale_and_16_bit_rejected_strictly_and_converted_leniently() {
        let p = Path::new("g.png");
        let g = png(image::GrayImage::from_pixel(2, 2, image::Luma([50])).into());
        let err = decode_slice(p, &g, ChannelPolicy::Strict).unwrap_err().to_string();
        assert!(err.contains("g.png") && err.contains("8-bit RGB"), "{err}");
        assert_eq!(decode_slice(p, &g, ChannelPolicy::Lenient).unwrap().data, vec![50; 12]);
        let w = png(DynamicImage::ImageLuma16(image::ImageBuffer::from_pixel(
            2,
            1,
            image::Luma([1000u16]),
        )));
        assert!(decode_slice(p, &w, ChannelPolicy::Strict).is_err());
        let lenient = decode_slice(p, &w, ChannelPolicy::Lenient).unwrap();
        assert_eq!(lenient.data, vec![255; 6]);
        // A size other than the scans' is noted where it is predicted (leniently).
        assert!(
            lenient.notes.iter().any(|n| n.starts_with("2x1, not the 256x256")),
            "{:?}",
            lenient.notes
        );
        let full = png(image::RgbImage::new(256, 256).into());
        assert!(decode_slice(p, &full, ChannelPolicy::Lenient).unwrap().notes.is_empty());
        // FLAIR empty where the other sequences are not.
        let no_flair = png(image::RgbImage::from_pixel(256, 256, image::Rgb([40, 0, 60])).into());
        let notes = decode_slice(p, &no_flair, ChannelPolicy::Lenient).unwrap().notes;
        assert_eq!(notes, ["FLAIR channel (the second) is empty on this slice"]);
    }

    #[test]
    fn masks_must_be_binary() {
        let p = Path::new("m.png");
        let mut m = image::GrayImage::new(2, 2);
        m.put_pixel(0, 0, image::Luma([255]));
        assert_eq!(decode_mask(p, &png(m.clone().into())).unwrap().data, vec![1, 0, 0, 0]);
        m.put_pixel(1, 0, image::Luma([17]));
        let err = decode_mask(p, &png(m.into())).unwrap_err().to_string();
        assert!(err.contains("not binary") && err.contains("m.png"), "{err}");
    }

    #[test]
    fn garbage_and_empty_files_are_decode_errors() {
        let p = Path::new("t.tif");
        assert!(matches!(
            decode_slice(p, b"hello, not a tiff", ChannelPolicy::Strict),
            Err(DataError::Decode { .. })
        ));
        let mut good = png(image::RgbImage::new(8, 8).into());
        good.truncate(good.len() / 2);
        assert!(decode_slice(Path::new("t.png"), &good, ChannelPolicy::Strict).is_err());
    }
}
