//! The networks of tumorscan and the single place where the compute backend is chosen.
//!
//! - [`unet`]: the U-Net of Buda et al. (2019) and its residual variant (ResUNet).
//! - [`classifier`]: a compact ResNet-style slice classifier for detection.
//! - [`efficientnet`]: EfficientNet-Lite0 / Lite1, the classifier and encoder that start from ImageNet weights.
//! - [`effunet`]: a U-Net on an EfficientNet-Lite encoder, for segmentation from ImageNet weights.
//! - [`attention`]: scSE attention, the EfficientNet U-Net's optional decoder attention.
//! - [`backend`]: which device (pure-Rust `flex` CPU, or CUDA) tensors live on.
//! - [`autodiff`]: convolution and batch-norm of training as autodiff ops on fast CPU kernels.
//! - [`config`]: serialisable descriptions of a network, stored next to its weights.
//! - [`folded`]: the networks compiled for fast CPU inference (batch-norm folded, fused epilogues).
//! - [`folded_effunet`]: the same for the EfficientNet-Lite U-Net.
//! - [`infer`]: batched probabilities, through [`folded`] on the CPU.

pub mod attention;
pub mod autodiff;
pub mod backend;
pub mod classifier;
pub mod config;
pub mod efficientnet;
pub mod effunet;
pub mod folded;
pub mod folded_effunet;
pub mod infer;
mod kernels;
pub mod unet;
mod winograd;

pub use backend::{is_cpu, tune_allocator, BackendKind, ComputeDevice};
pub use classifier::{ClassifierNet, SliceClassifier};
pub use config::{ClassifierArch, ClassifierConfig, LiteVariant, NetConfig, SegmenterArch, SegmenterConfig};
pub use efficientnet::EfficientNetLite;
pub use effunet::EfficientUNet;
pub use folded::{FoldedClassifier, FoldedSegmenter};
pub use folded_effunet::FoldedEfficientUNet;
pub use unet::{SegmentationNet, SegmenterNet};
