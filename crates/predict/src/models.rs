//! Model bundles: a segmentation network plus a detection rule, with their identity and
//! evaluation figures. The built-in bundle (`models/` in the repository) is compiled into the
//! binary, so prediction works offline with no flag; `--model DIR` loads another bundle folder
//! (with `bundle.json`) or a single segmentation run folder (`model.json` + `model.bpk`).

use anyhow::{bail, Context, Result};
use burn::module::Module;
pub use burn::prelude::Device;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::Path;
use tumorscan_model::{
    is_cpu, ClassifierConfig, FoldedClassifier, FoldedSegmenter, NetConfig, SegmentationNet, SegmenterConfig, SliceClassifier,
};

/// How a slice is called tumour / tumour-free. In every rule a slice whose cleaned mask is
/// empty is tumour-free (its score is 0), so detection and mask always agree.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DetectionRule {
    /// From the segmentation: tumour when the cleaned mask has at least `min_pixels` pixels and
    /// the slice's largest pixel probability (the reported probability) is at least
    /// `min_probability`.
    Segmentation {
        /// Smallest tumour (pixels at the slice's size) that counts.
        min_pixels: u64,
        /// Smallest largest-pixel probability that counts.
        #[serde(default)]
        min_probability: f64,
    },
    /// A slice classifier (folder `detect/` of the bundle) with its validation-chosen threshold.
    Classifier {
        /// Probability threshold.
        threshold: f64,
    },
    /// Mean of the classifier's probability and the segmentation's largest pixel probability.
    Combined {
        /// Threshold on the mean.
        threshold: f64,
    },
}

/// Mask clean-up applied after thresholding.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Postprocess {
    /// Pixel probability threshold.
    pub threshold: f32,
    /// Drop 2D components smaller than this.
    pub min_component_pixels: usize,
    /// Keep only the largest 3D component of a volume.
    pub largest_3d_component: bool,
    /// Test-time augmentation: average the prediction with that of the left-right flipped slice.
    #[serde(default)]
    pub flip_tta: bool,
}

impl Default for Postprocess {
    fn default() -> Self {
        Self {
            threshold: 0.5,
            min_component_pixels: 0,
            largest_3d_component: false,
            flip_tta: false,
        }
    }
}

/// `bundle.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BundleManifest {
    /// Human name.
    pub name: String,
    /// Detection rule.
    pub detection: DetectionRule,
    /// Mask clean-up.
    #[serde(default)]
    pub postprocess: Postprocess,
    /// Anything else (training command, evaluation figures) shown in reports.
    #[serde(default)]
    pub info: serde_json::Value,
}

/// A loaded model bundle, ready to run.
pub struct ModelBundle {
    /// Manifest.
    pub manifest: BundleManifest,
    /// Segmentation network (inference mode).
    pub segmenter: SegmentationNet,
    /// Its configuration.
    pub seg_config: SegmenterConfig,
    /// Slice classifier, when the rule uses one.
    pub classifier: Option<(SliceClassifier, ClassifierConfig)>,
    /// SHA-256 of the segmentation weights (model identity in reports).
    pub weights_sha256: String,
    /// `model.json` of the segmentation network.
    pub seg_card: serde_json::Value,
    /// Where tensors live.
    pub device: Device,
    /// The segmentation network folded for CPU inference once, at load (CPU backend only).
    pub folded: Option<FoldedSegmenter>,
    /// The slice classifier folded likewise, when there is one.
    pub folded_classifier: Option<FoldedClassifier>,
}

static BUILTIN_MANIFEST: &str = include_str!("../../../models/bundle.json");
static BUILTIN_SEG_CARD: &str = include_str!("../../../models/segment/model.json");
static BUILTIN_SEG_WEIGHTS: &[u8] = include_bytes!("../../../models/segment/model.bpk");
static BUILTIN_DET_CARD: &str = include_str!("../../../models/detect/model.json");
static BUILTIN_DET_WEIGHTS: &[u8] = include_bytes!("../../../models/detect/model.bpk");

fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

fn net_of(card: &serde_json::Value, what: &str) -> Result<NetConfig> {
    serde_json::from_value(card.get("net").cloned().unwrap_or_default())
        .with_context(|| format!("{what}: model.json has no valid 'net' description"))
}

/// Apply burnpack `weights` to a freshly built network.
fn apply_weights<M: Module>(net: M, weights: Vec<u8>, what: &str) -> Result<M> {
    let record = burn::store::ModuleRecord::from_bytes(burn::tensor::Bytes::from_bytes_vec(weights))
        .map_err(|e| anyhow::anyhow!("{what}: unreadable weights: {e:?}"))?;
    net.try_load_record(record)
        .map_err(|e| anyhow::anyhow!("{what}: weights do not fit the network: {e:?}"))
}

fn load_segmenter(card: &serde_json::Value, weights: Vec<u8>, device: &Device, what: &str) -> Result<(SegmentationNet, SegmenterConfig)> {
    let NetConfig::Segmenter(cfg) = net_of(card, what)? else {
        bail!("{what}: not a segmentation model")
    };
    Ok((apply_weights(SegmentationNet::new(&cfg, device), weights, what)?, cfg))
}

fn load_classifier(card: &serde_json::Value, weights: Vec<u8>, device: &Device, what: &str) -> Result<(SliceClassifier, ClassifierConfig)> {
    let NetConfig::Classifier(cfg) = net_of(card, what)? else {
        bail!("{what}: not a detection model")
    };
    Ok((apply_weights(SliceClassifier::new(&cfg, device), weights, what)?, cfg))
}

