//! One error type for everything that reads user files; every variant names the file.

use std::path::PathBuf;

/// A problem with an input file or folder. The message always names the path.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The file or folder could not be read at all (missing, permissions, dangling link).
    #[error("{path}: cannot read: {source}")]
    Io {
        /// Offending path.
        path: PathBuf,
        /// Underlying OS error.
        #[source]
        source: std::io::Error,
    },
    /// The bytes are not a decodable image (truncated, corrupt, not an image at all).
    #[error("{path}: not a readable image: {reason}")]
    Decode {
        /// Offending path.
        path: PathBuf,
        /// What the decoder said.
        reason: String,
    },
    /// The image decodes but is not what the dataset promises (channels, depth, size, values).
    #[error("{path}: {reason}")]
    Invalid {
        /// Offending path.
        path: PathBuf,
        /// What is wrong and what was expected.
        reason: String,
    },
    /// The folder layout is wrong (empty folder, image without mask, ...).
    #[error("{path}: {reason}")]
    Layout {
        /// Offending path.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Several problems were found; each line names its file.
    #[error("{} problem(s) found:\n  {}", .0.len(), .0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n  "))]
    Many(Vec<DataError>),
}

impl DataError {
    /// Shorthand for an [`DataError::Invalid`] error.
    pub fn invalid(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        Self::Invalid {
            path: path.into(),
            reason: reason.into(),
        }
    }
    /// Shorthand for a [`DataError::Layout`] error.
    pub fn layout(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        Self::Layout {
            path: path.into(),
            reason: reason.into(),
        }
    }
    /// Shorthand for a [`DataError::Io`] error.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io { path: path.into(), source }
    }
    /// Collapse a list of problems into one error (or none).
    pub fn from_many(mut errors: Vec<DataError>) -> Option<Self> {
        match errors.len() {
            0 => None,
            1 => errors.pop(),
            _ => Some(Self::Many(errors)),
        }
    }
}

/// Result with [`DataError`].
pub type Result<T> = std::result::Result<T, DataError>;
