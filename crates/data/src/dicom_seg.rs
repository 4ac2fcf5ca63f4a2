//! The predicted mask of a DICOM series as a DICOM Segmentation (SEG, binary, one segment),
//! the object DICOM viewers (OHIF, 3D Slicer, PACS) load over the series it refers to: one
//! frame per source slice, each at its slice's ImagePositionPatient and naming its source image,
//! in the source's study and frame of reference, the patient and study attributes copied
//! ([`COPIED`]). Written uncompressed (explicit VR little endian), frames packed one bit per
//! pixel. The series must carry its identifiers (Study and Series UIDs, FrameOfReferenceUID, a
//! distinct SOP Instance UID per slice) and geometry (ImagePositionPatient,
//! ImageOrientationPatient, PixelSpacing on every slice, all slices parallel, of one size and at
//! distinct positions, a slice thickness or spacing); otherwise no SEG is written and
//! [`check_series`] says why.

use crate::volume::{DicomSeries, InputSlice};
use dicom_core::value::DataSetSequence;
use dicom_core::{DataElement, PrimitiveValue, Tag, VR};
use dicom_dictionary_std::tags;
use dicom_object::{FileMetaTableBuilder, InMemDicomObject};

/// Segmentation Storage.
pub const SEG_SOP_CLASS: &str = "1.2.840.10008.5.1.4.1.1.66.4";
const EXPLICIT_LE: &str = "1.2.840.10008.1.2.1";

/// The Patient and General Study attributes a derived object copies from its source, with
/// their VRs and names (all are type 2 in a SEG, so each is written, empty when the source lacks
/// it).
pub const COPIED: [(Tag, VR, &str); 9] = [
    (tags::PATIENT_NAME, VR::PN, "PatientName"),
    (tags::PATIENT_ID, VR::LO, "PatientID"),
    (tags::PATIENT_BIRTH_DATE, VR::DA, "PatientBirthDate"),
    (tags::PATIENT_SEX, VR::CS, "PatientSex"),
    (tags::STUDY_DATE, VR::DA, "StudyDate"),
    (tags::STUDY_TIME, VR::TM, "StudyTime"),
    (tags::REFERRING_PHYSICIAN_NAME, VR::PN, "ReferringPhysicianName"),
    (tags::STUDY_ID, VR::SH, "StudyID"),
    (tags::ACCESSION_NUMBER, VR::SH, "AccessionNumber"),
];

/// Who made the segmentation, for the SEG's equipment and algorithm attributes.
#[derive(Debug, Clone)]
pub struct SegmentationSource {
    /// Software name and version (SoftwareVersions), e.g. "tumorscan 0.1.0".
    pub software: String,
    /// The model that drew it (SegmentAlgorithmName), e.g. "tumorscan v0.10".
    pub algorithm: String,
}

fn element(tag: Tag, vr: VR, value: impl Into<PrimitiveValue>) -> DataElement<InMemDicomObject> {
    DataElement::new(tag, vr, value.into())
}

fn sequence(tag: Tag, items: Vec<InMemDicomObject>) -> DataElement<InMemDicomObject> {
    DataElement::new(tag, VR::SQ, DataSetSequence::from(items))
}

fn item(elements: Vec<DataElement<InMemDicomObject>>) -> InMemDicomObject {
    InMemDicomObject::from_element_iter(elements)
}

/// A coded concept (code value, coding scheme, meaning).
fn code(value: &str, scheme: &str, meaning: &str) -> InMemDicomObject {
    item(vec![
        element(tags::CODE_VALUE, VR::SH, value),
        element(tags::CODING_SCHEME_DESIGNATOR, VR::SH, scheme),
        element(tags::CODE_MEANING, VR::LO, meaning),
    ])
}

/// `s` as one value of a long string (LO): no backslash (DICOM's value separator), at most 64
/// characters.
fn long_string(s: &str) -> String {
    s.chars().map(|c| if c == '\\' { '/' } else { c }).take(64).collect()
}

