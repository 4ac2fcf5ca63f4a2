//! One training engine for both tasks.
//!
//! [`engine`] runs the loop (sampling, augmentation, Adam with a cosine schedule, validation,
//! early stopping, checkpoints, resume, progress bar, metrics files and curves); a [`Task`]
//! says what is trained: [`segment::SegmentTask`] or [`detect::DetectTask`].

pub mod average;
pub mod checkpoint;
pub mod detect;
pub mod engine;
pub mod history;
pub mod init;
pub mod loss;
pub mod parallel;
pub mod run_lock;
pub mod segment;
pub mod split;

pub use engine::{train, Oversample, Task, TrainConfig, TrainOutcome};

#[cfg(test)]
mod tests_engine;
