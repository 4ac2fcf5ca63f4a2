//! Prediction inputs as plain data: slices grouped into volumes, as produced by the slice,
//! NIfTI ([`crate::nifti`]) and DICOM ([`crate::dicom`]) readers.

use std::path::PathBuf;

/// One slice to predict.
#[derive(Debug, Clone)]
pub struct InputSlice {
    /// What the user knows it by: the file path, or `path#k` for slice k of a volume file.
    pub label: String,
    /// File stem used for output names (unique within a run).
    pub stem: String,
    /// Order within its volume.
    pub number: u32,
    /// Width.
    pub width: u32,
    /// Height.
    pub height: u32,
    /// RGB (pre-contrast, FLAIR, post-contrast) bytes, HWC.
    pub rgb: Vec<u8>,
    /// Pixel spacing (mm) when the format records it: (along a row, between rows), i.e. (x, y);
    /// DICOM's PixelSpacing holds them the other way round.
    pub spacing_mm: Option<(f64, f64)>,
    /// Where the slice's first pixel lies in the patient's coordinates (mm), when the format
    /// records it per slice (DICOM ImagePositionPatient).
    pub position_mm: Option<[f64; 3]>,
    /// The directions of its rows and columns in the patient's coordinates, when the format
    /// records them per slice (DICOM ImageOrientationPatient).
    pub orientation: Option<[f64; 6]>,
    /// Ground truth mask found beside the slice, 0/1.
    pub truth: Option<Vec<u8>>,
    /// Conversions applied while reading.
    pub notes: Vec<String>,
}

/// Puts a volume's 2D slices in order: by their `<patient>_<n>` number, then their labels in
/// natural order (`slice2` before `slice10`). One rule for `predict` and `serve`, which ordered
/// unnumbered slices differently before.
pub fn order_slices(slices: &mut [InputSlice]) {
    slices.sort_by(|a, b| a.number.cmp(&b.number).then_with(|| crate::layout::natural_cmp(&a.label, &b.label)));
}

impl InputSlice {
    /// A slice decoded from a file (or an upload) named `label`, with optional ground truth.
    pub fn from_image(label: String, stem: String, number: u32, img: crate::image_io::RgbImage, truth: Option<Vec<u8>>) -> Self {
        Self {
            label,
            stem,
            number,
            width: img.width,
            height: img.height,
            rgb: img.data,
            spacing_mm: None,
            position_mm: None,
            orientation: None,
            truth,
            notes: img.notes,
        }
    }
}

/// Slices normalised together (a patient folder, or a volume file).
#[derive(Debug, Clone)]
pub struct Volume {
    /// Identifier (folder or file name).
    pub id: String,
    /// Where it came from.
    pub source: PathBuf,
    /// Slices in order.
    pub slices: Vec<InputSlice>,
    /// For NIfTI inputs: what is needed to write the mask back with the same geometry.
    pub nifti: Option<NiftiGeometry>,
    /// For DICOM series inputs: what a DICOM Segmentation of the mask refers to
    /// ([`crate::dicom_seg`]).
    pub dicom: Option<Box<DicomSeries>>,
    /// Depth of a slice (mm): the spacing between slice centres where known (NIfTI pixdim[3],
    /// DICOM ImagePositionPatient), else SliceThickness; for volumes in mL.
    pub slice_thickness_mm: Option<f64>,
    /// What the user is told once about the whole volume (stored in another plane, oblique);
    /// each slice's own conversions are in its notes.
    pub notes: Vec<String>,
}

impl Volume {
    /// Whether every slice has the same width and height: only then do the slices share one
    /// voxel grid for 3D steps (components, hysteresis, smoothing across slices).
    pub fn one_grid(&self) -> bool {
        self.slices
            .windows(2)
            .all(|w| (w[0].width, w[0].height) == (w[1].width, w[1].height))
    }
}

/// The identity of a DICOM series input, to write the predicted mask as a DICOM Segmentation
/// that viewers show over it (the slices' geometry is in each [`InputSlice`]).
#[derive(Debug, Clone)]
pub struct DicomSeries {
    /// StudyInstanceUID.
    pub study_uid: String,
    /// SeriesInstanceUID.
    pub series_uid: String,
    /// FrameOfReferenceUID (empty when absent).
    pub frame_of_reference_uid: String,
    /// The first slice's patient and study attributes a derived object copies
    /// ([`crate::dicom_seg::COPIED`], in that order; empty when absent).
    pub copied: Vec<String>,
    /// Each slice's source image, in the volume's order.
    pub instances: Vec<SourceImage>,
    /// SliceThickness (mm).
    pub thickness_mm: Option<f64>,
    /// Distance between neighbouring slice centres (mm).
    pub spacing_mm: Option<f64>,
}

/// The DICOM image a slice was read from, as a derived object refers to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceImage {
    /// SOPClassUID.
    pub class: String,
    /// SOPInstanceUID.
    pub instance: String,
    /// The frame's number (from 1) in a multi-frame image (ReferencedFrameNumber).
    pub frame: Option<u32>,
}

/// Geometry of a NIfTI input, to write the predicted mask volume back.
#[derive(Debug, Clone)]
pub struct NiftiGeometry {
    /// The input's header (voxel size, orientation), reused for the output.
    pub header: Box<::nifti::NiftiHeader>,
    /// Dimensions (x, y, z).
    pub dims: (usize, usize, usize),
    /// How its voxels are shown as axial slices, from the header's orientation.
    pub layout: crate::nifti_axes::Layout,
}