/// A decimal string of at most 16 characters (DICOM's DS limit) for `v`.
fn ds(v: f64) -> String {
    (0..=10)
        .rev()
        .map(|digits| {
            let s = format!("{v:.digits$}");
            let s = if s.contains('.') {
                s.trim_end_matches('0').trim_end_matches('.').to_string()
            } else {
                s
            };
            if s == "-0" {
                "0".to_string()
            } else {
                s
            }
        })
        .find(|s| s.len() <= 16)
        .unwrap_or_else(|| format!("{v:.6e}"))
}

fn decimals(values: &[f64]) -> PrimitiveValue {
    PrimitiveValue::Strs(values.iter().map(|v| ds(*v)).collect())
}

/// A new globally unique identifier under the UUID root 2.25 (from 128 random bits).
fn new_uid() -> String {
    format!("2.25.{}", rand::random::<u128>())
}

/// What stops a SEG from referring to the DICOM series `series` / `slices`, if anything (the
/// check [`seg_file_bytes`] makes first, which needs no masks: a server can refuse before
/// running the networks). Ok gives the slices' ImageOrientationPatient.
pub fn check_series(series: &DicomSeries, slices: &[InputSlice]) -> Result<[f64; 6], String> {
    let first = slices.first().ok_or("no slices")?;
    if series.instances.len() != slices.len() {
        return Err(format!("{} slices but {} source instances", slices.len(), series.instances.len()));
    }
    for (what, uid) in [
        ("StudyInstanceUID", &series.study_uid),
        ("SeriesInstanceUID", &series.series_uid),
        ("FrameOfReferenceUID", &series.frame_of_reference_uid),
    ] {
        if uid.is_empty() {
            return Err(format!("the series has no {what}"));
        }
    }
    let mut uids = std::collections::HashMap::new();
    for (s, source) in slices.iter().zip(&series.instances) {
        if source.class.is_empty() || source.instance.is_empty() {
            return Err(format!("{} has no SOPClassUID or SOPInstanceUID", s.label));
        }
        // Frames of one multi-frame image share its UID; each is referred to by its number.
        if let Some(other) = uids.insert((&source.instance, source.frame), &s.label) {
            return Err(format!("{other} and {} are different images with one SOPInstanceUID", s.label));
        }
    }
    if series.thickness_mm.or(series.spacing_mm).is_none() {
        return Err("neither SliceThickness nor the spacing between slices is known".into());
    }
    let orientation = first
        .orientation
        .ok_or_else(|| format!("{} has no ImageOrientationPatient", first.label))?;
    let normal = crate::dicom::plane_normal(&orientation);
    let mut depths = Vec::with_capacity(slices.len());
    for s in slices {
        let position = s.position_mm.ok_or_else(|| format!("{} has no ImagePositionPatient", s.label))?;
        if s.spacing_mm.is_none() {
            return Err(format!("{} has no PixelSpacing", s.label));
        }
        if (s.width, s.height) != (first.width, first.height) {
            return Err("the slices are not all of one size".into());
        }
        let o = s.orientation.ok_or_else(|| format!("{} has no ImageOrientationPatient", s.label))?;
        if o.iter().zip(&orientation).any(|(a, b)| (a - b).abs() > 1e-4) || s.spacing_mm != first.spacing_mm {
            return Err("the slices are not all parallel with one pixel spacing".into());
        }
        depths.push(crate::dicom::along(normal, position));
    }
    depths.sort_by(f64::total_cmp);
    if depths.windows(2).any(|w| w[1] - w[0] < 1e-3) {
        return Err("slices share a position, so frames could not be told apart by it".into());
    }
    Ok(orientation)
}

/// The distance between neighbouring slices when it is the same everywhere (within 0.01 mm) and
/// not 0; None for a single slice, gaps or repeats.
fn regular_step(slices: &[InputSlice], orientation: &[f64; 6]) -> Option<f64> {
    let normal = crate::dicom::plane_normal(orientation);
    let depths: Vec<f64> = slices
        .iter()
        .map(|s| s.position_mm.map_or(0.0, |p| crate::dicom::along(normal, p)))
        .collect();
    let steps: Vec<f64> = depths.windows(2).map(|w| (w[1] - w[0]).abs()).collect();
    let first = *steps.first()?;
    (first > 0.0 && steps.iter().all(|s| (s - first).abs() <= 0.01)).then_some(first)
}

