//! Engine tests on tiny phantoms: learning, resume, determinism.

use crate::engine::{train, TrainConfig};
use crate::loss::SegLoss;
use crate::segment::SegmentTask;
use crate::split::RunSplit;
use tumorscan_data::augment::AugmentConfig;
use tumorscan_data::phantom::phantom_dataset;
use tumorscan_model::{ComputeDevice, SegmentationNet, SegmenterConfig};

/// burn's seed and random generator are global to the process: every test that builds a
/// network draws from them, so each takes this lock, or a seeded test gets another's draws.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Holds [`SERIAL`] for the rest of the calling test (a panicked holder does not poison it).
pub(crate) fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn setup() -> (tumorscan_data::LoadedDataset, RunSplit, SegmentTask, TrainConfig) {
    let ds = phantom_dataset(3, 4, 32);
    let ids: Vec<String> = ds.patients.iter().map(|p| p.id.clone()).collect();
    let split = RunSplit {
        train: ids[..2].iter().cloned().collect(),
        val: ids[2..].iter().cloned().collect(),
        test: Default::default(),
    };
    let task = SegmentTask::new(
        SegmenterConfig {
            features: 4,
            depth: 2,
            residual: false,
            input_size: 32,
            ..Default::default()
        },
        SegLoss::BceDice,
        None,
    );
    let cfg = TrainConfig {
        epochs: 8,
        batch_size: 4,
        learning_rate: 1e-2,
        patience: 100,
        seed: 3,
        empty_per_tumor: None,
        augment: AugmentConfig::none(),
        max_steps_per_epoch: None,
        train_on_val: false,
        init_from: None,
        ema_decay: None,
        weight_decay: None,
        oversample_small: None,
        encoder_lr_factor: None,
    };
    (ds, split, task, cfg)
}

fn history(dir: &std::path::Path) -> Vec<serde_json::Value> {
    serde_json::from_slice(&std::fs::read(dir.join("metrics.json")).unwrap()).unwrap()
}

#[test]
fn tiny_model_reduces_its_loss() {
    let _guard = serial();
    let (ds, split, task, cfg) = setup();
    let out = tempfile::tempdir().unwrap();
    let o = train(&task, &ds, &split, &cfg, &[ComputeDevice::cpu()], out.path(), false).unwrap();
    assert_eq!(o.epochs, 8);
    let h = history(out.path());
    let (first, last) = (h[0]["train_loss"].as_f64().unwrap(), h[7]["train_loss"].as_f64().unwrap());
    assert!(last < first * 0.9, "loss {first} -> {last}");
    assert!(out.path().join("best/model.bpk").exists() && out.path().join("curves.png").exists());
    // A second start without --resume refuses to clobber the run.
    assert!(train(&task, &ds, &split, &cfg, &[ComputeDevice::cpu()], out.path(), false).is_err());
}

#[test]
fn resume_continues_from_the_saved_epoch_and_matches_an_uninterrupted_run() {
    let _guard = serial();
    let (ds, split, task, cfg) = setup();
    let cfg = TrainConfig { epochs: 3, ..cfg };
    let full = tempfile::tempdir().unwrap();
    train(&task, &ds, &split, &cfg, &[ComputeDevice::cpu()], full.path(), false).unwrap();
    // "Crash" after 2 epochs: train 2 of 3 epochs by stopping early via a copy of the state.
    let part = tempfile::tempdir().unwrap();
    let short = TrainConfig {
        epochs: 3,
        max_steps_per_epoch: None,
        ..cfg.clone()
    };
    crate::engine::train_until(&task, &ds, &split, &short, &[ComputeDevice::cpu()], part.path(), 2).unwrap();
    assert_eq!(history(part.path()).len(), 2);
    // The loss is part of the run: resuming with another one is refused, and config.json records it.
    let config: serde_json::Value = serde_json::from_slice(&std::fs::read(part.path().join("config.json")).unwrap()).unwrap();
    assert_eq!(config["objective"]["loss"]["name"], "bce-dice");
    let other = SegmentTask::<SegmentationNet>::new(task.net.clone(), SegLoss::Dice, None);
    let err = train(&other, &ds, &split, &cfg, &[ComputeDevice::cpu()], part.path(), true).unwrap_err();
    assert!(err.to_string().contains("loss"), "{err}");
    let o = train(&task, &ds, &split, &cfg, &[ComputeDevice::cpu()], part.path(), true).unwrap();
    assert_eq!(o.epochs, 3);
    let (a, b) = (history(full.path()), history(part.path()));
    assert_eq!(b.len(), 3);
    assert_eq!(a[2]["train_loss"], b[2]["train_loss"], "resumed run follows the same trajectory");
    // Same weights (and batch-norm statistics): bit-identical predictions. The files differ in
    // their parameter ids, which burn draws afresh for every network built.
    let last = "checkpoint/epoch-0003.model.bpk";
    assert!(
        predict_saved(&task, full.path(), last) == predict_saved(&task, part.path(), last),
        "bit-identical predictions after resume"
    );
}

