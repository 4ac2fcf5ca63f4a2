//! Synthetic brain phantoms for tests and demos: an ellipse "brain" with a brighter disc
//! "tumour" on some slices, in the LGG layout (in memory, or written as PNG files).

use crate::layout::institution_of;
use crate::load::{LoadedDataset, Patient, Slice};
use std::path::Path;

/// One phantom slice of `size x size`: tumour disc of `radius` pixels (0 for none) at `(cx, cy)`.
pub fn phantom_slice(patient: &str, number: u32, size: u32, tumor: Option<(f32, f32, f32)>) -> Slice {
    let (w, h) = (size, size);
    let mut image = vec![0u8; (w * h * 3) as usize];
    let mut mask = vec![0u8; (w * h) as usize];
    for y in 0..h {
        for x in 0..w {
            let (fx, fy) = (x as f32 / w as f32 - 0.5, y as f32 / h as f32 - 0.5);
            let i = (y * w + x) as usize;
            if fx * fx / 0.16 + fy * fy / 0.2 < 1.0 {
                let base = 90 + ((x * 7 + y * 13 + number * 3) % 20) as u8;
                image[i * 3] = base;
                image[i * 3 + 1] = base;
                image[i * 3 + 2] = base.saturating_sub(10);
            }
            if let Some((cx, cy, r)) = tumor {
                let (dx, dy) = (x as f32 - cx * w as f32, y as f32 - cy * h as f32);
                if dx * dx + dy * dy <= r * r {
                    mask[i] = 1;
                    image[i * 3 + 1] = 230; // bright on FLAIR
                    image[i * 3] = image[i * 3].saturating_add(20);
                }
            }
        }
    }
    Slice {
        patient: patient.into(),
        number,
        image_path: Default::default(),
        mask_path: Default::default(),
        width: w,
        height: h,
        image,
        mask,
    }
}

/// `patients` phantom patients of `slices` slices each; tumours on the middle slices.
pub fn phantom_dataset(patients: usize, slices: u32, size: u32) -> LoadedDataset {
    let insts = ["AA", "BB", "CC"];
    let patients = (0..patients)
        .map(|p| {
            let id = format!("TCGA_{}_{:04}_20000101", insts[p % insts.len()], p);
            let slices = (1..=slices)
                .map(|n| {
                    let mid = (slices as f32 + 1.0) / 2.0;
                    let d = (n as f32 - mid).abs();
                    let tumor = (d < slices as f32 / 4.0).then_some((0.4 + 0.05 * (p % 3) as f32, 0.45, size as f32 * (0.15 - 0.03 * d)));
                    phantom_slice(&id, n, size, tumor)
                })
                .collect();
            Patient {
                institution: institution_of(&id),
                id,
                slices,
            }
        })
        .collect();
    LoadedDataset {
        root: Default::default(),
        patients,
        clinical: None,
        content_key: "phantom".into(),
        from_cache: false,
        cached: false,
    }
}

/// Write a dataset in the Kaggle layout as PNG files (`<root>/<patient>/<patient>_<n>.png`).
pub fn write_dataset(ds: &LoadedDataset, root: &Path) -> std::io::Result<()> {
    for p in &ds.patients {
        let dir = root.join(&p.id);
        std::fs::create_dir_all(&dir)?;
        for s in &p.slices {
            let img = image::RgbImage::from_raw(s.width, s.height, s.image.clone()).ok_or_else(|| std::io::Error::other("size"))?;
            img.save(dir.join(format!("{}_{}.png", p.id, s.number)))
                .map_err(std::io::Error::other)?;
            let m = image::GrayImage::from_raw(s.width, s.height, s.mask.iter().map(|&v| v * 255).collect())
                .ok_or_else(|| std::io::Error::other("size"))?;
            m.save(dir.join(format!("{}_{}_mask.png", p.id, s.number)))
                .map_err(std::io::Error::other)?;
        }
    }
    Ok(())
}

/// A NIfTI-1 header (352 bytes, the data to follow) for a volume of `dims` (the rank is their
/// count), `datatype` and `bitpix` as the format codes them, voxels of 0.9 x 0.9 x 3 mm and no
/// orientation: what tests build their NIfTI files on.
pub fn nifti_header(dims: &[i16], datatype: i16, bitpix: i16) -> Vec<u8> {
    let mut h = vec![0u8; 352];
    h[0..4].copy_from_slice(&348i32.to_le_bytes());
    let mut d = [1i16; 8];
    d[0] = dims.len() as i16;
    d[1..=dims.len()].copy_from_slice(dims);
    for (i, v) in d.iter().enumerate() {
        h[40 + 2 * i..42 + 2 * i].copy_from_slice(&v.to_le_bytes());
    }
    h[70..72].copy_from_slice(&datatype.to_le_bytes());
    h[72..74].copy_from_slice(&bitpix.to_le_bytes());
    for (i, v) in [1.0f32, 0.9, 0.9, 3.0].iter().enumerate() {
        h[76 + 4 * i..80 + 4 * i].copy_from_slice(&v.to_le_bytes());
    }
    h[108..112].copy_from_slice(&352f32.to_le_bytes());
    h[344..348].copy_from_slice(b"n+1\0");
    h
}