/// The bytes of a DICOM Segmentation file of `masks` (0/1, one per slice of the series, in the
/// volume's order) over the DICOM series `series` / `slices`; Err says why none can be made.
pub fn seg_file_bytes(
    series: &DicomSeries,
    slices: &[InputSlice],
    masks: &[Vec<u8>],
    source: &SegmentationSource,
) -> Result<Vec<u8>, String> {
    let orientation = check_series(series, slices)?;
    let (rows, cols) = (slices[0].height as usize, slices[0].width as usize);
    if masks.len() != slices.len() || masks.iter().any(|m| m.len() != rows * cols) {
        return Err(format!(
            "{} masks do not match the {} slices of {cols}x{rows}",
            masks.len(),
            slices.len()
        ));
    }
    let side = |v: usize| u16::try_from(v).map_err(|_| format!("slices of {cols}x{rows} are too large for DICOM"));
    let (rows16, cols16) = (side(rows)?, side(cols)?);
    let (col_spacing, row_spacing) = slices[0].spacing_mm.unwrap_or((1.0, 1.0));
    let sop_instance = new_uid();
    let now = chrono::Local::now();
    let (date, time) = (now.format("%Y%m%d").to_string(), now.format("%H%M%S").to_string());
    let mut obj = InMemDicomObject::new_empty();
    let mut put = |e: DataElement<InMemDicomObject>| {
        obj.put(e);
    };
    // dicom-object writes text in the declared character set; the copied names, or a model's
    // name given with --model, may not be ASCII.
    let texts = [&source.software, &source.algorithm];
    if series.copied.iter().chain(texts).any(|v| !v.is_ascii()) {
        put(element(tags::SPECIFIC_CHARACTER_SET, VR::CS, "ISO_IR 192"));
    }
    put(element(tags::SOP_CLASS_UID, VR::UI, SEG_SOP_CLASS));
    put(element(tags::SOP_INSTANCE_UID, VR::UI, sop_instance.as_str()));
    for ((tag, vr, _), value) in COPIED.iter().zip(&series.copied) {
        put(element(*tag, *vr, value.as_str()));
    }
    put(element(tags::STUDY_INSTANCE_UID, VR::UI, series.study_uid.as_str()));
    put(element(
        tags::FRAME_OF_REFERENCE_UID,
        VR::UI,
        series.frame_of_reference_uid.as_str(),
    ));
    put(element(tags::POSITION_REFERENCE_INDICATOR, VR::LO, ""));
    // Segmentation Series and equipment.
    put(element(tags::MODALITY, VR::CS, "SEG"));
    put(element(tags::SERIES_INSTANCE_UID, VR::UI, new_uid()));
    put(element(tags::SERIES_NUMBER, VR::IS, "1000"));
    put(element(
        tags::SERIES_DESCRIPTION,
        VR::LO,
        "tumorscan tumour outline (research, not for diagnosis)",
    ));
    put(element(tags::MANUFACTURER, VR::LO, "tumorscan"));
    put(element(tags::MANUFACTURER_MODEL_NAME, VR::LO, "tumorscan"));
    put(element(tags::DEVICE_SERIAL_NUMBER, VR::LO, "0"));
    put(element(tags::SOFTWARE_VERSIONS, VR::LO, long_string(&source.software)));
    // Image.
    put(element(tags::INSTANCE_NUMBER, VR::IS, "1"));
    put(element(tags::CONTENT_DATE, VR::DA, date.as_str()));
    put(element(tags::CONTENT_TIME, VR::TM, time.as_str()));
    put(element(
        tags::IMAGE_TYPE,
        VR::CS,
        PrimitiveValue::Strs(["DERIVED".into(), "PRIMARY".into()].into_iter().collect()),
    ));
    put(element(tags::CONTENT_LABEL, VR::CS, "TUMOUR"));
    put(element(
        tags::CONTENT_DESCRIPTION,
        VR::LO,
        "FLAIR abnormality outlined by tumorscan",
    ));
    put(element(tags::CONTENT_CREATOR_NAME, VR::PN, ""));
    put(element(tags::SAMPLES_PER_PIXEL, VR::US, PrimitiveValue::from(1u16)));
    put(element(tags::PHOTOMETRIC_INTERPRETATION, VR::CS, "MONOCHROME2"));
    put(element(tags::ROWS, VR::US, PrimitiveValue::from(rows16)));
    put(element(tags::COLUMNS, VR::US, PrimitiveValue::from(cols16)));
    for tag in [tags::BITS_ALLOCATED, tags::BITS_STORED] {
        put(element(tag, VR::US, PrimitiveValue::from(1u16)));
    }
    put(element(tags::HIGH_BIT, VR::US, PrimitiveValue::from(0u16)));
    put(element(tags::PIXEL_REPRESENTATION, VR::US, PrimitiveValue::from(0u16)));
    put(element(tags::LOSSY_IMAGE_COMPRESSION, VR::CS, "00"));
    put(element(tags::SEGMENTATION_TYPE, VR::CS, "BINARY"));
    put(element(tags::SEGMENTS_OVERLAP, VR::CS, "NO"));
    put(sequence(
        tags::SEGMENT_SEQUENCE,
        vec![item(vec![
            element(tags::SEGMENT_NUMBER, VR::US, PrimitiveValue::from(1u16)),
            element(tags::SEGMENT_LABEL, VR::LO, "Tumour"),
            sequence(
                tags::SEGMENTED_PROPERTY_CATEGORY_CODE_SEQUENCE,
                vec![code("49755003", "SCT", "Morphologically Abnormal Structure")],
            ),
            sequence(
                tags::SEGMENTED_PROPERTY_TYPE_CODE_SEQUENCE,
                vec![code("108369006", "SCT", "Neoplasm")],
            ),
            sequence(tags::ANATOMIC_REGION_SEQUENCE, vec![code("12738006", "SCT", "Brain")]),
            element(tags::SEGMENT_ALGORITHM_TYPE, VR::CS, "AUTOMATIC"),
            element(tags::SEGMENT_ALGORITHM_NAME, VR::LO, long_string(&source.algorithm)),
            sequence(
                tags::SEGMENTATION_ALGORITHM_IDENTIFICATION_SEQUENCE,
                vec![item(vec![
                    sequence(
                        tags::ALGORITHM_FAMILY_CODE_SEQUENCE,
                        vec![code("123110", "DCM", "Artificial Intelligence")],
                    ),
                    element(tags::ALGORITHM_NAME, VR::LO, long_string(&source.algorithm)),
                    element(tags::ALGORITHM_VERSION, VR::LO, long_string(&source.software)),
                ])],
            ),
            // sRGB red (255, 0, 0) in DICOM's scaled CIELab, as the overlays draw it.
            element(
                tags::RECOMMENDED_DISPLAY_CIE_LAB_VALUE,
                VR::US,
                PrimitiveValue::U16([34891u16, 53480, 50167].into_iter().collect()),
            ),
        ])],
    ));
    // Frames: one per source slice, indexed by segment and position.
    let organization = new_uid();
    put(sequence(
        tags::DIMENSION_ORGANIZATION_SEQUENCE,
        vec![item(vec![element(tags::DIMENSION_ORGANIZATION_UID, VR::UI, organization.as_str())])],
    ));
    let index = |pointer: Tag, group: Tag, label: &str| {
        item(vec![
            element(tags::DIMENSION_ORGANIZATION_UID, VR::UI, organization.as_str()),
            element(
                tags::DIMENSION_INDEX_POINTER,
                VR::AT,
                PrimitiveValue::Tags([pointer].into_iter().collect()),
            ),
            element(
                tags::FUNCTIONAL_GROUP_POINTER,
                VR::AT,
                PrimitiveValue::Tags([group].into_iter().collect()),
            ),
            element(tags::DIMENSION_DESCRIPTION_LABEL, VR::LO, label),
        ])
    };
    put(sequence(
        tags::DIMENSION_INDEX_SEQUENCE,
        vec![
            index(
                tags::REFERENCED_SEGMENT_NUMBER,
                tags::SEGMENT_IDENTIFICATION_SEQUENCE,
                "ReferencedSegmentNumber",
            ),
            index(tags::IMAGE_POSITION_PATIENT, tags::PLANE_POSITION_SEQUENCE, "ImagePositionPatient"),
        ],
    ));
    put(element(tags::NUMBER_OF_FRAMES, VR::IS, slices.len().to_string()));
    let mut measures = vec![element(tags::PIXEL_SPACING, VR::DS, decimals(&[row_spacing, col_spacing]))];
    if let Some(t) = series.thickness_mm.or(series.spacing_mm) {
        measures.push(element(tags::SLICE_THICKNESS, VR::DS, ds(t)));
    }
    // Only a regular grid has one spacing: readers that trust it place every frame by it.
    if let Some(step) = regular_step(slices, &orientation) {
        measures.push(element(tags::SPACING_BETWEEN_SLICES, VR::DS, ds(step)));
    }
    put(sequence(
        tags::SHARED_FUNCTIONAL_GROUPS_SEQUENCE,
        vec![item(vec![
            sequence(tags::PIXEL_MEASURES_SEQUENCE, vec![item(measures)]),
            sequence(
                tags::PLANE_ORIENTATION_SEQUENCE,
                vec![item(vec![element(tags::IMAGE_ORIENTATION_PATIENT, VR::DS, decimals(&orientation))])],
            ),
        ])],
    ));
    let frames = slices
        .iter()
        .zip(&series.instances)
        .enumerate()
        .map(|(k, (slice, source))| {
            let position = slice.position_mm.unwrap_or_default();
            let mut reference = vec![
                element(tags::REFERENCED_SOP_CLASS_UID, VR::UI, source.class.as_str()),
                element(tags::REFERENCED_SOP_INSTANCE_UID, VR::UI, source.instance.as_str()),
            ];
            if let Some(frame) = source.frame {
                reference.push(element(tags::REFERENCED_FRAME_NUMBER, VR::IS, frame.to_string()));
            }
            reference.extend([
                // Each mask pixel lies where its source pixel does (same grid).
                element(tags::SPATIAL_LOCATIONS_PRESERVED, VR::CS, "YES"),
                sequence(
                    tags::PURPOSE_OF_REFERENCE_CODE_SEQUENCE,
                    vec![code("121322", "DCM", "Source image for image processing operation")],
                ),
            ]);
            item(vec![
                sequence(
                    tags::DERIVATION_IMAGE_SEQUENCE,
                    vec![item(vec![
                        sequence(tags::SOURCE_IMAGE_SEQUENCE, vec![item(reference)]),
                        sequence(tags::DERIVATION_CODE_SEQUENCE, vec![code("113076", "DCM", "Segmentation")]),
                    ])],
                ),
                sequence(
                    tags::FRAME_CONTENT_SEQUENCE,
                    vec![item(vec![element(
                        tags::DIMENSION_INDEX_VALUES,
                        VR::UL,
                        PrimitiveValue::U32([1u32, k as u32 + 1].into_iter().collect()),
                    )])],
                ),
                sequence(
                    tags::PLANE_POSITION_SEQUENCE,
                    vec![item(vec![element(tags::IMAGE_POSITION_PATIENT, VR::DS, decimals(&position))])],
                ),
                sequence(
                    tags::SEGMENT_IDENTIFICATION_SEQUENCE,
                    vec![item(vec![element(
                        tags::REFERENCED_SEGMENT_NUMBER,
                        VR::US,
                        PrimitiveValue::from(1u16),
                    )])],
                ),
            ])
        })
        .collect();
    put(sequence(tags::PER_FRAME_FUNCTIONAL_GROUPS_SEQUENCE, frames));
    let mut seen = std::collections::HashSet::new();
    put(sequence(
        tags::REFERENCED_SERIES_SEQUENCE,
        vec![item(vec![
            element(tags::SERIES_INSTANCE_UID, VR::UI, series.series_uid.as_str()),
            sequence(
                tags::REFERENCED_INSTANCE_SEQUENCE,
                // Each image once, a multi-frame one however many of its frames are slices.
                series
                    .instances
                    .iter()
                    .filter(|s| seen.insert(s.instance.as_str()))
                    .map(|s| {
                        item(vec![
                            element(tags::REFERENCED_SOP_CLASS_UID, VR::UI, s.class.as_str()),
                            element(tags::REFERENCED_SOP_INSTANCE_UID, VR::UI, s.instance.as_str()),
                        ])
                    })
                    .collect(),
            ),
        ])],
    ));
    put(element(tags::PIXEL_DATA, VR::OB, PrimitiveValue::from(pack_bits(masks))));
    let meta = FileMetaTableBuilder::new()
        .transfer_syntax(EXPLICIT_LE)
        .media_storage_sop_class_uid(SEG_SOP_CLASS)
        .media_storage_sop_instance_uid(sop_instance);
    let mut out = Vec::new();
    obj.with_meta(meta)
        .map_err(|e| format!("could not make the SEG's file meta: {e}"))?
        .write_all(&mut out)
        .map_err(|e| format!("could not write the SEG: {e}"))?;
    Ok(out)
}