/// Output of the network saved at `file` in run `dir` on a fixed input.
fn predict_saved(task: &SegmentTask, dir: &std::path::Path, file: &str) -> Vec<f32> {
    let device = burn::prelude::Device::flex();
    let net = tumorscan_model::SegmentationNet::new(&task.net, &device);
    let net = crate::checkpoint::load_module(net, &dir.join(file)).unwrap();
    let x = burn::prelude::Tensor::<4>::ones([1, 3, 32, 32], &device);
    net.forward(x).into_data().try_to_vec().unwrap()
}

#[test]
fn weight_averaging_saves_the_average_leaves_training_alone_and_resumes() {
    let _guard = serial();
    let (ds, split, task, cfg) = setup();
    let plain = TrainConfig { epochs: 3, ..cfg };
    let averaged = TrainConfig {
        ema_decay: Some(0.9),
        ..plain.clone()
    };
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    train(&task, &ds, &split, &plain, &[ComputeDevice::cpu()], a.path(), false).unwrap();
    train(&task, &ds, &split, &averaged, &[ComputeDevice::cpu()], b.path(), false).unwrap();
    // The average never feeds back: the same trained weights and losses.
    let last = "checkpoint/epoch-0003.model.bpk";
    assert!(predict_saved(&task, a.path(), last) == predict_saved(&task, b.path(), last));
    assert_eq!(history(a.path())[2]["train_loss"], history(b.path())[2]["train_loss"]);
    // What is validated and saved is the average, not the trained weights.
    let avg_last = predict_saved(&task, b.path(), "checkpoint/epoch-0003.ema.bpk");
    assert!(avg_last != predict_saved(&task, b.path(), last));
    let card: serde_json::Value = serde_json::from_slice(&std::fs::read(b.path().join("best/model.json")).unwrap()).unwrap();
    assert!(card["weights"].as_str().unwrap().contains("moving average"), "{card}");
    let best_epoch = card["epoch"].as_u64().unwrap();
    assert_eq!(
        history(b.path())[best_epoch as usize - 1]["val"],
        card["validation"],
        "best/ holds the validated (averaged) network"
    );
    // Killed after epoch 2 and resumed: the average continues from its checkpoint and ends
    // bit-identical to the uninterrupted one.
    let part = tempfile::tempdir().unwrap();
    crate::engine::train_until(&task, &ds, &split, &averaged, &[ComputeDevice::cpu()], part.path(), 2).unwrap();
    assert!(part.path().join("checkpoint/epoch-0002.ema.bpk").exists());
    train(&task, &ds, &split, &averaged, &[ComputeDevice::cpu()], part.path(), true).unwrap();
    assert!(predict_saved(&task, part.path(), "checkpoint/epoch-0003.ema.bpk") == avg_last);
    assert!(
        !part.path().join("checkpoint/epoch-0002.ema.bpk").exists(),
        "older checkpoints removed"
    );
    // A plain run cannot be resumed as an averaged one (the config differs).
    assert!(train(&task, &ds, &split, &averaged, &[ComputeDevice::cpu()], a.path(), true).is_err());
}

