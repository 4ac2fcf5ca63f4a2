//! The segmentation task: U-Net / ResUNet / EfficientNet U-Net with a configurable loss,
//! selected by mean per-patient volumetric Dice on the validation patients.

use crate::engine::{from_pretrained, Batch, Task, ValItem};
use crate::loss::{bce_with_logits, Reduction, SegLoss};
use burn::prelude::*;
use std::collections::BTreeMap;
use std::marker::PhantomData;
use std::path::PathBuf;
use tumorscan_data::augment::resize_map;
use tumorscan_evaluate::detection::{roc_auc, Confusion, Scored};
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
    /// Tumour probability the output layer starts at (`--output-prior`); `None`: a fresh layer (0.5).
    pub output_prior: Option<f32>,
    /// Over what the loss's overlap terms sum (`--loss-reduction`).
    pub reduction: Reduction,
    /// Weight of the slice label's BCE on the encoder's classification head (`--slice-head`;
    /// 0: the head is not trained). Needs a network config with `slice_head` set.
    pub slice_weight: f32,
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
            output_prior: None,
            reduction: Reduction::Batch,
            slice_weight: 0.0,
            arch: PhantomData,
        }
    }
    /// The same task with the output layer started at tumour probability `p` where given.
    pub fn with_output_prior(self, p: Option<f32>) -> Self {
        Self { output_prior: p, ..self }
    }
    /// The same task with the loss's overlap terms summed as `r` says.
    pub fn with_reduction(self, r: Reduction) -> Self {
        Self { reduction: r, ..self }
    }
    /// The same task with the encoder's classification head trained on the slice label, its
    /// BCE weighted by `w` beside the outline loss (0: not trained); the config records it.
    pub fn with_slice_head(mut self, w: f32) -> Self {
        self.net.slice_head = w > 0.0;
        Self { slice_weight: w, ..self }
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
        let mut o = serde_json::json!({ "loss": self.loss });
        if let Some(p) = &self.pretrained {
            o["pretrained"] = serde_json::json!(p);
        }
        if let Some(p) = self.output_prior {
            o["output_prior"] = serde_json::json!(p);
        }
        if self.reduction != Reduction::Batch {
            o["loss_reduction"] = serde_json::json!(self.reduction);
        }
        if self.slice_weight > 0.0 {
            o["slice_head"] = serde_json::json!(self.slice_weight);
        }
        o
    }
    fn build(&self, device: &Device) -> N {
        N::build(&self.net, device)
    }
    fn pretrained_part(&self, net: &N) -> Option<burn::module::ParamGroup> {
        net.pretrained_part()
    }
    fn initialise(&self, net: N) -> anyhow::Result<N> {
        let net = from_pretrained(net, self.pretrained.as_deref(), N::load_pretrained)?;
        Ok(match self.output_prior {
            Some(p) => net.with_output_prior(p),
            None => net,
        })
    }
    fn loss(&self, net: &N, batch: Batch) -> Tensor<1> {
        if self.slice_weight <= 0.0 {
            return self
                .loss
                .deep_supervised(net.deep_logits(batch.images), batch.masks, self.reduction);
        }
        let (outlines, slice) = net.deep_and_slice_logits(batch.images);
        let outline_loss = self.loss.deep_supervised(outlines, batch.masks, self.reduction);
        match slice {
            Some(logits) => outline_loss + bce_with_logits(logits, batch.labels) * self.slice_weight,
            None => outline_loss,
        }
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
        let mut metrics = self.slice_head_metrics(net, items, device, batch_size);
        // What cannot be measured is left out, not written as 0: without a tumour slice, every
        // patient's Dice is 1 for an empty outline, so selecting on it would reward a network
        // that finds nothing (the engine refuses to select without the metric).
        if tumor > 0 {
            metrics.extend([
                (
                    "val_patient_dice".to_string(),
                    dices.iter().sum::<f64>() / dices.len().max(1) as f64,
                ),
                ("val_slice_dice".to_string(), slice_dice / tumor as f64),
            ]);
        }
        if empty > 0 {
            metrics.insert("val_fp_slice_rate".to_string(), fp_slices as f64 / empty as f64);
        }
        metrics
    }
}

