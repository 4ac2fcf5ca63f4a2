//! Model bundles: one segmentation network or an ensemble of them plus a detection rule, with
//! their identity and evaluation figures. The built-in bundle (`models/` in the repository) is
//! compiled into the binary, so prediction works offline with no flag; `--model DIR` loads
//! another bundle folder (with `bundle.json`) or a single segmentation run folder
//! (`model.json` + `model.bpk`).

use crate::postprocess::ComponentRank;
use anyhow::{bail, Context, Result};
use burn::module::Module;
pub use burn::prelude::Device;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::Path;
use tumorscan_model::{
    is_cpu, ClassifierArch, ClassifierConfig, ClassifierNet, EfficientNetLite, EfficientUNet, FoldedClassifier, FoldedEfficientUNet,
    FoldedSegmenter, NetConfig, SegmentationNet, SegmenterConfig, SegmenterNet, SliceClassifier,
};

/// How a slice is called tumour / tumour-free. By default a slice whose cleaned mask is empty
/// is tumour-free, so detection and mask always agree; the classifier rules may instead call a
/// tumour the segmentation did not outline (`require_mask: false`).
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
        /// Rank the slices called tumour-free by their neighbours too
        /// ([`crate::engine::in_slice_context`]): same calls, a score that orders them better.
        #[serde(default)]
        slice_context: bool,
    },
    /// A slice classifier (folder `detect/` of the bundle) with its validation-chosen threshold.
    Classifier {
        /// Probability threshold.
        threshold: f64,
        /// A tumour call also needs a non-empty cleaned mask (bundles from before the field: yes).
        #[serde(default = "mask_required")]
        require_mask: bool,
    },
    /// Mean of the classifier's probability and the segmentation's largest pixel probability.
    Combined {
        /// Threshold on the mean.
        threshold: f64,
        /// A tumour call also needs a non-empty cleaned mask (bundles from before the field: yes).
        #[serde(default = "mask_required")]
        require_mask: bool,
    },
}

fn mask_required() -> bool {
    true
}

/// Mask clean-up applied after thresholding.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Postprocess {
    /// Pixel probability threshold.
    pub threshold: f32,
    /// Drop 2D components smaller than this.
    pub min_component_pixels: usize,
    /// Keep only the best 3D component of a volume (ranked by `keep_3d_by`).
    pub largest_3d_component: bool,
    /// How `largest_3d_component` ranks the components (default: voxels).
    #[serde(default, skip_serializing_if = "is_default_rank")]
    pub keep_3d_by: ComponentRank,
    /// Drop 3D components with fewer voxels than this fraction of the volume's largest (0: keep
    /// all; a gentler `largest_3d_component`, which wins when both are set).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub min_3d_fraction: f32,
    /// Test-time augmentation: average the prediction with that of the left-right flipped slice.
    #[serde(default)]
    pub flip_tta: bool,
    /// Hysteresis: after the component steps, grow the outline into the voxels of at least this
    /// probability that connect to it in 3D (0: off; [`crate::postprocess::grow_into`]).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub grow_to: f32,
    /// Before thresholding, average each slice's probability map with its neighbours' at this
    /// weight each (0: off; [`crate::postprocess::smooth_across_slices`]).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub slice_smoothing: f32,
}

fn is_zero(v: &f32) -> bool {
    *v == 0.0
}

fn is_default_rank(r: &ComponentRank) -> bool {
    *r == ComponentRank::default()
}