#[test]
fn two_replicas_train_and_record_their_devices() {
    let _guard = serial();
    let (ds, split, task, cfg) = setup();
    let out = tempfile::tempdir().unwrap();
    let two = [ComputeDevice::cpu(), ComputeDevice::cpu()];
    let o = train(&task, &ds, &split, &cfg, &two, out.path(), false).unwrap();
    assert_eq!(o.epochs, 8);
    let h = history(out.path());
    let (first, last) = (h[0]["train_loss"].as_f64().unwrap(), h[7]["train_loss"].as_f64().unwrap());
    assert!(last < first * 0.9, "loss {first} -> {last}");
    assert!(h[7]["val"]["val_patient_dice"].as_f64().is_some_and(f64::is_finite));
    let config: serde_json::Value = serde_json::from_slice(&std::fs::read(out.path().join("config.json")).unwrap()).unwrap();
    assert_eq!(config["devices"].as_array().map(Vec::len), Some(2));
    assert!(train(&task, &ds, &split, &cfg, &[], out.path(), true).is_err());
}

#[test]
fn training_on_the_validation_fold_runs_every_epoch_and_keeps_the_last() {
    let _guard = serial();
    let (ds, mut split, task, cfg) = setup();
    split.train.extend(split.val.iter().cloned());
    // Patience 0 would stop an ordinary run after its first epoch without improvement.
    let cfg = TrainConfig {
        epochs: 4,
        patience: 0,
        train_on_val: true,
        init_from: None,
        ..cfg
    };
    let out = tempfile::tempdir().unwrap();
    let o = train(&task, &ds, &split, &cfg, &[ComputeDevice::cpu()], out.path(), false).unwrap();
    assert_eq!((o.epochs, o.best_epoch, o.stopped_early), (4, 4, false));
    // Validated once, after the last epoch: the earlier ones would re-measure trained patients.
    let h = history(out.path());
    let validated: Vec<bool> = h.iter().map(|r| r["val"]["val_patient_dice"].is_number()).collect();
    assert_eq!(validated, [false, false, false, true]);
    let csv = std::fs::read_to_string(out.path().join("metrics.csv")).unwrap();
    assert!(csv.lines().next().unwrap().contains("val_patient_dice"), "{csv}");
    assert!(csv.lines().nth(1).unwrap().ends_with("NaN"), "{csv}");
    let card: serde_json::Value = serde_json::from_slice(&std::fs::read(out.path().join("best/model.json")).unwrap()).unwrap();
    assert_eq!(card["epoch"], 4);
    assert!(card["selection_metric"].as_str().unwrap().contains("last epoch"));
    let config: serde_json::Value = serde_json::from_slice(&std::fs::read(out.path().join("config.json")).unwrap()).unwrap();
    assert_eq!(
        config["split"]["train"].as_array().map(Vec::len),
        Some(3),
        "validation patients listed as trained on"
    );
    // Killed before its last epoch (nothing validated yet, so no best score) and resumed: it
    // continues from the saved epoch and ends where the uninterrupted run did.
    let part = tempfile::tempdir().unwrap();
    crate::engine::train_until(&task, &ds, &split, &cfg, &[ComputeDevice::cpu()], part.path(), 2).unwrap();
    let o = train(&task, &ds, &split, &cfg, &[ComputeDevice::cpu()], part.path(), true).unwrap();
    assert_eq!((o.epochs, o.best_epoch), (4, 4));
    assert_eq!(history(part.path())[3]["train_loss"], h[3]["train_loss"]);
}

#[test]
fn context_slices_are_the_patients_neighbours_and_train() {
    use std::collections::HashMap;
    let ds = phantom_dataset(3, 4, 32);
    let patients: HashMap<&str, &tumorscan_data::Patient> = ds.patients.iter().map(|p| (p.id.as_str(), p)).collect();
    let p = &ds.patients[1];
    let numbers = |s: &tumorscan_data::Slice, k| -> Vec<(String, u32)> {
        crate::engine::neighbours(&patients, s, k)
            .iter()
            .map(|n| (n.patient.clone(), n.number))
            .collect()
    };
    let n = |i: usize| (p.id.clone(), p.slices[i].number);
    assert_eq!(numbers(&p.slices[0], 1), [n(0), n(1)]);
    assert_eq!(numbers(&p.slices[2], 1), [n(1), n(3)]);
    assert_eq!(numbers(&p.slices[3], 2), [n(2), n(3), n(1), n(3)]);
    assert!(numbers(&p.slices[2], 0).is_empty());

    // An EfficientNet U-Net with one neighbour on each side trains and records its context.
    let _guard = serial();
    let (_, split, _, cfg) = setup();
    let task = SegmentTask::<tumorscan_model::EfficientUNet>::new(
        SegmenterConfig {
            input_size: 32,
            arch: tumorscan_model::SegmenterArch::EfficientnetLite0Unet,
            context_slices: 1,
            ..Default::default()
        },
        SegLoss::BceDice,
        None,
    );
    let cfg = TrainConfig {
        epochs: 1,
        max_steps_per_epoch: Some(1),
        ..cfg
    };
    let out = tempfile::tempdir().unwrap();
    train(&task, &ds, &split, &cfg, &[ComputeDevice::cpu()], out.path(), false).unwrap();
    let card: serde_json::Value = serde_json::from_slice(&std::fs::read(out.path().join("best/model.json")).unwrap()).unwrap();
    assert_eq!(card["net"]["context_slices"], 1);
}

