//! Where each frame of a DICOM image lies and how its values rescale. A classic image (one
//! frame, MR Image Storage) carries that at the top level of its data set; an enhanced or
//! legacy-converted multi-frame image (Enhanced MR, Legacy Converted Enhanced MR, ...) in its
//! functional groups (PS3.3 C.7.6.16): a group in a frame's item of the Per-frame Functional
//! Groups Sequence applies to that frame, one in the Shared Functional Groups Sequence to all.

use dicom_core::Tag;
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;

/// The value of an integer element.
pub(crate) fn int(obj: &InMemDicomObject, tag: Tag) -> Option<i64> {
    obj.element(tag).ok()?.to_int::<i64>().ok()
}

/// A text element's value without DICOM's padding.
pub(crate) fn text(obj: &InMemDicomObject, tag: Tag) -> Option<String> {
    let value = obj.element(tag).ok()?.to_str().ok()?;
    Some(value.trim_end_matches(['\0', ' ']).to_string())
}

/// The value of a numeric element.
pub(crate) fn float(obj: &InMemDicomObject, tag: Tag) -> Option<f64> {
    obj.element(tag).ok()?.to_float64().ok()
}

/// A multi-valued element of exactly N finite numbers.
pub(crate) fn floats<const N: usize>(obj: &InMemDicomObject, tag: Tag) -> Option<[f64; N]> {
    let values = obj.element(tag).ok()?.to_multi_float64().ok()?;
    <[f64; N]>::try_from(values.as_slice())
        .ok()
        .filter(|v| v.iter().all(|c| c.is_finite()))
}

/// One frame's place and rescaling.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FrameGeometry {
    /// ImagePositionPatient (mm).
    pub position: Option<[f64; 3]>,
    /// ImageOrientationPatient.
    pub orientation: Option<[f64; 6]>,
    /// PixelSpacing as (column, row) spacing in mm.
    pub spacing: Option<(f64, f64)>,
    /// SliceThickness (mm).
    pub thickness: Option<f64>,
    /// RescaleSlope, RescaleIntercept (1, 0 when absent).
    pub rescale: (f64, f64),
}

/// The first item of sequence `seq` in `holder`.
fn first_item(holder: &InMemDicomObject, seq: Tag) -> Option<&InMemDicomObject> {
    holder.element(seq).ok()?.items()?.first()
}

/// The geometry of each of the image's `frames` frames; `multi_frame` when the image is of a
/// multi-frame IOD (it has NumberOfFrames), whose functional groups are read.
pub(crate) fn geometry(obj: &InMemDicomObject, frames: usize, multi_frame: bool) -> Result<Vec<FrameGeometry>, String> {
    let per_frame = obj
        .element(tags::PER_FRAME_FUNCTIONAL_GROUPS_SEQUENCE)
        .ok()
        .and_then(|e| e.items())
        .filter(|_| multi_frame);
    if let Some(items) = per_frame {
        if items.len() != frames {
            return Err(format!(
                "the Per-frame Functional Groups Sequence has {} items for {frames} frames",
                items.len()
            ));
        }
    }
    let shared = first_item(obj, tags::SHARED_FUNCTIONAL_GROUPS_SEQUENCE).filter(|_| multi_frame);
    let rescale = |holder: &InMemDicomObject| -> Result<(f64, f64), String> {
        let slope = float(holder, tags::RESCALE_SLOPE).unwrap_or(1.0);
        let intercept = float(holder, tags::RESCALE_INTERCEPT).unwrap_or(0.0);
        if !slope.is_finite() || !intercept.is_finite() {
            return Err(format!("unusable RescaleSlope {slope} / RescaleIntercept {intercept}"));
        }
        Ok((slope, intercept))
    };
    let spacing = |holder: &InMemDicomObject| {
        holder
            .element(tags::PIXEL_SPACING)
            .ok()
            .and_then(|e| e.to_multi_float64().ok())
            .filter(|v| v.len() == 2 && v.iter().all(|s| *s > 0.0 && s.is_finite()))
            .map(|v| (v[1], v[0]))
    };
    let thickness = |holder: &InMemDicomObject| float(holder, tags::SLICE_THICKNESS).filter(|t| *t > 0.0 && t.is_finite());
    (0..frames)
        .map(|k| {
            let frame = per_frame.and_then(|items| items.get(k));
            // A functional group of this frame, else the shared one; the attribute from the
            // data set's top level where neither has it (a classic image, or a converter that
            // left it there).
            let group = |seq: Tag| {
                frame
                    .and_then(|f| first_item(f, seq))
                    .or_else(|| shared.and_then(|s| first_item(s, seq)))
            };
            let top = |seq: Tag| group(seq).unwrap_or(obj);
            // Several frames cannot all be at the one top-level position.
            let position = match group(tags::PLANE_POSITION_SEQUENCE) {
                Some(g) => floats(g, tags::IMAGE_POSITION_PATIENT),
                None if frames == 1 => floats(obj, tags::IMAGE_POSITION_PATIENT),
                None => None,
            };
            Ok(FrameGeometry {
                position,
                orientation: floats(top(tags::PLANE_ORIENTATION_SEQUENCE), tags::IMAGE_ORIENTATION_PATIENT),
                spacing: spacing(top(tags::PIXEL_MEASURES_SEQUENCE)),
                thickness: thickness(top(tags::PIXEL_MEASURES_SEQUENCE)),
                rescale: rescale(top(tags::PIXEL_VALUE_TRANSFORMATION_SEQUENCE))?,
            })
        })
        .collect()
}
