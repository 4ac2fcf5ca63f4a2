//! Writes the seed corpora for the fuzz targets in `fuzz/` (see `fuzz/README.md`):
//!
//! ```text
//! cargo run --release -p tumorscan-data --example fuzz_seeds -- fuzz/corpus [REAL_SLICE_OR_MASK ...]
//! ```
//!
//! Small synthetic files in every pixel format and container the readers accept (plus a few
//! they refuse), and each real slice or mask given, downscaled to 32x32 and written as both
//! PNG and TIFF. Every seed is checked against the reader it is meant for.

use dicom_core::{dicom_value, DataElement, PrimitiveValue, VR};
use dicom_dictionary_std::tags;
use dicom_object::{FileMetaTableBuilder, InMemDicomObject};
use image::{DynamicImage, ImageFormat};
use std::io::Write;
use std::path::{Path, PathBuf};
use tumorscan_data::image_io::{decode_mask, decode_slice, ChannelPolicy};

fn encode(img: &DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, format).expect("encode");
    out.into_inner()
}

fn gradient(w: u32, h: u32) -> image::RgbImage {
    image::RgbImage::from_fn(w, h, |x, y| image::Rgb([(x * 16) as u8, (y * 16) as u8, ((x + y) * 8) as u8]))
}

fn image_seeds() -> Vec<(String, Vec<u8>)> {
    let rgb = DynamicImage::ImageRgb8(gradient(16, 16));
    let rgba = DynamicImage::ImageRgba8(DynamicImage::ImageRgb8(gradient(8, 8)).to_rgba8());
    let gray = DynamicImage::ImageLuma8(image::GrayImage::from_fn(16, 16, |x, y| image::Luma([(x * y) as u8])));
    let gray16 = DynamicImage::ImageLuma16(image::ImageBuffer::from_fn(8, 8, |x, y| image::Luma([(x * 4000 + y) as u16])));
    let rgb16 = DynamicImage::ImageRgb16(image::ImageBuffer::from_fn(8, 8, |x, y| {
        image::Rgb([x as u16 * 900, y as u16 * 900, 7])
    }));
    let mask = DynamicImage::ImageLuma8(image::GrayImage::from_fn(16, 16, |x, y| {
        image::Luma([if (4..10).contains(&x) && (5..12).contains(&y) { 255 } else { 0 }])
    }));
    let mask01 = DynamicImage::ImageLuma8(image::GrayImage::from_fn(8, 8, |x, _| image::Luma([(x > 3) as u8])));
    let mut v = Vec::new();
    for (name, img) in [
        ("rgb8", &rgb),
        ("rgba8", &rgba),
        ("gray8", &gray),
        ("gray16", &gray16),
        ("rgb16", &rgb16),
        ("mask", &mask),
        ("mask01", &mask01),
    ] {
        v.push((format!("{name}.png"), encode(img, ImageFormat::Png)));
        v.push((format!("{name}.tif"), encode(img, ImageFormat::Tiff)));
    }
    v.push(("rgb8.jpg".into(), encode(&rgb, ImageFormat::Jpeg)));
    v
}