#[test]
fn a_validation_fold_that_cannot_select_a_model_is_refused() {
    let _guard = serial();
    let (mut ds, split, _, cfg) = setup();
    // Detection selects by ROC-AUC, which needs tumour and tumour-free validation slices.
    let val: Vec<String> = split.val.iter().cloned().collect();
    for p in ds.patients.iter_mut().filter(|p| val.contains(&p.id)) {
        for s in &mut p.slices {
            s.mask.fill(0);
        }
    }
    let task = crate::detect::DetectTask::<tumorscan_model::SliceClassifier>::new(
        tumorscan_model::ClassifierConfig {
            features: 4,
            stages: 2,
            input_size: 32,
            ..Default::default()
        },
        None,
    );
    let cfg = TrainConfig {
        epochs: 2,
        max_steps_per_epoch: Some(1),
        ..cfg
    };
    let out = tempfile::tempdir().unwrap();
    let err = train(&task, &ds, &split, &cfg, &[ComputeDevice::cpu()], out.path(), false).unwrap_err();
    assert!(err.to_string().contains("validation gave no val_score"), "{err}");
}

#[test]
fn weight_decay_shrinks_every_weight_by_lr_times_decay_when_the_gradient_is_zero() {
    // Builds layers from burn's process-wide random stream: not beside a seeded run.
    let _guard = serial();
    use burn::prelude::{Device, Tensor};
    let device = Device::flex().autodiff();
    let net = burn::nn::LinearConfig::new(3, 2).init(&device);
    let weights = |n: &burn::nn::Linear| -> Vec<f32> { n.weight.val().into_data().try_to_vec().unwrap() };
    let before = weights(&net);
    let (lr, decay) = (0.1, 0.5);
    for (weight_decay, factor) in [(None, 1.0), (Some(decay), 1.0 - lr * decay)] {
        let cfg = TrainConfig {
            weight_decay,
            ..TrainConfig::default()
        };
        // A loss that does not depend on the weights: Adam's own update is exactly zero.
        let loss = net.forward(Tensor::<2>::ones([1, 3], &device)).sum().mul_scalar(0.0);
        let grads = burn::optim::GradientsParams::from_grads(loss.backward(), &net);
        let after = weights(&crate::engine::optimizer(&cfg).step(lr, net.clone(), grads));
        for (b, a) in before.iter().zip(&after) {
            assert!(
                (a - b * factor as f32).abs() < 1e-6,
                "{weight_decay:?}: {b} -> {a}, expected x{factor}"
            );
        }
    }
}

#[test]
fn a_slowed_group_moves_by_the_factor_and_the_rest_by_the_full_rate() {
    // Builds layers from burn's process-wide random stream: not beside a seeded run.
    let _guard = serial();
    use burn::module::{Module, ParamGroup};
    use burn::prelude::{Device, Tensor};
    let device = Device::flex().autodiff();
    // Two layers: the first stands for the pretrained encoder.
    let net = vec![
        burn::nn::LinearConfig::new(3, 2).init(&device),
        burn::nn::LinearConfig::new(3, 2).init(&device),
    ];
    let weights =
        |n: &[burn::nn::Linear]| -> Vec<Vec<f32>> { n.iter().map(|l| l.weight.val().into_data().try_to_vec().unwrap()).collect() };
    let before = weights(&net);
    let (lr, factor) = (0.01, 0.1);
    let slowed = (ParamGroup::ids_from_module(net[0].clone()), factor);
    let x = Tensor::<2>::ones([1, 3], &device);
    let loss = net.iter().map(|l| l.forward(x.clone()).sum()).reduce(|a, b| a + b).unwrap();
    let grads = burn::optim::GradientsParams::from_grads(loss.backward(), &net);
    let rates = crate::engine::rates(lr, Some(&slowed));
    let after = weights(&crate::engine::optimizer(&TrainConfig::default()).step(rates, net.clone(), grads));
    // Adam's first step moves every weight with a gradient by its learning rate (g / |g|).
    for (layer, rate) in [(0, lr * factor), (1, lr)] {
        for (b, a) in before[layer].iter().zip(&after[layer]) {
            assert!(
                ((b - a).abs() - rate as f32).abs() < 1e-5,
                "layer {layer}: {b} -> {a}, expected a step of {rate}"
            );
        }
    }
    assert_eq!(net.num_params(), 16);
}