/// Frames one bit per pixel, the first pixel in the lowest bit, frame after frame with no gap
/// (DICOM's rule for BitsAllocated 1), padded to an even length.
fn pack_bits(masks: &[Vec<u8>]) -> Vec<u8> {
    let total: usize = masks.iter().map(Vec::len).sum();
    let mut bytes = vec![0u8; total.div_ceil(8).next_multiple_of(2)];
    for (i, _) in masks.iter().flatten().enumerate().filter(|(_, &v)| v != 0) {
        bytes[i / 8] |= 1 << (i % 8);
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dicom::{assemble, read_one_bytes};
    use dicom_object::{DefaultDicomObject, OpenFileOptions};
    use std::path::Path;

    /// A 3-slice phantom series (8x8), as the DICOM reader gives it.
    fn series() -> crate::volume::Volume {
        let raws = (1..=3)
            .map(|n| {
                let bytes = crate::phantom::dicom_slice(n, "1.2.3", 8, EXPLICIT_LE, ["0.5", "0.7"]);
                read_one_bytes(&format!("IM{n}.dcm"), &bytes).unwrap()
            })
            .collect();
        assemble(Path::new("s"), raws).unwrap()
    }

    fn parse(bytes: &[u8]) -> DefaultDicomObject {
        OpenFileOptions::new().from_reader(&bytes[128..]).unwrap()
    }

    fn text(obj: &InMemDicomObject, tag: Tag) -> String {
        obj.element(tag)
            .unwrap()
            .to_str()
            .unwrap()
            .trim_end_matches(['\0', ' '])
            .to_string()
    }

    fn items(obj: &InMemDicomObject, tag: Tag) -> &[InMemDicomObject] {
        obj.element(tag).unwrap().items().unwrap()
    }

    fn source() -> SegmentationSource {
        SegmentationSource {
            software: "tumorscan 0.1.0".into(),
            algorithm: "tumorscan built-in v0.10".into(),
        }
    }

    #[test]
    fn a_seg_refers_to_each_source_slice_at_its_position_with_its_mask() {
        let v = series();
        // Slice 2 has two tumour pixels (the 1st and the 10th: rows 0 and 1), the others none.
        let mut masks = vec![vec![0u8; 64]; 3];
        masks[1][0] = 1;
        masks[1][9] = 1;
        let bytes = seg_file_bytes(v.dicom.as_ref().unwrap(), &v.slices, &masks, &source()).unwrap();
        let obj = parse(&bytes);
        assert_eq!(obj.meta().media_storage_sop_class_uid().trim_end_matches('\0'), SEG_SOP_CLASS);
        assert_eq!(text(&obj, tags::SOP_CLASS_UID), SEG_SOP_CLASS);
        assert_eq!(text(&obj, tags::MODALITY), "SEG");
        assert_eq!(text(&obj, tags::STUDY_INSTANCE_UID), "1.2.826.0.7");
        assert_eq!(text(&obj, tags::FRAME_OF_REFERENCE_UID), "1.2.826.0.9");
        assert_eq!(text(&obj, tags::PATIENT_NAME), "Phantom^Test");
        assert_eq!(text(&obj, tags::PATIENT_ID), "PH1");
        assert_ne!(text(&obj, tags::SERIES_INSTANCE_UID), "1.2.3");
        assert!(text(&obj, tags::SOP_INSTANCE_UID).starts_with("2.25."));
        assert_eq!(text(&obj, tags::NUMBER_OF_FRAMES), "3");
        let segment = &items(&obj, tags::SEGMENT_SEQUENCE)[0];
        assert_eq!(text(segment, tags::SEGMENT_ALGORITHM_NAME), "tumorscan built-in v0.10");
        let shared = &items(&obj, tags::SHARED_FUNCTIONAL_GROUPS_SEQUENCE)[0];
        let measures = &items(shared, tags::PIXEL_MEASURES_SEQUENCE)[0];
        // PixelSpacing is (between rows, between columns), as the source's.
        assert_eq!(text(measures, tags::PIXEL_SPACING), "0.5\\0.7");
        assert_eq!(text(measures, tags::SPACING_BETWEEN_SLICES), "5");
        let frames = items(&obj, tags::PER_FRAME_FUNCTIONAL_GROUPS_SEQUENCE);
        assert_eq!(frames.len(), 3);
        for (k, frame) in frames.iter().enumerate() {
            let position = &items(frame, tags::PLANE_POSITION_SEQUENCE)[0];
            assert_eq!(text(position, tags::IMAGE_POSITION_PATIENT), format!("0\\0\\{}", 5 * (k + 1)));
            let derivation = &items(frame, tags::DERIVATION_IMAGE_SEQUENCE)[0];
            let source = &items(derivation, tags::SOURCE_IMAGE_SEQUENCE)[0];
            assert_eq!(text(source, tags::REFERENCED_SOP_INSTANCE_UID), format!("1.2.826.0.1.{}", k + 1));
        }
        let referenced = &items(&obj, tags::REFERENCED_SERIES_SEQUENCE)[0];
        assert_eq!(text(referenced, tags::SERIES_INSTANCE_UID), "1.2.3");
        assert_eq!(items(referenced, tags::REFERENCED_INSTANCE_SEQUENCE).len(), 3);
        // 3 frames of 64 bits: frame 2 starts at byte 8; its pixels 0 and 9 are bits 0 of
        // bytes 8 and 9.
        let pixels = obj.element(tags::PIXEL_DATA).unwrap().to_bytes().unwrap();
        assert_eq!(pixels.len(), 24);
        let set: Vec<usize> = (0..192).filter(|i| pixels[i / 8] >> (i % 8) & 1 == 1).collect();
        assert_eq!(set, vec![64, 73]);
        let back = crate::phantom::read_seg(&bytes).unwrap();
        assert_eq!((back.rows, back.cols, back.masks), (8, 8, masks));
        assert_eq!(back.sources, ["1.2.826.0.1.1", "1.2.826.0.1.2", "1.2.826.0.1.3"]);
    }

    /// A SEG saved into its series' folder (as viewers and PACS exports keep them) is passed
    /// over when the folder is read again, with a note; a folder of only that is no volume.
    #[test]
    fn a_seg_beside_its_series_is_not_read_as_a_slice() {
        let dir = tempfile::tempdir().unwrap();
        let mut files = Vec::new();
        for n in 1..=3 {
            let path = dir.path().join(format!("IM{n}.dcm"));
            std::fs::write(&path, crate::phantom::dicom_slice(n, "1.2.3", 8, EXPLICIT_LE, ["0.5", "0.7"])).unwrap();
            files.push(path);
        }
        let v = series();
        let seg = seg_file_bytes(v.dicom.as_ref().unwrap(), &v.slices, &vec![vec![0u8; 64]; 3], &source()).unwrap();
        let read = |b: &[u8]| crate::dicom::read_file_bytes("x.dcm", b).unwrap();
        assert!(matches!(read(&seg), crate::dicom::DicomFile::NotImage(w) if w == "a DICOM Segmentation"));
        assert!(matches!(
            read(&std::fs::read(&files[0]).unwrap()),
            crate::dicom::DicomFile::Image(_)
        ));
        let seg_path = dir.path().join("s_seg.dcm");
        std::fs::write(&seg_path, &seg).unwrap();
        files.push(seg_path.clone());
        let crate::dicom::SeriesRead::Volume(again) = crate::dicom::read_series(dir.path(), &files).unwrap() else {
            panic!("no volume")
        };
        assert_eq!(again.slices.len(), 3);
        assert!(
            again
                .notes
                .iter()
                .any(|n| n.contains("s_seg.dcm: a DICOM Segmentation, not an image")),
            "{:?}",
            again.notes
        );
        let crate::dicom::SeriesRead::NoImages(skipped) = crate::dicom::read_series(dir.path(), &[seg_path]).unwrap() else {
            panic!("a volume of no images")
        };
        assert!(skipped[0].contains("s_seg.dcm: a DICOM Segmentation, not an image"), "{skipped:?}");
    }

    /// SpacingBetweenSlices only for a regular grid: readers that trust it misplaced the frames
    /// of a series with a gap (session-59 audit).
    #[test]
    fn a_series_with_a_gap_has_no_single_spacing() {
        let v = series();
        let mut slices = v.slices.clone();
        slices[2].position_mm = Some([0.0, 0.0, 25.0]);
        let bytes = seg_file_bytes(v.dicom.as_ref().unwrap(), &slices, &vec![vec![0u8; 64]; 3], &source()).unwrap();
        let obj = parse(&bytes);
        let shared = &items(&obj, tags::SHARED_FUNCTIONAL_GROUPS_SEQUENCE)[0];
        let measures = &items(shared, tags::PIXEL_MEASURES_SEQUENCE)[0];
        assert!(measures.element(tags::SPACING_BETWEEN_SLICES).is_err());
        assert_eq!(text(measures, tags::SLICE_THICKNESS), "5");
    }

    #[test]
    fn names_outside_ascii_are_declared_as_utf8_and_read_back() {
        let v = series();
        let mut dicom = v.dicom.clone().unwrap();
        dicom.copied[0] = "Müller^Zoë".into();
        let bytes = seg_file_bytes(&dicom, &v.slices, &vec![vec![0u8; 64]; 3], &source()).unwrap();
        let obj = parse(&bytes);
        assert_eq!(text(&obj, tags::SPECIFIC_CHARACTER_SET), "ISO_IR 192");
        assert_eq!(text(&obj, tags::PATIENT_NAME), "Müller^Zoë");
    }

    #[test]
    fn a_series_without_identifiers_or_geometry_gets_the_reason() {
        let v = series();
        let masks = vec![vec![0u8; 64]; 3];
        let seg = |d: &DicomSeries, slices: &[InputSlice]| seg_file_bytes(d, slices, &masks, &source()).unwrap_err();
        let mut d = (**v.dicom.as_ref().unwrap()).clone();
        d.frame_of_reference_uid.clear();
        assert!(seg(&d, &v.slices).contains("FrameOfReferenceUID"), "{}", seg(&d, &v.slices));
        let d = (**v.dicom.as_ref().unwrap()).clone();
        let mut slices = v.slices.clone();
        slices[2].position_mm = None;
        assert!(seg(&d, &slices).contains("ImagePositionPatient"));
        let mut slices = v.slices.clone();
        slices[1].orientation = Some([0.0, 1.0, 0.0, 0.0, 0.0, -1.0]);
        assert!(seg(&d, &slices).contains("parallel"));
        assert!(seg_file_bytes(&d, &v.slices, &masks[..2], &source())
            .unwrap_err()
            .contains("do not match"));
    }

    #[test]
    fn decimal_strings_fit_sixteen_characters() {
        assert_eq!(ds(0.5), "0.5");
        assert_eq!(ds(-1e-11), "0");
        assert_eq!(ds(5.0), "5");
        assert_eq!(ds(-123.456_789_012_345_67), "-123.4567890123");
        assert!(ds(1e20).len() <= 16, "{}", ds(1e20));
        assert_eq!(long_string(&"x".repeat(70)).len(), 64);
    }
}