/// A NIfTI-1 single-file header (little endian unless `big`).
fn nifti_header(dims: &[i16], datatype: i16, bitpix: i16, vox_offset: f32, big: bool) -> Vec<u8> {
    let i16b = |v: i16| if big { v.to_be_bytes() } else { v.to_le_bytes() };
    let f32b = |v: f32| if big { v.to_be_bytes() } else { v.to_le_bytes() };
    let mut h = vec![0u8; 352];
    h[0..4].copy_from_slice(&if big { 348i32.to_be_bytes() } else { 348i32.to_le_bytes() });
    let mut d = [1i16; 8];
    d[0] = dims.len() as i16;
    d[1..=dims.len()].copy_from_slice(dims);
    for (i, v) in d.iter().enumerate() {
        h[40 + 2 * i..42 + 2 * i].copy_from_slice(&i16b(*v));
    }
    h[70..72].copy_from_slice(&i16b(datatype));
    h[72..74].copy_from_slice(&i16b(bitpix));
    for (i, v) in [1.0f32, 0.9, 0.9, 3.0].iter().enumerate() {
        h[76 + 4 * i..80 + 4 * i].copy_from_slice(&f32b(*v));
    }
    h[108..112].copy_from_slice(&f32b(vox_offset));
    h[344..348].copy_from_slice(b"n+1\0");
    h
}

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn nifti_seeds() -> Vec<(String, Vec<u8>)> {
    let mut v = Vec::new();
    // float32 4x4x3, plain and gzipped.
    let mut f32vol = nifti_header(&[4, 4, 3], 16, 32, 352.0, false);
    for i in 0..48 {
        f32vol.extend_from_slice(&((i % 4) as f32 * 1.5 + (i / 16) as f32).to_le_bytes());
    }
    v.push(("f32.nii".into(), f32vol.clone()));
    v.push(("f32.nii.gz".into(), gz(&f32vol)));
    // uint8 4D with three sequences.
    let mut rgb = nifti_header(&[4, 4, 2, 3], 2, 8, 352.0, false);
    rgb.extend((0..96u32).map(|i| (i * 3) as u8));
    v.push(("u8_4d.nii".into(), rgb));
    // int16 with scl_slope, gzipped.
    let mut i16vol = nifti_header(&[4, 4, 2], 4, 16, 352.0, false);
    i16vol[112..116].copy_from_slice(&2.0f32.to_le_bytes());
    for i in 0..32i16 {
        i16vol.extend_from_slice(&(i * 37 - 300).to_le_bytes());
    }
    v.push(("i16_slope.nii.gz".into(), gz(&i16vol)));
    // float64 2D, big endian.
    let mut be = nifti_header(&[3, 3], 64, 64, 352.0, true);
    for i in 0..9 {
        be.extend_from_slice(&(i as f64 * 0.25).to_be_bytes());
    }
    v.push(("f64_be.nii".into(), be));
    // uint16 with one 16-byte extension, vox_offset 368.
    let mut ext = nifti_header(&[2, 2, 2], 512, 16, 368.0, false);
    ext[348] = 1;
    ext.extend_from_slice(&16i32.to_le_bytes());
    ext.extend_from_slice(&6i32.to_le_bytes());
    ext.extend_from_slice(b"comment\0");
    for i in 0..8u16 {
        ext.extend_from_slice(&(i * 1000).to_le_bytes());
    }
    v.push(("u16_ext.nii".into(), ext));
    v
}

/// A DICOM slice of `size`x`size`, `bits` bits, as a file's bytes.
fn dicom(ts: &str, size: u16, bits: u16, signed: bool, preamble: bool, sequence: bool) -> Vec<u8> {
    let mut obj = InMemDicomObject::new_empty();
    for (tag, v) in [
        (tags::ROWS, size),
        (tags::COLUMNS, size),
        (tags::BITS_ALLOCATED, bits),
        (tags::BITS_STORED, bits),
        (tags::HIGH_BIT, bits - 1),
        (tags::SAMPLES_PER_PIXEL, 1),
        (tags::PIXEL_REPRESENTATION, signed as u16),
    ] {
        obj.put(DataElement::new(tag, VR::US, PrimitiveValue::from(v)));
    }
    obj.put(DataElement::new(
        tags::PHOTOMETRIC_INTERPRETATION,
        VR::CS,
        PrimitiveValue::from("MONOCHROME2"),
    ));
    obj.put(DataElement::new(tags::INSTANCE_NUMBER, VR::IS, PrimitiveValue::from("7")));
    obj.put(DataElement::new(
        tags::SERIES_INSTANCE_UID,
        VR::UI,
        PrimitiveValue::from("1.2.826.0.1.3"),
    ));
    obj.put(DataElement::new(tags::PIXEL_SPACING, VR::DS, dicom_value!(Strs, ["0.5", "0.5"])));
    obj.put(DataElement::new(tags::SLICE_THICKNESS, VR::DS, PrimitiveValue::from("5")));
    if signed {
        obj.put(DataElement::new(tags::RESCALE_SLOPE, VR::DS, PrimitiveValue::from("2")));
        obj.put(DataElement::new(tags::RESCALE_INTERCEPT, VR::DS, PrimitiveValue::from("-1024")));
    }
    if sequence {
        let mut item = InMemDicomObject::new_empty();
        item.put(DataElement::new(
            tags::REFERENCED_SOP_CLASS_UID,
            VR::UI,
            PrimitiveValue::from("1.2.840.10008.5.1.4.1.1.4"),
        ));
        item.put(DataElement::new(
            tags::REFERENCED_SOP_INSTANCE_UID,
            VR::UI,
            PrimitiveValue::from("1.2.3.4"),
        ));
        obj.put(DataElement::new(
            tags::REFERENCED_IMAGE_SEQUENCE,
            VR::SQ,
            dicom_core::value::DataSetSequence::from(vec![item]),
        ));
    }
    let n = size as usize * size as usize;
    let pixels: Vec<u8> = if bits == 8 {
        (0..n).map(|i| (i * 5) as u8).collect()
    } else {
        (0..n).flat_map(|i| ((i * 300) as u16).to_le_bytes()).collect()
    };
    let vr = if bits == 8 { VR::OB } else { VR::OW };
    obj.put(DataElement::new(tags::PIXEL_DATA, vr, PrimitiveValue::from(pixels)));
    let meta = FileMetaTableBuilder::new()
        .transfer_syntax(ts)
        .media_storage_sop_class_uid("1.2.840.10008.5.1.4.1.1.4")
        .media_storage_sop_instance_uid("1.2.826.0.1.3.7");
    let mut out = Vec::new();
    obj.with_meta(meta).unwrap().write_all(&mut out).unwrap();
    if preamble {
        out
    } else {
        out[128..].to_vec()
    }
}

