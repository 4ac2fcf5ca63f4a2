//! Prediction: from slices on disk (or in memory) to tumour probability, mask, overlay,
//! CSV and an HTML report, with the built-in models.
//!
//! [`input`] gathers slices into volumes, [`models`] loads the built-in (or a given) model
//! bundle, [`engine`] runs it, [`postprocess`] cleans masks, [`output`] writes results and
//! [`report`] draws the HTML page.

pub mod engine;
pub mod input;
pub mod models;
pub mod output;
pub mod postprocess;
pub mod report;

pub use engine::{predict_volume, SlicePrediction};
pub use input::{collect_inputs, InputSlice, Volume};
pub use models::ModelBundle;
