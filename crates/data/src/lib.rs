//! Reading, checking and preparing the LGG brain-MRI dataset (Kaggle `kaggle_3m` layout).
//!
//! Data flows one way: [`layout`] finds the files, [`image_io`] decodes them, [`load`] checks
//! and caches whole patients, [`table`] and [`split`] describe them, [`normalize`] and
//! [`augment`] turn them into model input, and [`render`] draws them for people.
//! Prediction inputs in other formats are read into [`volume`]s by [`nifti`] (shown as its
//! header's orientation says, [`nifti_axes`]) and [`dicom`] ([`sequences`] combines sequences
//! stored apart; [`dicom_seg`] writes a series' mask back as a DICOM Segmentation);
//! every reader has a byte-level entry point (no disk needed), which the fuzz targets in
//! `fuzz/` call.

pub mod augment;
pub mod clinical;
pub mod dicom;
mod dicom_frames;
mod dicom_pixels;
pub mod dicom_seg;
pub mod error;
pub mod image_io;
pub mod layout;
pub mod load;
pub mod nifti;
pub mod nifti_axes;
pub mod normalize;
pub mod phantom;
pub mod render;
pub mod sequences;
pub mod split;
pub mod table;
pub mod volume;

pub use error::{DataError, Result};
pub use layout::{scan, DatasetLayout, PatientFiles, SliceFiles};
pub use load::{load_dataset, LoadOptions, LoadedDataset, MissingSequence, Patient, Slice};