/// A synthetic 16-bit monochrome DICOM slice (`size x size`, a horizontal ramp offset by
/// `number`), as a file's bytes: instance `number` of series `series`, encoded with
/// `transfer_syntax`, pixel spacing `spacing` (row, column; mm) and 5 mm axial slices, with the
/// identifiers a real MR slice carries (study, SOP instance `1.2.826.0.1.<number>`, frame of
/// reference) and a patient named `Phantom^Test`.
pub fn dicom_slice(number: u32, series: &str, size: u16, transfer_syntax: &str, spacing: [&str; 2]) -> Vec<u8> {
    let n = size as usize;
    let ramp: Vec<u16> = (0..n * n).map(|i| ((i % n) * 40 + number as usize * 100) as u16).collect();
    dicom_slice_of(number, series, size, transfer_syntax, spacing, &ramp)
}

/// What every phantom image carries: a `size x size` 16-bit monochrome pixel format,
/// InstanceNumber `number`, series `series`, SOP class `class` and instance `instance`, and the
/// phantom study, frame of reference and patient (`Phantom^Test`).
fn phantom_image(size: u16, number: u32, series: &str, class: &str, instance: &str) -> dicom_object::InMemDicomObject {
    use dicom_core::{DataElement, PrimitiveValue, VR};
    use dicom_dictionary_std::tags;
    let mut obj = dicom_object::InMemDicomObject::new_empty();
    for (tag, v) in [
        (tags::ROWS, size),
        (tags::COLUMNS, size),
        (tags::BITS_ALLOCATED, 16),
        (tags::BITS_STORED, 16),
        (tags::SAMPLES_PER_PIXEL, 1),
        (tags::PIXEL_REPRESENTATION, 0),
    ] {
        obj.put(DataElement::new(tag, VR::US, PrimitiveValue::from(v)));
    }
    obj.put(DataElement::new(
        tags::INSTANCE_NUMBER,
        VR::IS,
        PrimitiveValue::from(number.to_string()),
    ));
    obj.put(DataElement::new(tags::SERIES_INSTANCE_UID, VR::UI, PrimitiveValue::from(series)));
    for (tag, uid) in [
        (tags::SOP_CLASS_UID, class),
        (tags::SOP_INSTANCE_UID, instance),
        (tags::STUDY_INSTANCE_UID, "1.2.826.0.7"),
        (tags::FRAME_OF_REFERENCE_UID, "1.2.826.0.9"),
    ] {
        obj.put(DataElement::new(tag, VR::UI, PrimitiveValue::from(uid)));
    }
    obj.put(DataElement::new(tags::PATIENT_NAME, VR::PN, PrimitiveValue::from("Phantom^Test")));
    obj.put(DataElement::new(tags::PATIENT_ID, VR::LO, PrimitiveValue::from("PH1")));
    obj
}

/// `obj` as a file's bytes, with `pixels` (16-bit samples) as its Pixel Data.
fn phantom_file(mut obj: dicom_object::InMemDicomObject, pixels: &[u16], transfer_syntax: &str, class: &str, instance: &str) -> Vec<u8> {
    use dicom_core::{DataElement, PrimitiveValue, VR};
    let bytes: Vec<u8> = pixels.iter().flat_map(|v| v.to_le_bytes()).collect();
    obj.put(DataElement::new(
        dicom_dictionary_std::tags::PIXEL_DATA,
        VR::OW,
        PrimitiveValue::from(bytes),
    ));
    let meta = dicom_object::FileMetaTableBuilder::new()
        .transfer_syntax(transfer_syntax)
        .media_storage_sop_class_uid(class)
        .media_storage_sop_instance_uid(instance);
    let mut out = Vec::new();
    // An in-memory object with every required meta field: writing cannot fail.
    obj.with_meta(meta)
        .expect("complete meta")
        .write_all(&mut out)
        .expect("in-memory write");
    out
}