#[test]
fn a_network_without_a_pretrained_part_refuses_an_encoder_rate() {
    let _guard = serial();
    let (ds, split, task, cfg) = setup();
    let cfg = TrainConfig {
        encoder_lr_factor: Some(0.1),
        epochs: 1,
        max_steps_per_epoch: Some(1),
        ..cfg
    };
    let out = tempfile::tempdir().unwrap();
    let err = train(&task, &ds, &split, &cfg, &[ComputeDevice::cpu()], out.path(), false).unwrap_err();
    assert!(
        err.to_string()
            .contains("--encoder-lr-factor needs a network with a pretrained encoder"),
        "{err}"
    );
    // A run refused before its first checkpoint leaves nothing behind, so it can simply rerun.
    assert_eq!(std::fs::read_dir(out.path()).unwrap().count(), 0, "nothing left in --out");
    let gone = out.path().join("gone");
    assert!(train(&task, &ds, &split, &cfg, &[ComputeDevice::cpu()], &gone, false).is_err());
    assert!(!gone.exists(), "a folder the failed run created is removed");
}

#[test]
fn oversampling_repeats_only_the_small_tumour_slices() {
    let ds = phantom_dataset(2, 8, 32);
    let slices: Vec<&tumorscan_data::Slice> = ds.patients.iter().flat_map(|p| &p.slices).collect();
    let sizes: Vec<u64> = slices.iter().map(|s| s.tumor_pixels()).filter(|&n| n > 0).collect();
    let (lo, hi) = (*sizes.iter().min().unwrap(), *sizes.iter().max().unwrap());
    assert!(lo < hi, "the phantoms need two tumour sizes: {sizes:?}");
    let plain = TrainConfig {
        empty_per_tumor: Some(0.5),
        ..TrainConfig::default()
    };
    let over = TrainConfig {
        oversample_small: Some(crate::Oversample {
            below_pixels: hi,
            copies: 3,
        }),
        ..plain.clone()
    };
    let count = |plan: &[usize], i: usize| plan.iter().filter(|&&j| j == i).count();
    let empty_in = |plan: &[usize]| plan.iter().filter(|&&i| !slices[i].has_tumor()).count();
    for epoch in 1..=2 {
        let (a, b) = (
            crate::engine::epoch_plan(&slices, &plain, epoch),
            crate::engine::epoch_plan(&slices, &over, epoch),
        );
        for (i, s) in slices.iter().enumerate() {
            let expected = match s.tumor_pixels() {
                0 => count(&a, i),
                n if n < hi => 3,
                _ => 1,
            };
            assert_eq!(count(&b, i), expected, "slice {i} of {} pixels", s.tumor_pixels());
        }
        // The tumour-free share follows the distinct tumour slices: the same slices as without.
        assert_eq!(empty_in(&b), empty_in(&a));
        let small = sizes.iter().filter(|&&n| n < hi).count();
        assert_eq!(b.len(), a.len() + 2 * small);
    }
}

