//! The segmentation task: U-Net / ResUNet with a configurable loss, selected by mean
//! per-patient volumetric Dice on the validation patients.

use crate::engine::{Batch, Task, ValItem};
use crate::loss::SegLoss;
use burn::prelude::*;
use std::collections::BTreeMap;
use tumorscan_data::augment::resize_map;
use tumorscan_evaluate::overlap::Counts;
use tumorscan_model::{NetConfig, SegmentationNet, SegmenterConfig};

/// Segmentation training task.
pub struct SegmentTask {
    /// Network.
    pub net: SegmenterConfig,
    /// Loss.
    pub loss: SegLoss,
}

/// Binary mask at the slice's own size from a model-size probability map.
pub fn native_mask(prob: &[f32], size: u32, width: u32, height: u32, threshold: f32) -> Vec<u8> {
    resize_map(prob, size, size, (width, height))
        .into_iter()
        .map(|p| (p >= threshold) as u8)
        .collect()
}

impl Task for SegmentTask {
    type Net = SegmentationNet;
    fn kind(&self) -> &'static str {
        "segment"
    }
    fn net_config(&self) -> NetConfig {
        NetConfig::Segmenter(self.net.clone())
    }
    fn objective(&self) -> serde_json::Value {
        serde_json::json!({ "loss": self.loss })
    }
    fn build(&self, device: &Device) -> SegmentationNet {
        SegmentationNet::new(&self.net, device)
    }
    fn loss(&self, net: &SegmentationNet, batch: Batch) -> Tensor<1> {
        self.loss.compute(net.forward(batch.images), batch.masks)
    }
    fn selection_metric(&self) -> &'static str {
        "val_patient_dice"
    }
    fn validate(&self, net: &SegmentationNet, items: &[ValItem], device: &Device, batch_size: usize) -> BTreeMap<String, f64> {
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
