//! The segmentation task: U-Net / ResUNet / EfficientNet U-Net with a configurable loss,
//! selected by mean per-patient volumetric Dice on the validation patients.

use crate::engine::{from_pretrained, Batch, Task, ValItem};
use crate::loss::SegLoss;
use burn::prelude::*;
use std::collections::BTreeMap;
use std::marker::PhantomData;
use std::path::PathBuf;
use tumorscan_data::augment::resize_map;
use tumorscan_evaluate::overlap::Counts;
use tumorscan_model::{NetConfig, SegmentationNet, SegmenterConfig, SegmenterNet};

/// Segmentation training task for a network `N` (the U-Net / ResUNet by default).
pub struct SegmentTask<N = SegmentationNet> {
    /// Network.
    pub net: SegmenterConfig,
    /// Loss.
    pub loss: SegLoss,
    /// Pretrained weights to start from (ImageNet for the EfficientNet U-Net's encoder).
    pub pretrained: Option<PathBuf>,
    /// The network type.
    pub arch: PhantomData<fn() -> N>,
}

impl<N: SegmenterNet> SegmentTask<N> {
    /// A task for `net` with `loss`, from `pretrained` weights where given.
    pub fn new(net: SegmenterConfig, loss: SegLoss, pretrained: Option<PathBuf>) -> Self {
        Self {
            net,
            loss,
            pretrained,
            arch: PhantomData,
        }
    }
}

/// Binary mask at the slice's own size from a model-size probability map.
pub fn native_mask(prob: &[f32], size: u32, width: u32, height: u32, threshold: f32) -> Vec<u8> {
    resize_map(prob, size, size, (width, height))
        .into_iter()
        .map(|p| (p >= threshold) as u8)
        .collect()
}

impl<N: SegmenterNet> Task for SegmentTask<N> {
    type Net = N;
    fn kind(&self) -> &'static str {
        "segment"
    }
    fn net_config(&self) -> NetConfig {
        NetConfig::Segmenter(self.net.clone())
    }
    fn objective(&self) -> serde_json::Value {
        // Runs without pretrained weights record what they always did (resume compares it).
        match &self.pretrained {
            Some(p) => serde_json::json!({ "loss": self.loss, "pretrained": p }),
            None => serde_json::json!({ "loss": self.loss }),
        }
    }
    fn build(&self, device: &Device) -> N {
        N::build(&self.net, device)
    }
    fn initialise(&self, net: N) -> anyhow::Result<N> {
        from_pretrained(net, self.pretrained.as_deref(), N::load_pretrained)
    }
    fn loss(&self, net: &N, batch: Batch) -> Tensor<1> {
        self.loss.compute(net.logits(batch.images), batch.masks)
    }
    fn selection_metric(&self) -> &'static str {
        "val_patient_dice"
    }
    fn validate(&self, net: &N, items: &[ValItem], device: &Device, batch_size: usize) -> BTreeMap<String, f64> {
        let size = self.net.input_size;
        let inputs: Vec<&[f32]> = items.iter().map(|i| i.sample.image.as_slice()).collect();
        let probs = net.probabilities(&inputs, size, device, batch_size);
        let mut per_patient: BTreeMap<&str, Counts> = BTreeMap::new();
        let (mut slice_dice, mut tumor, mut fp_slices, mut empty) = (0.0, 0usize, 0usize, 0usize);
        for (item, p) in items.iter().zip(&probs) {
            let s = item.slice;
            let mask = native_mask(p, size, s.width, s.height, 0.5);
            let c = Counts::of(&mask, &s.mask);
            let e = per_patient.entry(&s.patient).or_default();
            *e = *e + c;
            if c.tp + c.fn_ > 0 {
                tumor += 1;
                slice_dice += c.dice().unwrap_or(0.0);
            } else {
                empty += 1;
                fp_slices += (c.fp > 0) as usize;
            }
        }
        let dices: Vec<f64> = per_patient.values().map(|c| c.dice().unwrap_or(1.0)).collect();
        BTreeMap::from([
            (
                "val_patient_dice".to_string(),
                dices.iter().sum::<f64>() / dices.len().max(1) as f64,
            ),
            ("val_slice_dice".to_string(), slice_dice / tumor.max(1) as f64),
            ("val_fp_slice_rate".to_string(), fp_slices as f64 / empty.max(1) as f64),
        ])
    }
}