/// A folder holding any part of a run is never started over, and `--resume` needs a checkpoint:
/// without one it says so instead of starting afresh.
#[test]
fn an_existing_run_is_never_overwritten_and_resume_needs_a_checkpoint() {
    use crate::engine::check_out;
    let err = |out: &std::path::Path, resume: bool| check_out(out, resume).unwrap_err().to_string();
    let dir = tempfile::tempdir().unwrap();
    // An empty or missing folder: a new run may start, there is nothing to resume.
    assert!(check_out(dir.path(), false).is_ok() && check_out(&dir.path().join("new"), false).is_ok());
    assert!(err(dir.path(), true).contains("nothing to resume in"));
    assert!(err(&dir.path().join("new"), true).contains("nothing to resume in"));
    // Killed before its first epoch ended (config.json and an empty checkpoint/ only): a restart
    // with --resume begins it again; without --resume it is still refused.
    let unstarted = dir.path().join("unstarted");
    std::fs::create_dir_all(unstarted.join("checkpoint")).unwrap();
    std::fs::write(
        unstarted.join("config.json"),
        br#"{"task": "segment", "split": {}, "content_key": "k"}"#,
    )
    .unwrap();
    assert!(check_out(&unstarted, true)
        .unwrap()
        .is_some_and(|note| note.contains("before its first epoch")));
    assert!(err(&unstarted, false).contains("pass --resume to start it again"));
    // Killed while its first epoch was being saved: best/ and part of the checkpoint written, not
    // yet the state that names them. A restart begins it again too (it could neither resume nor
    // restart before); a best/ of a later epoch, or anything else in it, is not the first epoch's.
    let saving = dir.path().join("saving");
    std::fs::create_dir_all(saving.join("checkpoint")).unwrap();
    std::fs::create_dir_all(saving.join("best")).unwrap();
    std::fs::copy(unstarted.join("config.json"), saving.join("config.json")).unwrap();
    for f in [
        "checkpoint/epoch-0001.model.bpk",
        "checkpoint/.epoch-0001.optim.bpk.tmp77",
        "best/model.bpk",
        "best/config.json",
    ] {
        std::fs::write(saving.join(f), b"x").unwrap();
    }
    std::fs::write(saving.join("best/model.json"), br#"{"epoch": 1}"#).unwrap();
    assert!(check_out(&saving, true)
        .unwrap()
        .is_some_and(|note| note.contains("before its first epoch was saved")));
    let refused = err(&saving, false);
    assert!(
        refused.contains("pass --resume to start it again") && refused.contains("best/"),
        "{refused}"
    );
    for (file, text) in [
        ("best/model.json", r#"{"epoch": 3}"#),
        ("best/notes.txt", "mine"),
        ("checkpoint/epoch-0002.model.bpk", "x"),
    ] {
        let other = dir.path().join(format!("other-{}", file.replace('/', "-")));
        std::fs::create_dir_all(other.join("best")).unwrap();
        std::fs::create_dir_all(other.join("checkpoint")).unwrap();
        std::fs::copy(unstarted.join("config.json"), other.join("config.json")).unwrap();
        std::fs::write(other.join(file), text).unwrap();
        assert!(err(&other, true).contains("no usable checkpoint"), "{file}: {}", err(&other, true));
    }
    // A user's own config.json is no run to start again (--resume would have replaced it).
    let own = dir.path().join("own");
    std::fs::create_dir_all(&own).unwrap();
    std::fs::write(own.join("config.json"), br#"{"my": "settings"}"#).unwrap();
    assert!(!err(&own, false).contains("--resume") && err(&own, true).contains("no usable checkpoint"));
    #[cfg(unix)]
    {
        let dangling = dir.path().join("dangling");
        std::os::unix::fs::symlink(dir.path().join("gone"), &dangling).unwrap();
        assert!(err(&dangling, false).contains("symbolic link to nothing"));
    }
    // Any other run file makes it a run, checkpoint or not (a user's curves.png was replaced).
    for part in ["best", "metrics.csv", "metrics.json", "config.json", "checkpoint", "curves.png"] {
        let out = dir.path().join(format!("run-{part}"));
        std::fs::create_dir_all(&out).unwrap();
        if part == "best" || part == "checkpoint" {
            std::fs::create_dir(out.join(part)).unwrap();
        } else {
            std::fs::write(out.join(part), b"{}").unwrap();
        }
        if part == "config.json" || part == "checkpoint" {
            // Alone, these are a run killed in its first epoch (above).
            std::fs::write(out.join("metrics.csv"), b"epoch\n").unwrap();
        }
        let fresh = err(&out, false);
        assert!(fresh.contains("already holds (part of) a run") && fresh.contains(part), "{fresh}");
        assert!(err(&out, true).contains("no usable checkpoint"), "{}", err(&out, true));
    }
    let run = dir.path().join("run");
    std::fs::create_dir_all(run.join("checkpoint")).unwrap();
    std::fs::write(run.join("checkpoint/state.json"), b"{}").unwrap();
    assert!(err(&run, false).contains("pass --resume"));
    assert!(check_out(&run, true).is_ok());
    let file = dir.path().join("file");
    std::fs::write(&file, b"x").unwrap();
    assert!(err(&file, false).contains("is not a folder"));
}

/// A kill between writing the first `best/` and the first `checkpoint/state.json` (reproduced by
/// removing what comes after) left a folder that `--resume` refused; now it starts again and
/// trains the same first epoch. A kill after the last checkpoint, before the history, left a
/// run whose resume wrote no metrics.
#[test]
fn a_run_killed_while_saving_its_first_epoch_restarts() {
    let _guard = serial();
    let (ds, split, task, cfg) = setup();
    let cfg = TrainConfig { epochs: 1, ..cfg };
    let out = tempfile::tempdir().unwrap();
    let first = train(&task, &ds, &split, &cfg, &[ComputeDevice::cpu()], out.path(), false).unwrap();
    for f in ["checkpoint/state.json", "metrics.csv", "metrics.json", "curves.png"] {
        let _ = std::fs::remove_file(out.path().join(f));
    }
    std::fs::write(out.path().join("checkpoint/.epoch-0001.optim.bpk.tmp99"), b"partial").unwrap();
    let again = train(&task, &ds, &split, &cfg, &[ComputeDevice::cpu()], out.path(), true).unwrap();
    // Same seed, same data: the restarted epoch validates as the first run's did.
    assert_eq!(
        (again.epochs, again.best_epoch, again.best_score),
        (first.epochs, first.best_epoch, first.best_score)
    );
    assert!(out.path().join("checkpoint/state.json").is_file() && out.path().join("metrics.csv").is_file());
    assert!(!out.path().join("checkpoint/.epoch-0001.optim.bpk.tmp99").exists());
    // Killed after its last checkpoint, before its history: a resume with no epoch left writes it.
    std::fs::remove_file(out.path().join("metrics.csv")).unwrap();
    std::fs::remove_file(out.path().join("curves.png")).unwrap();
    let done = train(&task, &ds, &split, &cfg, &[ComputeDevice::cpu()], out.path(), true).unwrap();
    assert_eq!(done.epochs, 1);
    assert!(out.path().join("metrics.csv").is_file() && out.path().join("curves.png").is_file());
}

/// A run whose checkpoint was deleted keeps its best model: a new start in its folder is refused
/// before anything is written, and `--resume` says there is nothing to continue from.
#[test]
fn a_run_without_its_checkpoint_is_not_overwritten() {
    let _guard = serial();
    let (ds, split, task, cfg) = setup();
    let cfg = TrainConfig { epochs: 1, ..cfg };
    let out = tempfile::tempdir().unwrap();
    train(&task, &ds, &split, &cfg, &[ComputeDevice::cpu()], out.path(), false).unwrap();
    std::fs::remove_dir_all(out.path().join("checkpoint")).unwrap();
    let weights = std::fs::read(out.path().join("best/model.bpk")).unwrap();
    let err = train(&task, &ds, &split, &cfg, &[ComputeDevice::cpu()], out.path(), false).unwrap_err();
    assert!(err.to_string().contains("already holds (part of) a run"), "{err}");
    let err = train(&task, &ds, &split, &cfg, &[ComputeDevice::cpu()], out.path(), true).unwrap_err();
    assert!(err.to_string().contains("no usable checkpoint"), "{err}");
    assert_eq!(std::fs::read(out.path().join("best/model.bpk")).unwrap(), weights);
    assert!(!out.path().join("checkpoint").exists());
}

/// best/ carries the run's config.json (its split above all), the same as the run folder's.
#[test]
fn the_best_model_carries_the_runs_split() {
    let _guard = serial();
    let (ds, split, task, cfg) = setup();
    let cfg = TrainConfig { epochs: 1, ..cfg };
    let out = tempfile::tempdir().unwrap();
    train(&task, &ds, &split, &cfg, &[ComputeDevice::cpu()], out.path(), false).unwrap();
    let run = std::fs::read(out.path().join("config.json")).unwrap();
    assert_eq!(std::fs::read(out.path().join("best/config.json")).unwrap(), run);
    let config: serde_json::Value = serde_json::from_slice(&run).unwrap();
    let train_ids: Vec<&str> = split.train.iter().map(String::as_str).collect();
    assert_eq!(config["split"]["train"], serde_json::json!(train_ids));
}

/// Resuming with other settings names each one that differs.
#[test]
fn a_resume_with_other_settings_names_them() {
    let _guard = serial();
    let (ds, split, task, cfg) = setup();
    let cfg = TrainConfig { epochs: 3, ..cfg };
    let part = tempfile::tempdir().unwrap();
    crate::engine::train_until(&task, &ds, &split, &cfg, &[ComputeDevice::cpu()], part.path(), 1).unwrap();
    let other = TrainConfig {
        learning_rate: 0.5,
        batch_size: 2,
        ..cfg.clone()
    };
    let err = train(&task, &ds, &split, &other, &[ComputeDevice::cpu()], part.path(), true)
        .unwrap_err()
        .to_string();
    assert!(err.contains("train.learning_rate: 0.01 in the run, 0.5 now"), "{err}");
    assert!(
        err.contains("train.batch_size: 4 in the run, 2 now") && !err.contains("train.seed"),
        "{err}"
    );
}

/// A resume with another split trained on the run's test patients and then called them held
/// out; forgetting `--test-fold` did the same.
#[test]
fn a_resume_with_other_patients_is_refused() {
    let _guard = serial();
    let (ds, split, task, cfg) = setup();
    let cfg = TrainConfig { epochs: 3, ..cfg };
    let part = tempfile::tempdir().unwrap();
    crate::engine::train_until(&task, &ds, &split, &cfg, &[ComputeDevice::cpu()], part.path(), 1).unwrap();
    let swapped = RunSplit {
        train: split.val.clone(),
        val: split.train.clone(),
        test: Default::default(),
    };
    let err = train(&task, &ds, &swapped, &cfg, &[ComputeDevice::cpu()], part.path(), true)
        .unwrap_err()
        .to_string();
    assert!(err.contains("other patients") && err.contains("train patients:"), "{err}");
    // A checkpoint from before the split was recorded is checked against its config.json.
    let state = part.path().join("checkpoint/state.json");
    let mut saved: serde_json::Value = serde_json::from_slice(&std::fs::read(&state).unwrap()).unwrap();
    saved.as_object_mut().unwrap().remove("split");
    std::fs::write(&state, serde_json::to_vec(&saved).unwrap()).unwrap();
    assert!(train(&task, &ds, &swapped, &cfg, &[ComputeDevice::cpu()], part.path(), true).is_err());
    let o = train(&task, &ds, &split, &cfg, &[ComputeDevice::cpu()], part.path(), true).unwrap();
    assert_eq!(o.epochs, 3);
}

/// A training set without tumour slices ran epochs of one slice or none and saved the untrained
/// network as the best, exit 0.
#[test]
fn training_patients_without_tumour_are_refused() {
    let _guard = serial();
    let (mut ds, split, task, cfg) = setup();
    for p in ds.patients.iter_mut().filter(|p| split.train.contains(&p.id)) {
        p.slices.iter_mut().for_each(|s| s.mask.iter_mut().for_each(|v| *v = 0));
    }
    let out = tempfile::tempdir().unwrap();
    let err = train(&task, &ds, &split, &cfg, &[ComputeDevice::cpu()], &out.path().join("run"), false)
        .unwrap_err()
        .to_string();
    assert!(err.contains("no tumour slices"), "{err}");
    assert!(!out.path().join("run").exists());
}

/// A resume whose best/ had been moved away said "model in best/" with no model there.
#[test]
fn a_resume_without_its_best_model_is_refused() {
    let _guard = serial();
    let (ds, split, task, cfg) = setup();
    let cfg = TrainConfig { epochs: 3, ..cfg };
    let part = tempfile::tempdir().unwrap();
    crate::engine::train_until(&task, &ds, &split, &cfg, &[ComputeDevice::cpu()], part.path(), 1).unwrap();
    std::fs::rename(part.path().join("best"), part.path().join("moved")).unwrap();
    let err = train(&task, &ds, &split, &cfg, &[ComputeDevice::cpu()], part.path(), true)
        .unwrap_err()
        .to_string();
    assert!(err.contains("best/ (the model of epoch 1) is missing"), "{err}");
}