impl Default for Postprocess {
    fn default() -> Self {
        Self {
            threshold: 0.5,
            min_component_pixels: 0,
            largest_3d_component: false,
            keep_3d_by: ComponentRank::Voxels,
            min_3d_fraction: 0.0,
            flip_tta: false,
            grow_to: 0.0,
            slice_smoothing: 0.0,
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
    /// Further segmentation networks (folders of the bundle laid out like `segment/`) whose
    /// probability maps are averaged with `segment/`'s; empty for a single network.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ensemble: Vec<String>,
    /// Anything else (training command, evaluation figures) shown in reports.
    #[serde(default)]
    pub info: serde_json::Value,
}

impl BundleManifest {
    /// The bundle's segmentation folders: `segment`, then the ensemble members in order.
    pub fn segment_folders(&self) -> impl Iterator<Item = &str> {
        std::iter::once("segment").chain(self.ensemble.iter().map(String::as_str))
    }
}

/// One segmentation network of a bundle.
pub struct Segmenter {
    /// Its configuration.
    pub config: SegmenterConfig,
    /// Its `model.json`.
    pub card: serde_json::Value,
    /// SHA-256 of its weights (model identity in reports).
    pub weights_sha256: String,
    net: SegmenterNetwork,
}

// One to three per bundle: the size of the variants does not matter.
#[allow(clippy::large_enum_variant)]
enum SegmenterNetwork {
    // Each folded once for CPU inference where the device is the CPU.
    Unet(SegmentationNet, Option<FoldedSegmenter>),
    EfficientUnet(EfficientUNet, Option<FoldedEfficientUNet>),
}

impl Segmenter {
    fn new(card: serde_json::Value, weights: Vec<u8>, device: &Device, what: &str) -> Result<Self> {
        let weights_sha256 = sha256(&weights);
        let NetConfig::Segmenter(config) = net_of(&card, what)? else {
            bail!("{what}: not a segmentation model")
        };
        let encoder = config.arch.lite_encoder();
        if config.context_slices > 0 && encoder.is_none() {
            bail!("{what}: context_slices needs an efficientnet-lite*-unet architecture");
        }
        if config.deep_supervision > 0 && encoder.is_none() {
            bail!("{what}: deep_supervision needs an efficientnet-lite*-unet architecture");
        }
        if config.deep_supervision > EfficientUNet::MAX_DEEP_SUPERVISION {
            bail!(
                "{what}: deep_supervision {} is more than the decoder's {} levels",
                config.deep_supervision,
                EfficientUNet::MAX_DEEP_SUPERVISION
            );
        }
        if !config.decoder_widths.is_empty() && encoder.is_none() {
            bail!("{what}: decoder_widths needs an efficientnet-lite*-unet architecture");
        }
        EfficientUNet::decoder_widths(&config.decoder_widths).map_err(|e| anyhow::anyhow!("{what}: {e}"))?;
        if config.decoder_attention && encoder.is_none() {
            bail!("{what}: decoder_attention needs an efficientnet-lite*-unet architecture");
        }
        // Its five stride-2 stages need it; otherwise the forward pass would fail midway.
        if encoder.is_some() && (config.input_size == 0 || config.input_size % 32 != 0) {
            bail!(
                "{what}: input_size {} of an efficientnet-lite*-unet must be a positive multiple of 32",
                config.input_size
            );
        }
        let net = match encoder {
            None => {
                let net = apply_weights(SegmentationNet::new(&config, device), weights, what)?;
                let folded = is_cpu(device).then(|| FoldedSegmenter::new(&net));
                SegmenterNetwork::Unet(net, folded)
            }
            Some(_) => {
                // Built from the card: a deep-supervised network's weights include its auxiliary heads.
                let net = apply_weights(<EfficientUNet as SegmenterNet>::build(&config, device), weights, what)?;
                let folded = is_cpu(device).then(|| FoldedEfficientUNet::new(&net));
                SegmenterNetwork::EfficientUnet(net, folded)
            }
        };
        Ok(Self {
            config,
            card,
            weights_sha256,
            net,
        })
    }

    fn from_dir(dir: &Path, device: &Device) -> Result<Self> {
        let card = read_card(&dir.join("model.json"))?;
        let wpath = dir.join("model.bpk");
        let weights = std::fs::read(&wpath).with_context(|| format!("reading {}", wpath.display()))?;
        Self::new(card, weights, device, &wpath.display().to_string())
    }

    /// Tumour probability maps of prepared `3 x size x size` inputs, `batch` at a time.
    pub fn probabilities(&self, images: &[&[f32]], size: u32, device: &Device, batch: usize) -> Vec<Vec<f32>> {
        match &self.net {
            SegmenterNetwork::Unet(_, Some(folded)) => folded.probabilities(images, size, batch),
            SegmenterNetwork::Unet(net, None) => net.probabilities_burn(images, size, device, batch),
            SegmenterNetwork::EfficientUnet(_, Some(folded)) => folded.probabilities(images, size, batch),
            SegmenterNetwork::EfficientUnet(net, None) => net.probabilities_burn(images, size, device, batch),
        }
    }
}

/// A loaded model bundle, ready to run.
pub struct ModelBundle {
    /// Manifest.
    pub manifest: BundleManifest,
    /// Segmentation networks: `segment/` first, then the ensemble members in manifest order.
    pub segmenters: Vec<Segmenter>,
    /// Slice classifier, when the rule uses one.
    pub classifier: Option<Classifier>,
    /// Where tensors live.
    pub device: Device,
}

/// A loaded slice classifier of either architecture.
pub struct Classifier {
    /// Its description (architecture, input size).
    pub config: ClassifierConfig,
    net: ClassifierNetwork,
}

// One per bundle: the size of the variants does not matter.
#[allow(clippy::large_enum_variant)]
enum ClassifierNetwork {
    // The compact ResNet, folded once for CPU inference where the device is the CPU.
    Resnet(SliceClassifier, Option<FoldedClassifier>),
    EfficientNet(EfficientNetLite),
    // A segmentation network's encoder with its trained classification head (`--slice-head`).
    SliceHead(EfficientUNet),
}

impl Classifier {
    /// Tumour probability per prepared `3 x size x size` input, `batch` at a time.
    pub fn probabilities(&self, images: &[&[f32]], device: &Device, batch: usize) -> Vec<f32> {
        let size = self.config.input_size;
        match &self.net {
            ClassifierNetwork::Resnet(_, Some(folded)) => folded.probabilities(images, size, batch),
            ClassifierNetwork::Resnet(net, None) => net.probabilities(images, size, device, batch),
            ClassifierNetwork::EfficientNet(net) => ClassifierNet::probabilities(net, images, size, device, batch),
            ClassifierNetwork::SliceHead(net) => net.slice_probabilities(images, size, device, batch),
        }
    }
}

static BUILTIN_MANIFEST: &str = include_str!("../../../models/bundle.json");
// `BUILTIN_SEGMENTERS`: (folder, model.json, model.bpk) of every `models/segment*/` (build.rs).
include!(concat!(env!("OUT_DIR"), "/builtin_segmenters.rs"));
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

fn load_classifier(card: &serde_json::Value, weights: Vec<u8>, device: &Device, what: &str) -> Result<Classifier> {
    let config = match net_of(card, what)? {
        NetConfig::Classifier(config) => config,
        NetConfig::Segmenter(seg) => return load_slice_head(card, weights, device, what, &seg),
    };
    let net = match config.arch {
        ClassifierArch::Resnet => {
            let net = apply_weights(SliceClassifier::new(&config, device), weights, what)?;
            let folded = is_cpu(device).then(|| FoldedClassifier::new(&net));
            ClassifierNetwork::Resnet(net, folded)
        }
        ClassifierArch::EfficientnetLite0 => ClassifierNetwork::EfficientNet(apply_weights(EfficientNetLite::new(device), weights, what)?),
    };
    Ok(Classifier { config, net })
}

/// The classification head of a segmentation network trained with `--slice-head`, as a classifier.
fn load_slice_head(card: &serde_json::Value, weights: Vec<u8>, device: &Device, what: &str, seg: &SegmenterConfig) -> Result<Classifier> {
    if !seg.slice_head {
        bail!("{what}: a segmentation model whose classification head was not trained (train segment --slice-head), not a detection model");
    }
    if seg.context_slices > 0 {
        bail!("{what}: the classification head of a 2.5D network (context_slices) cannot be read as a slice classifier");
    }
    let SegmenterNetwork::EfficientUnet(net, _) = Segmenter::new(card.clone(), weights, device, what)?.net else {
        bail!("{what}: slice_head needs an efficientnet-lite*-unet architecture");
    };
    // Only the input size is read from a classifier's config; Lite1's head has Lite0's widths.
    let config = ClassifierConfig {
        input_size: seg.input_size,
        arch: ClassifierArch::EfficientnetLite0,
        ..ClassifierConfig::default()
    };
    Ok(Classifier {
        config,
        net: ClassifierNetwork::SliceHead(net),
    })
}

/// Load a slice classifier from a folder with `model.json` + `model.bpk` (a run's `best/`, or a
/// segmentation run trained with `--slice-head`, read through its encoder's classification head).
pub fn load_classifier_dir(dir: &Path, device: &Device) -> Result<Classifier> {
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
        let segmenters = manifest
            .segment_folders()
            .map(|name| {
                let (_, card, weights) = BUILTIN_SEGMENTERS
                    .iter()
                    .find(|(folder, _, _)| *folder == name)
                    .with_context(|| format!("built-in bundle: no models/{name}/ compiled in"))?;
                let card: serde_json::Value = serde_json::from_str(card).with_context(|| format!("built-in {name}/model.json"))?;
                Segmenter::new(card, weights.to_vec(), device, &format!("built-in {name}"))
            })
            .collect::<Result<Vec<_>>>()?;
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
        Self::assemble(manifest, segmenters, classifier, device)
    }

    /// Load a bundle folder (`bundle.json`, `segment/`, optional `detect/`) or a single
    /// segmentation model folder (`model.json` + `model.bpk`, e.g. a training run's `best/`).
    pub fn load(dir: &Path, device: &Device) -> Result<Self> {
        let has = |name: &str| dir.join(name).exists();
        // Anything else (an empty folder included) gets this message, not a missing-file error
        // about one of the files looked for.
        if !dir.is_dir() || !(has("bundle.json") || (has("model.json") && has("model.bpk"))) {
            // A training run's folder holds its chosen network in best/.
            let best = dir.join("best");
            let hint = if best.join("model.json").exists() && best.join("model.bpk").exists() {
                format!("; this looks like a training run: its chosen network is {}", best.display())
            } else {
                String::new()
            };
            bail!(
                "{}: --model must be a model folder (bundle.json, or model.json + model.bpk){hint}",
                dir.display()
            );
        }
        let (manifest, seg_dirs) = if dir.join("bundle.json").exists() {
            let m: BundleManifest = serde_json::from_slice(&std::fs::read(dir.join("bundle.json"))?)
                .with_context(|| format!("{}/bundle.json is malformed", dir.display()))?;
            let dirs = m.segment_folders().map(|n| dir.join(n)).collect();
            (m, dirs)
        } else {
            let m = BundleManifest {
                name: dir.display().to_string(),
                detection: DetectionRule::Segmentation {
                    min_pixels: 1,
                    min_probability: 0.0,
                    slice_context: false,
                },
                postprocess: Postprocess::default(),
                ensemble: Vec::new(),
                info: serde_json::Value::Null,
            };
            (m, vec![dir.to_path_buf()])
        };
        let segmenters = seg_dirs
            .iter()
            .map(|d| Segmenter::from_dir(d, device))
            .collect::<Result<Vec<_>>>()?;
        let classifier = match manifest.detection {
            DetectionRule::Classifier { .. } | DetectionRule::Combined { .. } => Some(load_classifier_dir(&dir.join("detect"), device)?),
            DetectionRule::Segmentation { .. } => None,
        };
        Self::assemble(manifest, segmenters, classifier, device)
    }

    /// The bundle from its loaded parts; the members of an ensemble must share an input size
    /// (their maps are averaged pixel by pixel).
    fn assemble(manifest: BundleManifest, segmenters: Vec<Segmenter>, classifier: Option<Classifier>, device: &Device) -> Result<Self> {
        let pp = &manifest.postprocess;
        // Out-of-range values would silently mark every pixel, or none.
        if !(pp.threshold > 0.0 && pp.threshold < 1.0) {
            bail!(
                "bundle '{}': postprocess.threshold must be between 0 and 1, not {}",
                manifest.name,
                pp.threshold
            );
        }
        if !(0.0..=1.0).contains(&pp.min_3d_fraction) {
            bail!(
                "bundle '{}': postprocess.min_3d_fraction must be between 0 and 1, not {}",
                manifest.name,
                pp.min_3d_fraction
            );
        }
        // Growing needs a lower threshold than the outline's; at or above it nothing would grow.
        if !(pp.grow_to == 0.0 || (pp.grow_to > 0.0 && pp.grow_to < pp.threshold)) {
            bail!(
                "bundle '{}': postprocess.grow_to must be 0 (off) or between 0 and the threshold {}, not {}",
                manifest.name,
                pp.threshold,
                pp.grow_to
            );
        }
        // Above 0.5 a slice would weigh less than each neighbour.
        if !(0.0..=0.5).contains(&pp.slice_smoothing) {
            bail!(
                "bundle '{}': postprocess.slice_smoothing must be between 0 (off) and 0.5, not {}",
                manifest.name,
                pp.slice_smoothing
            );
        }
        // Members may differ in input size (each sees the slice at its own size), not in what
        // they see: the inputs of a volume are prepared once per size with one context.
        let context = segmenters[0].config.context_slices;
        if let Some(odd) = segmenters.iter().find(|s| s.config.context_slices != context) {
            bail!(
                "bundle '{}': ensemble members need the same context slices ({context} vs {})",
                manifest.name,
                odd.config.context_slices
            );
        }
        Ok(Self {
            manifest,
            segmenters,
            classifier,
            device: device.clone(),
        })
    }

    /// Configuration of the (first) segmentation network; every member shares its context
    /// slices, not necessarily its input size ([`Self::seg_input_sizes`]).
    pub fn seg_config(&self) -> &SegmenterConfig {
        &self.segmenters[0].config
    }

    /// The segmentation members' input sizes, each once, in the members' order.
    pub fn seg_input_sizes(&self) -> Vec<u32> {
        let mut sizes: Vec<u32> = Vec::new();
        for s in &self.segmenters {
            if !sizes.contains(&s.config.input_size) {
                sizes.push(s.config.input_size);
            }
        }
        sizes
    }

    /// How many segmentation members take inputs of `size`.
    pub fn members_of_size(&self, size: u32) -> usize {
        self.segmenters.iter().filter(|s| s.config.input_size == size).count()
    }

    /// Tumour probability maps of prepared `3 x size x size` inputs, `batch` at a time: U-Nets
    /// folded on the CPU, the network's own forward pass elsewhere and for the EfficientNet
    /// U-Net; the mean over the ensemble's members of input size `size` (one of
    /// [`Self::seg_input_sizes`]; none: no maps).
    pub fn segment_probabilities(&self, images: &[&[f32]], size: u32, batch: usize) -> Vec<Vec<f32>> {
        let mut members = self.segmenters.iter().filter(|s| s.config.input_size == size);
        let run = |s: &Segmenter| s.probabilities(images, size, &self.device, batch);
        let Some(first) = members.next() else {
            return Vec::new();
        };
        let mut sum = run(first);
        for s in members {
            sum.iter_mut()
                .zip(run(s))
                .for_each(|(a, b)| a.iter_mut().zip(b).for_each(|(a, b)| *a += b));
        }
        let n = self.members_of_size(size) as f32;
        if n > 1.0 {
            sum.iter_mut().flatten().for_each(|v| *v /= n);
        }
        sum
    }

    /// Tumour probability per prepared slice from the slice classifier (`None` without one),
    /// folded on the CPU like [`Self::segment_probabilities`].
    pub fn classifier_probabilities(&self, images: &[&[f32]], batch: usize) -> Option<Vec<f32>> {
        Some(self.classifier.as_ref()?.probabilities(images, &self.device, batch))
    }

    /// Built-in when `path` is `None`.
    pub fn open(path: Option<&Path>, device: &Device) -> Result<Self> {
        match path {
            Some(p) => Self::load(p, device),
            None => Self::builtin(device),
        }
    }

    /// Who draws a DICOM Segmentation: this program and the model's name up to its first
    /// parenthesis ("tumorscan built-in v0.10").
    pub fn segmentation_source(&self) -> tumorscan_data::dicom_seg::SegmentationSource {
        tumorscan_data::dicom_seg::SegmentationSource {
            software: format!("tumorscan {}", env!("CARGO_PKG_VERSION")),
            algorithm: self.manifest.name.split(" (").next().unwrap_or_default().trim().to_string(),
        }
    }

    /// Short identity for reports and CSVs.
    pub fn identity(&self) -> String {
        let shas: Vec<&str> = self.segmenters.iter().map(|s| &s.weights_sha256[..12]).collect();
        format!("{} (segmentation weights sha256 {})", self.manifest.name, shas.join(" + "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tumorscan_model::SegmenterArch;

    /// Writes a tiny random segmentation network of `input_size` as a model folder.
    fn write_net(dir: &Path, input_size: u32, seed: u64) {
        let device = tumorscan_model::ComputeDevice::cpu().inference().expect("cpu device");
        device.seed(seed);
        let cfg = SegmenterConfig {
            features: 4,
            depth: 2,
            residual: false,
            input_size,
            ..Default::default()
        };
        let net = SegmentationNet::new(&cfg, &device);
        std::fs::create_dir_all(dir).unwrap();
        net.save_file(dir.join("model.bpk")).unwrap();
        let card = serde_json::json!({ "net": NetConfig::Segmenter(cfg) });
        std::fs::write(dir.join("model.json"), card.to_string()).unwrap();
    }

    /// A training run's folder given as --model points at its best/ network.
    #[test]
    fn a_run_folder_as_model_names_its_best_network() {
        let dir = tempfile::tempdir().unwrap();
        write_net(&dir.path().join("best"), 32, 1);
        let device = tumorscan_model::ComputeDevice::cpu().inference().expect("cpu device");
        let err = ModelBundle::load(dir.path(), &device).err().expect("refused").to_string();
        assert!(
            err.contains("must be a model folder") && err.contains("its chosen network is") && err.contains("best"),
            "{err}"
        );
        assert!(ModelBundle::load(&dir.path().join("best"), &device).is_ok());
    }

    fn write_bundle(dir: &Path, ensemble: &[&str]) {
        write_bundle_with(dir, ensemble, Postprocess::default());
    }

    fn write_bundle_with(dir: &Path, ensemble: &[&str], postprocess: Postprocess) {
        let m = BundleManifest {
            name: "test".into(),
            detection: DetectionRule::Segmentation {
                min_pixels: 1,
                min_probability: 0.0,
                slice_context: false,
            },
            postprocess,
            ensemble: ensemble.iter().map(|s| s.to_string()).collect(),
            info: serde_json::Value::Null,
        };
        std::fs::write(dir.join("bundle.json"), serde_json::to_string(&m).unwrap()).unwrap();
    }

    /// Writes a random EfficientNet-Lite0 U-Net reading `context` neighbours on each side.
    fn write_effunet(dir: &Path, input_size: u32, context: usize) {
        write_effunet_of(SegmenterArch::EfficientnetLite0Unet, dir, input_size, context);
    }

    fn write_effunet_of(arch: SegmenterArch, dir: &Path, input_size: u32, context: usize) {
        let device = tumorscan_model::ComputeDevice::cpu().inference().expect("cpu device");
        device.seed(3);
        let cfg = SegmenterConfig {
            input_size,
            arch,
            context_slices: context,
            ..Default::default()
        };
        let encoder = arch.lite_encoder().expect("an EfficientNet U-Net");
        let net = EfficientUNet::build(encoder, cfg.input_channels(), &device);
        std::fs::create_dir_all(dir).unwrap();
        net.save_file(dir.join("model.bpk")).unwrap();
        let card = serde_json::json!({ "net": NetConfig::Segmenter(cfg) });
        std::fs::write(dir.join("model.json"), card.to_string()).unwrap();
    }

    /// A segmentation network whose card says `--slice-head` trained its encoder's head reads
    /// as a classifier through that head; without it, with 2.5D context or on a plain U-Net,
    /// it is refused with a message.
    #[test]
    fn slice_head_networks_read_as_classifiers() {
        let tmp = tempfile::tempdir().unwrap();
        let device = tumorscan_model::ComputeDevice::cpu().inference().unwrap();
        let dir = tmp.path().join("run");
        write_effunet(&dir, 32, 0);
        let err = format!("{:#}", load_classifier_dir(&dir, &device).err().expect("an untrained head"));
        assert!(err.contains("classification head was not trained"), "{err}");
        let card = |cfg: serde_json::Value| std::fs::write(dir.join("model.json"), serde_json::json!({ "net": cfg }).to_string()).unwrap();
        let cfg = SegmenterConfig {
            input_size: 32,
            arch: SegmenterArch::EfficientnetLite0Unet,
            slice_head: true,
            ..Default::default()
        };
        card(serde_json::to_value(NetConfig::Segmenter(cfg.clone())).unwrap());
        let classifier = load_classifier_dir(&dir, &device).unwrap();
        assert_eq!(classifier.config.input_size, 32);
        let (a, b) = (vec![0.3f32; 3 * 32 * 32], vec![-0.7f32; 3 * 32 * 32]);
        let p = classifier.probabilities(&[&a, &b], &device, 2);
        // The encoder's own classifier path on the saved weights. (An untrained network's head
        // scores every input alike here, so this checks the path; the CLI test trains one.)
        let weights = std::fs::read(dir.join("model.bpk")).unwrap();
        let net = apply_weights(<EfficientUNet as SegmenterNet>::build(&cfg, &device), weights, "t").unwrap();
        assert_eq!(p, net.slice_probabilities(&[&a, &b], 32, &device, 1));
        assert!(p.len() == 2 && p.iter().all(|v| (0.0..=1.0).contains(v)), "{p:?}");
        let context = SegmenterConfig { context_slices: 1, ..cfg };
        card(serde_json::to_value(NetConfig::Segmenter(context)).unwrap());
        let err = format!("{:#}", load_classifier_dir(&dir, &device).err().expect("2.5D"));
        assert!(err.contains("2.5D"), "{err}");
        write_net(&dir, 32, 1);
        card(serde_json::json!({"kind": "segmenter", "features": 4, "depth": 2, "residual": false, "input_size": 32, "slice_head": true}));
        let err = format!("{:#}", load_classifier_dir(&dir, &device).err().expect("a U-Net"));
        assert!(err.contains("slice_head needs"), "{err}");
    }

    #[test]
    fn context_networks_load_and_see_their_neighbours() {
        let tmp = tempfile::tempdir().unwrap();
        let device = tumorscan_model::ComputeDevice::cpu().inference().unwrap();
        write_effunet(&tmp.path().join("segment"), 32, 1);
        write_bundle(tmp.path(), &[]);
        let bundle = ModelBundle::load(tmp.path(), &device).unwrap();
        assert_eq!(bundle.seg_config().input_channels(), 5);
        // Three slices of a volume: the middle one's input holds its neighbours' FLAIR, so
        // changing a neighbour changes its map.
        let slice = |k: u8| test_slice(k as usize, 32);
        let volume = |first: u8| crate::input::Volume {
            id: "v".into(),
            source: Default::default(),
            slices: vec![slice(first), slice(1), slice(2)],
            nifti: None,
            dicom: None,
            slice_thickness_mm: None,
            notes: Vec::new(),
        };
        let maps = |v: &crate::input::Volume, tta: bool| {
            let norm = tumorscan_data::normalize::Normalizer::fit(v.slices.iter().map(|s| s.rgb.as_slice()));
            crate::engine::probability_maps(&bundle, v, &norm, 2, tta)
        };
        let (a, b) = (maps(&volume(0), false), maps(&volume(9), false));
        assert_eq!(a.len(), 3);
        assert!(a.iter().all(|m| m.len() == 32 * 32));
        assert_ne!(a[1], b[1], "the middle slice must see its changed neighbour");
        assert_eq!(maps(&volume(0), true).len(), 3);
        // Members must agree on the context, and U-Nets have none.
        write_effunet(&tmp.path().join("segment-2"), 32, 0);
        write_bundle(tmp.path(), &["segment-2"]);
        let err = ModelBundle::load(tmp.path(), &device).err().expect("must fail").to_string();
        assert!(err.contains("same context slices"), "{err}");
        let card = serde_json::json!({ "net": {"kind": "segmenter", "features": 4, "depth": 2, "residual": false, "input_size": 32, "context_slices": 1} });
        std::fs::write(tmp.path().join("segment-2/model.json"), card.to_string()).unwrap();
        let err = format!("{:#}", ModelBundle::load(tmp.path(), &device).err().expect("must fail"));
        assert!(err.contains("context_slices needs"), "{err}");
        // Nor deep supervision, and an EfficientNet U-Net has at most four auxiliary outputs.
        let card = serde_json::json!({ "net": {"kind": "segmenter", "features": 4, "depth": 2, "residual": false, "input_size": 32, "deep_supervision": 1} });
        std::fs::write(tmp.path().join("segment-2/model.json"), card.to_string()).unwrap();
        let err = format!("{:#}", ModelBundle::load(tmp.path(), &device).err().expect("must fail"));
        assert!(err.contains("deep_supervision needs"), "{err}");
        let card = serde_json::json!({ "net": {"kind": "segmenter", "features": 16, "depth": 4, "residual": false, "input_size": 32,
            "arch": "efficientnet-lite0-unet", "deep_supervision": 5} });
        std::fs::write(tmp.path().join("segment-2/model.json"), card.to_string()).unwrap();
        let err = format!("{:#}", ModelBundle::load(tmp.path(), &device).err().expect("must fail"));
        assert!(err.contains("deep_supervision 5 is more than"), "{err}");
        // Decoder widths: five, on an EfficientNet U-Net only.
        let card = serde_json::json!({ "net": {"kind": "segmenter", "features": 16, "depth": 4, "residual": false, "input_size": 32,
            "arch": "efficientnet-lite0-unet", "decoder_widths": [96, 48, 32, 16]} });
        std::fs::write(tmp.path().join("segment-2/model.json"), card.to_string()).unwrap();
        let err = format!("{:#}", ModelBundle::load(tmp.path(), &device).err().expect("must fail"));
        assert!(err.contains("decoder widths need 5 levels, not 4"), "{err}");
        let card = serde_json::json!({ "net": {"kind": "segmenter", "features": 4, "depth": 2, "residual": false, "input_size": 32,
            "decoder_widths": [96, 48, 32, 16, 16]} });
        std::fs::write(tmp.path().join("segment-2/model.json"), card.to_string()).unwrap();
        let err = format!("{:#}", ModelBundle::load(tmp.path(), &device).err().expect("must fail"));
        assert!(err.contains("decoder_widths needs"), "{err}");
        // Decoder attention: an EfficientNet U-Net's only.
        let card = serde_json::json!({ "net": {"kind": "segmenter", "features": 4, "depth": 2, "residual": false, "input_size": 32,
            "decoder_attention": true} });
        std::fs::write(tmp.path().join("segment-2/model.json"), card.to_string()).unwrap();
        let err = format!("{:#}", ModelBundle::load(tmp.path(), &device).err().expect("must fail"));
        assert!(err.contains("decoder_attention needs"), "{err}");
    }

    #[test]
    fn an_efficientnet_unet_whose_input_size_its_strides_cannot_halve_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let device = tumorscan_model::ComputeDevice::cpu().inference().unwrap();
        write_effunet(&tmp.path().join("segment"), 32, 0);
        write_bundle(tmp.path(), &[]);
        assert!(ModelBundle::load(tmp.path(), &device).is_ok());
        // A hand-edited card: the weights fit any size, the network does not.
        let card = tmp.path().join("segment/model.json");
        let edited = std::fs::read_to_string(&card)
            .unwrap()
            .replace("\"input_size\":32", "\"input_size\":48");
        assert!(edited.contains("48"), "{edited}");
        std::fs::write(&card, edited).unwrap();
        let err = format!("{:#}", ModelBundle::load(tmp.path(), &device).err().expect("must fail"));
        assert!(err.contains("input_size 48") && err.contains("multiple of 32"), "{err}");
    }

    /// A Lite1 U-Net loads from its card and predicts; its weights under a Lite0 card are refused.
    #[test]
    fn a_lite1_unet_loads_by_its_card_and_only_by_it() {
        let tmp = tempfile::tempdir().unwrap();
        let device = tumorscan_model::ComputeDevice::cpu().inference().unwrap();
        write_effunet_of(SegmenterArch::EfficientnetLite1Unet, &tmp.path().join("segment"), 32, 0);
        write_bundle(tmp.path(), &[]);
        let bundle = ModelBundle::load(tmp.path(), &device).unwrap();
        let p = bundle.segment_probabilities(&[&image(32)], 32, 1).remove(0);
        assert_eq!(p.len(), 32 * 32);
        assert!(p.iter().all(|v| v.is_finite() && (0.0..=1.0).contains(v)));
        let card = tmp.path().join("segment/model.json");
        let edited = std::fs::read_to_string(&card).unwrap().replace("lite1", "lite0");
        std::fs::write(&card, edited).unwrap();
        assert!(ModelBundle::load(tmp.path(), &device).is_err());
    }

    /// Slice `k` of a test volume: `size x size`, a fixed pattern that differs per slice.
    fn test_slice(k: usize, size: u32) -> crate::input::InputSlice {
        crate::input::InputSlice {
            label: format!("s{k}"),
            stem: format!("s{k}"),
            number: k as u32,
            width: size,
            height: size,
            rgb: (0..(size * size * 3) as usize).map(|i| ((i * 7 + k * 13) % 256) as u8).collect(),
            spacing_mm: None,
            position_mm: None,
            orientation: None,
            truth: None,
            notes: Vec::new(),
        }
    }

    fn image(size: u32) -> Vec<f32> {
        (0..3 * size * size).map(|i| (i as f32 * 0.37).sin()).collect()
    }

    #[test]
    fn ensemble_averages_member_probabilities() {
        let tmp = tempfile::tempdir().unwrap();
        let device = tumorscan_model::ComputeDevice::cpu().inference().unwrap();
        write_net(&tmp.path().join("segment"), 32, 1);
        write_net(&tmp.path().join("segment-2"), 32, 2);
        let img = image(32);
        let single = |dir: &str| {
            let b = ModelBundle::load(&tmp.path().join(dir), &device).unwrap();
            b.segment_probabilities(&[&img], 32, 1).remove(0)
        };
        let (a, b) = (single("segment"), single("segment-2"));
        assert!(a.iter().zip(&b).any(|(x, y)| (x - y).abs() > 1e-4), "members should differ");
        write_bundle(tmp.path(), &["segment-2"]);
        let bundle = ModelBundle::load(tmp.path(), &device).unwrap();
        assert_eq!(bundle.segmenters.len(), 2);
        let got = bundle.segment_probabilities(&[&img], 32, 1).remove(0);
        for ((g, x), y) in got.iter().zip(&a).zip(&b) {
            assert!((g - (x + y) / 2.0).abs() < 1e-6);
        }
        assert!(bundle.identity().contains(" + "));
    }

    /// Members of different input sizes each see the slice at their own size; their maps,
    /// resized to the slice, are averaged over all members (a size with two members counts twice).
    #[test]
    fn ensemble_members_of_different_sizes_are_averaged_at_the_slices_size() {
        let tmp = tempfile::tempdir().unwrap();
        let device = tumorscan_model::ComputeDevice::cpu().inference().unwrap();
        write_net(&tmp.path().join("segment"), 32, 1);
        write_net(&tmp.path().join("segment-2"), 64, 2);
        write_net(&tmp.path().join("segment-3"), 32, 3);
        let slice = |k: usize| test_slice(k, 40);
        let volume = crate::input::Volume {
            id: "v".into(),
            source: Default::default(),
            slices: vec![slice(0), slice(1)],
            nifti: None,
            dicom: None,
            slice_thickness_mm: None,
            notes: Vec::new(),
        };
        let norm = tumorscan_data::normalize::Normalizer::fit(volume.slices.iter().map(|s| s.rgb.as_slice()));
        let maps = |b: &ModelBundle| crate::engine::probability_maps(b, &volume, &norm, 2, false);
        let single = |dir: &str| maps(&ModelBundle::load(&tmp.path().join(dir), &device).unwrap());
        let (a, b, c) = (single("segment"), single("segment-2"), single("segment-3"));
        write_bundle(tmp.path(), &["segment-2", "segment-3"]);
        let bundle = ModelBundle::load(tmp.path(), &device).unwrap();
        assert_eq!(bundle.seg_input_sizes(), [32, 64]);
        assert_eq!((bundle.members_of_size(32), bundle.members_of_size(64)), (2, 1));
        let got = maps(&bundle);
        assert_eq!(got.len(), 2);
        for (i, map) in got.iter().enumerate() {
            assert_eq!(map.len(), 40 * 40);
            for (j, &g) in map.iter().enumerate() {
                let want = (a[i][j] + b[i][j] + c[i][j]) / 3.0;
                assert!((g - want).abs() < 1e-5, "slice {i} pixel {j}: {g} vs {want}");
            }
        }
        // The 64 member's maps differ from the 32 members' mean, so it was not dropped.
        assert!(got[0]
            .iter()
            .zip(&a[0])
            .zip(&c[0])
            .any(|((g, a), c)| (g - (a + c) / 2.0).abs() > 1e-4));
        write_bundle(tmp.path(), &["missing"]);
        let err = format!("{:#}", ModelBundle::load(tmp.path(), &device).err().expect("must fail"));
        assert!(err.contains("missing"), "{err}");
    }

    #[test]
    fn clean_up_values_out_of_range_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let device = tumorscan_model::ComputeDevice::cpu().inference().unwrap();
        write_net(&tmp.path().join("segment"), 32, 1);
        let fraction = |f: f32| Postprocess {
            min_3d_fraction: f,
            ..Postprocess::default()
        };
        write_bundle_with(tmp.path(), &[], fraction(0.1));
        assert!(ModelBundle::load(tmp.path(), &device).is_ok());
        for (pp, field) in [
            (
                Postprocess {
                    grow_to: 0.6,
                    ..Postprocess::default()
                },
                "grow_to",
            ),
            (
                Postprocess {
                    grow_to: -0.2,
                    ..Postprocess::default()
                },
                "grow_to",
            ),
            (
                Postprocess {
                    slice_smoothing: 0.6,
                    ..Postprocess::default()
                },
                "slice_smoothing",
            ),
            (fraction(1.5), "min_3d_fraction"),
            (fraction(-0.1), "min_3d_fraction"),
            (
                Postprocess {
                    threshold: 0.0,
                    ..Postprocess::default()
                },
                "threshold",
            ),
            (
                Postprocess {
                    threshold: 1.2,
                    ..Postprocess::default()
                },
                "threshold",
            ),
        ] {
            write_bundle_with(tmp.path(), &[], pp);
            let err = ModelBundle::load(tmp.path(), &device).err().expect("must fail").to_string();
            assert!(err.contains(field), "{err}");
        }
    }

    #[test]
    fn builtin_bundle_loads_every_member() {
        let device = tumorscan_model::ComputeDevice::cpu().inference().unwrap();
        let b = ModelBundle::builtin(&device).unwrap();
        assert_eq!(b.segmenters.len(), 1 + b.manifest.ensemble.len());
    }

    #[test]
    fn component_ranking_defaults_to_voxels_and_round_trips() {
        let old: Postprocess =
            serde_json::from_str(r#"{"threshold": 0.5, "min_component_pixels": 0, "largest_3d_component": true}"#).unwrap();
        assert_eq!(old.keep_3d_by, ComponentRank::Voxels);
        assert!(!serde_json::to_string(&old).unwrap().contains("keep_3d_by"));
        let peak = Postprocess {
            keep_3d_by: ComponentRank::Peak,
            ..old
        };
        let json = serde_json::to_value(&peak).unwrap();
        assert_eq!(json["keep_3d_by"], "peak");
        assert_eq!(serde_json::from_value::<Postprocess>(json).unwrap().keep_3d_by, ComponentRank::Peak);
        assert!(serde_json::from_str::<Postprocess>(
            r#"{"threshold": 0.5, "min_component_pixels": 0, "largest_3d_component": true, "keep_3d_by": "biggest"}"#
        )
        .is_err());
    }
}
