//! Measuring tumorscan honestly: segmentation overlap and boundary metrics, detection metrics and
//! their calibration, bootstrap confidence intervals over patients, paired comparisons of two
//! models, and the plots that go with them.

pub mod bootstrap;
pub mod calibration;
pub mod compare;
pub mod detection;
pub mod overlap;
pub mod plot;
pub mod pooled;
pub mod segmentation;

pub use bootstrap::{bootstrap_ci, Interval};