/// Load a slice classifier from a folder with `model.json` + `model.bpk` (a run's `best/`).
pub fn load_classifier_dir(dir: &Path, device: &Device) -> Result<(SliceClassifier, ClassifierConfig)> {
    let weights = std::fs::read(dir.join("model.bpk")).with_context(|| format!("reading {}/model.bpk", dir.display()))?;
    load_classifier(&read_card(&dir.join("model.json"))?, weights, device, &dir.display().to_string())
}

fn read_card(path: &Path) -> Result<serde_json::Value> {
    serde_json::from_slice(&std::fs::read(path).with_context(|| format!("reading {}", path.display()))?)
        .with_context(|| format!("{} is malformed", path.display()))
}

impl ModelBundle {
    /// The bundle compiled into this binary.
    pub fn builtin(device: &Device) -> Result<Self> {
        let manifest: BundleManifest = serde_json::from_str(BUILTIN_MANIFEST).context("built-in bundle.json")?;
        let seg_card: serde_json::Value = serde_json::from_str(BUILTIN_SEG_CARD).context("built-in model.json")?;
        let (segmenter, seg_config) = load_segmenter(&seg_card, BUILTIN_SEG_WEIGHTS.to_vec(), device, "built-in model")?;
        let classifier = match manifest.detection {
            DetectionRule::Classifier { .. } | DetectionRule::Combined { .. } => {
                let card: serde_json::Value = serde_json::from_str(BUILTIN_DET_CARD).context("built-in detect/model.json")?;
                Some(load_classifier(
                    &card,
                    BUILTIN_DET_WEIGHTS.to_vec(),
                    device,
                    "built-in detection model",
                )?)
            }
            DetectionRule::Segmentation { .. } => None,
        };
        let sha = sha256(BUILTIN_SEG_WEIGHTS);
        Ok(Self::assemble(manifest, seg_card, sha, (segmenter, seg_config), classifier, device))
    }

    /// Load a bundle folder (`bundle.json`, `segment/`, optional `detect/`) or a single
    /// segmentation model folder (`model.json` + `model.bpk`, e.g. a training run's `best/`).
    pub fn load(dir: &Path, device: &Device) -> Result<Self> {
        if !dir.is_dir() {
            bail!(
                "{}: --model must be a model folder (bundle.json, or model.json + model.bpk)",
                dir.display()
            );
        }
        let (manifest, seg_dir) = if dir.join("bundle.json").exists() {
            let m: BundleManifest = serde_json::from_slice(&std::fs::read(dir.join("bundle.json"))?)
                .with_context(|| format!("{}/bundle.json is malformed", dir.display()))?;
            (m, dir.join("segment"))
        } else {
            let m = BundleManifest {
                name: dir.display().to_string(),
                detection: DetectionRule::Segmentation {
                    min_pixels: 1,
                    min_probability: 0.0,
                },
                postprocess: Postprocess::default(),
                info: serde_json::Value::Null,
            };
            (m, dir.to_path_buf())
        };
        let seg_card = read_card(&seg_dir.join("model.json"))?;
        let wpath = seg_dir.join("model.bpk");
        let weights = std::fs::read(&wpath).with_context(|| format!("reading {}", wpath.display()))?;
        let sha = sha256(&weights);
        let (segmenter, seg_config) = load_segmenter(&seg_card, weights, device, &wpath.display().to_string())?;
        let classifier = match manifest.detection {
            DetectionRule::Classifier { .. } | DetectionRule::Combined { .. } => Some(load_classifier_dir(&dir.join("detect"), device)?),
            DetectionRule::Segmentation { .. } => None,
        };
        Ok(Self::assemble(manifest, seg_card, sha, (segmenter, seg_config), classifier, device))
    }

    /// The bundle from its loaded parts; on the CPU the networks are folded here, once.
    fn assemble(
        manifest: BundleManifest,
        seg_card: serde_json::Value,
        weights_sha256: String,
        (segmenter, seg_config): (SegmentationNet, SegmenterConfig),
        classifier: Option<(SliceClassifier, ClassifierConfig)>,
        device: &Device,
    ) -> Self {
        let cpu = is_cpu(device);
        Self {
            manifest,
            seg_config,
            weights_sha256,
            seg_card,
            folded: cpu.then(|| FoldedSegmenter::new(&segmenter)),
            folded_classifier: classifier.as_ref().filter(|_| cpu).map(|(c, _)| FoldedClassifier::new(c)),
            classifier,
            segmenter,
            device: device.clone(),
        }
    }

    /// Tumour probability maps of prepared `3 x size x size` inputs, `batch` at a time: the
    /// folded network on the CPU, burn's forward pass elsewhere.
    pub fn segment_probabilities(&self, images: &[&[f32]], size: u32, batch: usize) -> Vec<Vec<f32>> {
        match &self.folded {
            Some(f) => f.probabilities(images, size, batch),
            None => self.segmenter.probabilities(images, size, &self.device, batch),
        }
    }

    /// Tumour probability per prepared slice from the slice classifier (`None` without one),
    /// folded on the CPU like [`Self::segment_probabilities`].
    pub fn classifier_probabilities(&self, images: &[&[f32]], batch: usize) -> Option<Vec<f32>> {
        let (net, cfg) = self.classifier.as_ref()?;
        Some(match &self.folded_classifier {
            Some(f) => f.probabilities(images, cfg.input_size, batch),
            None => net.probabilities(images, cfg.input_size, &self.device, batch),
        })
    }

    /// Built-in when `path` is `None`.
    pub fn open(path: Option<&Path>, device: &Device) -> Result<Self> {
        match path {
            Some(p) => Self::load(p, device),
            None => Self::builtin(device),
        }
    }

    /// Short identity for reports and CSVs.
    pub fn identity(&self) -> String {
        format!(
            "{} (segmentation weights sha256 {})",
            self.manifest.name,
            &self.weights_sha256[..12]
        )
    }
}