fn dicom_seeds() -> Vec<(String, Vec<u8>)> {
    let explicit = "1.2.840.10008.1.2.1";
    let implicit = "1.2.840.10008.1.2";
    vec![
        ("explicit_u16.dcm".into(), dicom(explicit, 8, 16, false, true, false)),
        ("implicit_u8.dcm".into(), dicom(implicit, 8, 8, false, true, false)),
        (
            "explicit_s16_rescale_nopreamble.dcm".into(),
            dicom(explicit, 6, 16, true, false, false),
        ),
        ("implicit_sequence.dcm".into(), dicom(implicit, 4, 16, false, true, true)),
        ("explicit_sequence.dcm".into(), dicom(explicit, 4, 8, false, false, true)),
        (
            "big_endian_refused.dcm".into(),
            dicom("1.2.840.10008.1.2.2", 4, 16, false, true, false),
        ),
    ]
}

fn real_seeds(files: &[PathBuf]) -> Vec<(String, Vec<u8>)> {
    let mut v = Vec::new();
    for f in files {
        let img = image::open(f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        let small = img.resize_exact(32, 32, image::imageops::FilterType::Nearest);
        let stem = f.file_stem().unwrap().to_string_lossy().to_string();
        v.push((format!("real_{stem}.png"), encode(&small, ImageFormat::Png)));
        v.push((format!("real_{stem}.tif"), encode(&small, ImageFormat::Tiff)));
    }
    v
}

fn write(dir: &Path, seeds: &[(String, Vec<u8>)]) {
    std::fs::create_dir_all(dir).unwrap();
    for (name, bytes) in seeds {
        std::fs::write(dir.join(format!("seed-{name}")), bytes).unwrap();
    }
    let total: usize = seeds.iter().map(|(_, b)| b.len()).sum();
    println!("{}: {} seeds, {total} bytes", dir.display(), seeds.len());
}

fn main() {
    let args: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    let Some((out, real)) = args.split_first() else {
        eprintln!("usage: fuzz_seeds OUT_DIR [REAL_SLICE_OR_MASK ...]");
        std::process::exit(2);
    };
    let mut images = image_seeds();
    images.extend(real_seeds(real));
    for (name, b) in &images {
        let p = Path::new(name);
        let ok = decode_slice(p, b, ChannelPolicy::Lenient).is_ok() || decode_mask(p, b).is_ok();
        assert!(ok, "image seed {name} is not readable");
    }
    write(&out.join("image_slice"), &images);
    let niftis = nifti_seeds();
    for (name, b) in &niftis {
        if let Err(e) = tumorscan_data::nifti::read_bytes(name, b) {
            panic!("NIfTI seed {name}: {e}");
        }
    }
    write(&out.join("nifti"), &niftis);
    let dicoms = dicom_seeds();
    for (name, b) in &dicoms {
        let r = tumorscan_data::dicom::read_one_bytes(name, b);
        assert_eq!(r.is_ok(), !name.contains("refused"), "DICOM seed {name}: {:?}", r.err());
    }
    write(&out.join("dicom"), &dicoms);
}