/// [`dicom_slice`] holding `pixels` (`size x size`, row-major) instead of its ramp.
pub fn dicom_slice_of(number: u32, series: &str, size: u16, transfer_syntax: &str, spacing: [&str; 2], pixels: &[u16]) -> Vec<u8> {
    use dicom_core::{DataElement, PrimitiveValue, VR};
    use dicom_dictionary_std::tags;
    const MR: &str = "1.2.840.10008.5.1.4.1.1.4";
    let instance = format!("1.2.826.0.1.{number}");
    let mut obj = phantom_image(size, number, series, MR, &instance);
    let strs = |values: &[&str]| PrimitiveValue::Strs(values.iter().map(|s| s.to_string()).collect());
    obj.put(DataElement::new(
        tags::IMAGE_ORIENTATION_PATIENT,
        VR::DS,
        strs(&["1", "0", "0", "0", "1", "0"]),
    ));
    obj.put(DataElement::new(tags::PIXEL_SPACING, VR::DS, strs(&spacing)));
    obj.put(DataElement::new(tags::SLICE_THICKNESS, VR::DS, PrimitiveValue::from("5")));
    obj.put(DataElement::new(
        tags::IMAGE_POSITION_PATIENT,
        VR::DS,
        strs(&["0", "0", &(5 * number).to_string()]),
    ));
    phantom_file(obj, pixels, transfer_syntax, MR, &instance)
}

/// A synthetic Enhanced MR image (multi-frame, as newer scanners export a series in one file):
/// one `size x size` frame per entry of `frames`, (its position along z in mm, its 16-bit
/// pixels), stored in that order, native explicit VR little endian. Each frame's position is in
/// its own Plane Position functional group; orientation (axial), pixel spacing 0.5 mm, 5 mm
/// thickness and a rescale of 2x + 0 are shared. UIDs and patient as [`dicom_slice`]'s, SOP
/// instance `1.2.826.0.2.<instance>`.
pub fn dicom_multiframe(instance: u32, series: &str, size: u16, frames: &[(f64, Vec<u16>)]) -> Vec<u8> {
    use dicom_core::value::DataSetSequence;
    use dicom_core::{DataElement, PrimitiveValue, VR};
    use dicom_dictionary_std::tags;
    use dicom_object::InMemDicomObject;
    const ENHANCED_MR: &str = "1.2.840.10008.5.1.4.1.1.4.1";
    let sop_instance = format!("1.2.826.0.2.{instance}");
    let ds = |values: &[&str]| PrimitiveValue::Strs(values.iter().map(|s| s.to_string()).collect());
    // A functional group: a sequence of one item.
    let group = |seq, elements: Vec<DataElement<InMemDicomObject>>| {
        DataElement::new(
            seq,
            VR::SQ,
            DataSetSequence::from(vec![InMemDicomObject::from_element_iter(elements)]),
        )
    };
    let mut obj = phantom_image(size, instance, series, ENHANCED_MR, &sop_instance);
    obj.put(DataElement::new(
        tags::NUMBER_OF_FRAMES,
        VR::IS,
        PrimitiveValue::from(frames.len().to_string()),
    ));
    let shared = InMemDicomObject::from_element_iter([
        group(
            tags::PIXEL_MEASURES_SEQUENCE,
            vec![
                DataElement::new(tags::PIXEL_SPACING, VR::DS, ds(&["0.5", "0.5"])),
                DataElement::new(tags::SLICE_THICKNESS, VR::DS, ds(&["5"])),
            ],
        ),
        group(
            tags::PLANE_ORIENTATION_SEQUENCE,
            vec![DataElement::new(
                tags::IMAGE_ORIENTATION_PATIENT,
                VR::DS,
                ds(&["1", "0", "0", "0", "1", "0"]),
            )],
        ),
        group(
            tags::PIXEL_VALUE_TRANSFORMATION_SEQUENCE,
            vec![
                DataElement::new(tags::RESCALE_SLOPE, VR::DS, ds(&["2"])),
                DataElement::new(tags::RESCALE_INTERCEPT, VR::DS, ds(&["0"])),
            ],
        ),
    ]);
    obj.put(DataElement::new(
        tags::SHARED_FUNCTIONAL_GROUPS_SEQUENCE,
        VR::SQ,
        DataSetSequence::from(vec![shared]),
    ));
    let per_frame: Vec<InMemDicomObject> = frames
        .iter()
        .map(|(z, _)| {
            let position = DataElement::new(tags::IMAGE_POSITION_PATIENT, VR::DS, ds(&["0", "0", &z.to_string()]));
            InMemDicomObject::from_element_iter([group(tags::PLANE_POSITION_SEQUENCE, vec![position])])
        })
        .collect();
    obj.put(DataElement::new(
        tags::PER_FRAME_FUNCTIONAL_GROUPS_SEQUENCE,
        VR::SQ,
        DataSetSequence::from(per_frame),
    ));
    let pixels: Vec<u16> = frames.iter().flat_map(|(_, p)| p.iter().copied()).collect();
    phantom_file(obj, &pixels, "1.2.840.10008.1.2.1", ENHANCED_MR, &sop_instance)
}