impl<N: SegmenterNet> SegmentTask<N> {
    /// Validation ROC-AUC and accuracy at 0.5 of a trained classification head (none without).
    fn slice_head_metrics(&self, net: &N, items: &[ValItem], device: &Device, batch_size: usize) -> BTreeMap<String, f64> {
        if !self.net.slice_head {
            return BTreeMap::new();
        }
        let inputs: Vec<&[f32]> = items.iter().map(|i| i.sample.image.as_slice()).collect();
        let Some(probs) = net.slice_probabilities(&inputs, self.net.input_size, device, batch_size) else {
            return BTreeMap::new();
        };
        let scored = crate::detect::scored(items, probs);
        let refs: Vec<&Scored> = scored.iter().collect();
        BTreeMap::from([
            ("val_slice_head_auc".to_string(), roc_auc(&refs)),
            ("val_slice_head_accuracy".to_string(), Confusion::at(&refs, 0.5).accuracy()),
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tumorscan_model::EfficientUNet;

    /// A two-level U-Net with 4 features on 32x32 inputs.
    fn tiny() -> SegmenterConfig {
        SegmenterConfig {
            features: 4,
            depth: 2,
            input_size: 32,
            ..Default::default()
        }
    }

    /// Validation slices of `tumour` phantoms (a disc on each) or tumour-free ones.
    fn validate_on(tumour: bool, empty: bool) -> BTreeMap<String, f64> {
        use tumorscan_data::phantom::phantom_slice;
        let mut slices = Vec::new();
        if tumour {
            slices.push(phantom_slice("P", 1, 32, Some((0.5, 0.5, 5.0))));
        }
        if empty {
            slices.push(phantom_slice("P", 2, 32, None));
        }
        let norm = tumorscan_data::normalize::Normalizer::fit(slices.iter().map(|s| s.image.as_slice()));
        let items: Vec<ValItem> = slices
            .iter()
            .map(|s| ValItem {
                slice: s,
                sample: tumorscan_data::augment::prepare_sample_in_context::<rand_chacha::ChaCha8Rng>(s, &[], &norm, 32, None),
            })
            .collect();
        let task = SegmentTask::<SegmentationNet>::new(tiny(), SegLoss::Bce, None);
        let device = Device::flex();
        task.validate(&task.build(&device), &items, &device, 2)
    }

    /// What validation cannot measure is left out, never written as 0 (or as a Dice of 1 for
    /// patients without tumour): so a validation fold without tumour slices cannot select a
    /// network, and the engine refuses it.
    #[test]
    fn validation_leaves_out_what_it_cannot_measure() {
        let _guard = crate::tests_engine::serial();
        let both = validate_on(true, true);
        for key in ["val_patient_dice", "val_slice_dice", "val_fp_slice_rate"] {
            assert!(both.get(key).is_some_and(|v| v.is_finite()), "{key}: {both:?}");
        }
        let clean = validate_on(false, true);
        assert!(
            !clean.contains_key("val_patient_dice") && !clean.contains_key("val_slice_dice"),
            "{clean:?}"
        );
        assert!(clean.contains_key("val_fp_slice_rate"), "{clean:?}");
        let all_tumour = validate_on(true, false);
        assert!(
            !all_tumour.contains_key("val_fp_slice_rate") && all_tumour.contains_key("val_patient_dice"),
            "{all_tumour:?}"
        );
    }

    #[test]
    fn output_prior_is_recorded_and_starts_the_network_there() {
        let _guard = crate::tests_engine::serial();
        let plain = SegmentTask::<SegmentationNet>::new(tiny(), SegLoss::Bce, None);
        // Runs without it keep their recorded objective, so they still resume.
        assert_eq!(plain.objective(), serde_json::json!({ "loss": SegLoss::Bce }));
        let task = plain.with_output_prior(Some(0.01));
        assert_eq!(task.objective()["output_prior"], serde_json::json!(0.01f32));
        let device = Device::flex();
        let net = task.initialise(task.build(&device)).expect("no pretrained file to read");
        let p = net.probabilities(&[&vec![0.3; 3 * 32 * 32]], 32, &device, 1);
        assert!(p[0].iter().all(|v| (0.0075..0.0125).contains(v)));
        // The new weights are trainable leaves: step after step, every parameter has a
        // gradient, as in a network without the prior.
        let device = Device::flex().autodiff();
        let fresh = task.build(&device);
        let net = task.initialise(task.build(&device)).expect("no pretrained file to read");
        let graded = |n: &SegmentationNet| {
            let x = Tensor::<4>::ones([2, 3, 32, 32], &device);
            burn::optim::GradientsParams::from_grads(n.logits(x).sum().backward(), n).len()
        };
        for _ in 0..2 {
            assert_eq!(graded(&net), graded(&fresh));
        }
    }

    /// `--slice-head W`: the config and the objective record it (a run without it records what
    /// it always did), and the loss is the outline loss plus W times the BCE of the encoder's
    /// classification head on the slice labels.
    #[test]
    fn slice_head_adds_the_weighted_bce_of_the_encoder_head() {
        let _guard = crate::tests_engine::serial();
        let cfg = SegmenterConfig {
            input_size: 32,
            arch: tumorscan_model::SegmenterArch::EfficientnetLite0Unet,
            ..Default::default()
        };
        let plain = SegmentTask::<EfficientUNet>::new(cfg.clone(), SegLoss::BceDice, None);
        assert_eq!(plain.objective(), serde_json::json!({ "loss": SegLoss::BceDice }));
        let task = SegmentTask::<EfficientUNet>::new(cfg, SegLoss::BceDice, None).with_slice_head(0.5);
        assert!(task.net.slice_head && !plain.net.slice_head);
        assert_eq!(task.objective()["slice_head"], serde_json::json!(0.5f32));
        let device = Device::flex();
        let net = task.build(&device);
        let images = Tensor::<4>::random([2, 3, 32, 32], burn::tensor::Distribution::Normal(0.0, 1.0), &device);
        let tumour = Tensor::<4>::ones([1, 1, 32, 32], &device);
        let masks = Tensor::cat(vec![tumour.clone(), tumour.zeros_like()], 0);
        let labels = Tensor::<1>::from_floats([1.0, 0.0], &device);
        let value = |t: Tensor<1>| t.into_data().try_to_vec::<f32>().expect("f32")[0];
        let batch = || Batch {
            images: images.clone(),
            masks: masks.clone(),
            labels: labels.clone(),
        };
        let (outlines, slice) = net.forward_all(images.clone(), true);
        let outline_loss = value(SegLoss::BceDice.deep_supervised(outlines, masks.clone(), Reduction::Batch));
        let head_loss = value(bce_with_logits(slice.expect("asked for"), labels.clone()));
        let (with, without) = (value(task.loss(&net, batch())), value(plain.loss(&net, batch())));
        assert!((without - outline_loss).abs() < 1e-6, "{without} vs {outline_loss}");
        assert!(
            (with - (outline_loss + 0.5 * head_loss)).abs() < 1e-5,
            "{with} vs {outline_loss} + 0.5 x {head_loss}"
        );
        assert!(head_loss > 0.01);
    }

    /// The per-slice reduction is recorded (so `--resume` refuses to mix the two) and is what
    /// the task's loss uses; the default batch sum leaves the recorded objective as it was.
    #[test]
    fn loss_reduction_is_recorded_and_used() {
        let _guard = crate::tests_engine::serial();
        let loss = SegLoss::FocalTversky {
            alpha: 0.5,
            beta: 0.5,
            gamma: 0.75,
        };
        let batch = SegmentTask::<SegmentationNet>::new(tiny(), loss, None);
        assert_eq!(batch.objective(), serde_json::json!({ "loss": loss }));
        let slice = SegmentTask::<SegmentationNet>::new(tiny(), loss, None).with_reduction(Reduction::Slice);
        assert_eq!(slice.objective()["loss_reduction"], "slice");
        // One tumour slice and one empty one: the two reductions give different losses, each
        // the loss's own value for that reduction.
        let device = Device::flex();
        let net = batch.build(&device);
        let images = Tensor::<4>::random([2, 3, 32, 32], burn::tensor::Distribution::Normal(0.0, 1.0), &device);
        let tumour = Tensor::<4>::ones([1, 1, 32, 32], &device);
        let masks = Tensor::cat(vec![tumour.clone(), tumour.zeros_like()], 0);
        let value = |t: Tensor<1>| t.into_data().try_to_vec::<f32>().expect("f32")[0];
        let run = |task: &SegmentTask<SegmentationNet>| {
            let b = Batch {
                images: images.clone(),
                masks: masks.clone(),
                labels: Tensor::<1>::from_floats([1.0, 0.0], &device),
            };
            value(task.loss(&net, b))
        };
        let logits = net.logits(images.clone());
        let (b, s) = (run(&batch), run(&slice));
        assert!((b - value(loss.reduced(logits.clone(), masks.clone(), Reduction::Batch))).abs() < 1e-6);
        assert!((s - value(loss.reduced(logits, masks, Reduction::Slice))).abs() < 1e-6);
        assert!((b - s).abs() > 1e-3, "{b} vs {s}");
    }
}
