//! The detection task: a slice classifier trained with BCE, selected by validation ROC-AUC
//! (accuracy breaks ties); its decision threshold is the validation-accuracy-maximising one
//! ([`tumorscan_evaluate::detection::best_accuracy_threshold`]) and ships in `model.json`.

use crate::engine::{from_pretrained, Batch, Task, ValItem};
use crate::loss::bce_with_logits;
use burn::prelude::*;
use std::collections::BTreeMap;
use std::marker::PhantomData;
use std::path::PathBuf;
use tumorscan_evaluate::detection::{best_accuracy_threshold, roc_auc, Confusion, Scored};
use tumorscan_model::{ClassifierConfig, ClassifierNet, NetConfig, SliceClassifier};

/// Detection training task for a classifier network `N` (the compact ResNet by default).
pub struct DetectTask<N = SliceClassifier> {
    /// Network.
    pub net: ClassifierConfig,
    /// Pretrained weights to start from (e.g. ImageNet for EfficientNet-Lite0).
    pub pretrained: Option<PathBuf>,
    /// The network type.
    pub arch: PhantomData<fn() -> N>,
}

impl<N: ClassifierNet> DetectTask<N> {
    /// A task for `net`, from `pretrained` weights where given.
    pub fn new(net: ClassifierConfig, pretrained: Option<PathBuf>) -> Self {
        Self {
            net,
            pretrained,
            arch: PhantomData,
        }
    }

    fn scores(&self, net: &N, items: &[ValItem], device: &Device, batch: usize) -> Vec<Scored> {
        let inputs: Vec<&[f32]> = items.iter().map(|i| i.sample.image.as_slice()).collect();
        scored(items, net.probabilities(&inputs, self.net.input_size, device, batch))
    }
}

/// Each validation slice with its tumour probability (`probs`, one per item) and its truth.
pub(crate) fn scored(items: &[ValItem], probs: Vec<f32>) -> Vec<Scored> {
    items
        .iter()
        .zip(probs)
        .map(|(i, p)| Scored {
            patient: i.slice.patient.clone(),
            slice: i.slice.number,
            score: p as f64,
            truth: i.slice.has_tumor(),
            truth_pixels: i.slice.tumor_pixels(),
        })
        .collect()
}

impl<N: ClassifierNet> Task for DetectTask<N> {
    type Net = N;
    fn kind(&self) -> &'static str {
        "detect"
    }
    fn net_config(&self) -> NetConfig {
        NetConfig::Classifier(self.net.clone())
    }
    fn objective(&self) -> serde_json::Value {
        serde_json::json!({ "loss": "bce", "pretrained": self.pretrained })
    }
    fn build(&self, device: &Device) -> N {
        N::build(&self.net, device)
    }
    fn initialise(&self, net: N) -> anyhow::Result<N> {
        from_pretrained(net, self.pretrained.as_deref(), N::load_pretrained)
    }
    fn loss(&self, net: &N, batch: Batch) -> Tensor<1> {
        bce_with_logits(net.logits(batch.images), batch.labels)
    }
    fn selection_metric(&self) -> &'static str {
        "val_score"
    }
    fn validate(&self, net: &N, items: &[ValItem], device: &Device, batch_size: usize) -> BTreeMap<String, f64> {
        let scored = self.scores(net, items, device, batch_size);
        let refs: Vec<&Scored> = scored.iter().collect();
        let auc = roc_auc(&refs);
        let acc = Confusion::at(&refs, 0.5).accuracy();
        BTreeMap::from([
            ("val_auc".to_string(), auc),
            ("val_accuracy".to_string(), acc),
            // AUC first; accuracy at 0.5 separates epochs of equal AUC.
            ("val_score".to_string(), auc + 1e-3 * acc),
        ])
    }
    fn model_extras(&self, net: &N, items: &[ValItem], device: &Device) -> serde_json::Value {
        let scored = self.scores(net, items, device, 16);
        serde_json::json!({ "threshold": best_accuracy_threshold(&scored), "threshold_rule": "maximises validation slice accuracy, midway between the validation scores on either side; ties nearest 0.5" })
    }
}