/// A binary SEG's frames read back (as [`crate::dicom_seg::seg_file_bytes`] writes them): the SOP
/// instance each frame's source image is, and each frame as 0/1 pixels, row-major.
#[derive(Debug, Clone)]
pub struct SegFrames {
    /// Rows of a frame.
    pub rows: usize,
    /// Columns.
    pub cols: usize,
    /// Each frame's ReferencedSOPInstanceUID (its source image).
    pub sources: Vec<String>,
    /// Each frame's ReferencedFrameNumber (its source frame in a multi-frame image), if any.
    pub source_frames: Vec<Option<u32>>,
    /// Each frame's pixels, 0/1.
    pub masks: Vec<Vec<u8>>,
}

/// Read a binary DICOM Segmentation's frames and their source images, for tests (not a general
/// or hardened SEG reader: one segment, uncompressed, trusted input).
pub fn read_seg(bytes: &[u8]) -> Result<SegFrames, String> {
    use dicom_core::Tag;
    use dicom_dictionary_std::tags;
    use dicom_object::InMemDicomObject;
    let start = if bytes.get(128..132) == Some(b"DICM") { 128 } else { 0 };
    let obj = dicom_object::OpenFileOptions::new()
        .read_preamble(dicom_object::file::ReadPreamble::Never)
        .from_reader(&bytes[start..])
        .map_err(|e| format!("not a readable DICOM file: {e}"))?;
    let number = |tag: Tag| -> Result<usize, String> {
        obj.element(tag)
            .map_err(|_| format!("no {tag}"))?
            .to_int::<u32>()
            .map(|v| v as usize)
            .map_err(|e| format!("{tag}: {e}"))
    };
    let (rows, cols, frames) = (number(tags::ROWS)?, number(tags::COLUMNS)?, number(tags::NUMBER_OF_FRAMES)?);
    if number(tags::BITS_ALLOCATED)? != 1 {
        return Err("not a binary segmentation".into());
    }
    let items = |o: &InMemDicomObject, tag: Tag| -> Result<Vec<InMemDicomObject>, String> {
        Ok(o.element(tag)
            .map_err(|_| format!("no {tag}"))?
            .items()
            .ok_or(format!("{tag} is not a sequence"))?
            .to_vec())
    };
    let (mut sources, mut source_frames) = (Vec::new(), Vec::new());
    for frame in items(&obj, tags::PER_FRAME_FUNCTIONAL_GROUPS_SEQUENCE)? {
        let derivation = items(&frame, tags::DERIVATION_IMAGE_SEQUENCE)?;
        let source = items(derivation.first().ok_or("empty derivation")?, tags::SOURCE_IMAGE_SEQUENCE)?;
        let source = source.first().ok_or("empty source image sequence")?;
        let uid = source
            .element(tags::REFERENCED_SOP_INSTANCE_UID)
            .map_err(|_| "no ReferencedSOPInstanceUID")?
            .to_str()
            .map_err(|e| e.to_string())?;
        sources.push(uid.trim_end_matches(['\0', ' ']).to_string());
        source_frames.push(
            source
                .element(tags::REFERENCED_FRAME_NUMBER)
                .ok()
                .and_then(|e| e.to_int::<u32>().ok()),
        );
    }
    let pixels = obj
        .element(tags::PIXEL_DATA)
        .map_err(|_| "no pixel data")?
        .to_bytes()
        .map_err(|e| e.to_string())?;
    let n = rows * cols;
    if sources.len() != frames || pixels.len() * 8 < frames * n {
        return Err(format!(
            "{frames} frames declared, {} described, {} bytes of pixels",
            sources.len(),
            pixels.len()
        ));
    }
    let masks = (0..frames)
        .map(|f| (0..n).map(|i| (pixels[(f * n + i) / 8] >> ((f * n + i) % 8)) & 1).collect())
        .collect();
    Ok(SegFrames {
        rows,
        cols,
        sources,
        source_frames,
        masks,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_phantoms_load_back_identically() {
        let ds = phantom_dataset(2, 5, 32);
        let dir = tempfile::tempdir().unwrap();
        write_dataset(&ds, dir.path()).unwrap();
        let back = crate::load_dataset(dir.path(), &Default::default()).unwrap();
        assert_eq!(back.patients.len(), 2);
        for (a, b) in ds.patients.iter().zip(&back.patients) {
            for (x, y) in a.slices.iter().zip(&b.slices) {
                assert_eq!((&x.image, &x.mask), (&y.image, &y.mask));
            }
        }
        assert!(back.slices().any(|s| s.has_tumor()) && back.slices().any(|s| !s.has_tumor()));
    }
}
