//! The training loop shared by segmentation and detection.

use crate::average::WeightAverage;
use crate::checkpoint::{load_module, load_optimizer, save_module, save_optimizer, write_atomic};
use crate::history::{write_history, EpochRecord};
use crate::parallel::Replicas;
use crate::run_lock::RunLock;
use crate::split::RunSplit;
use anyhow::{bail, Context, Result};
use burn::lr_scheduler::module_lr_scheduler::{ModuleLearningRate, ModuleLrScheduler};
use burn::module::{Module, ParamGroup};
use burn::optim::{AdamConfig, AdamWConfig, GradientsParams, ModuleOptimizer};
use burn::prelude::*;
use indicatif::{ProgressBar, ProgressStyle};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Instant;
use tumorscan_data::augment::{context_indices, prepare_sample_in_context, AugmentConfig, Sample};
use tumorscan_data::normalize::Normalizer;
use tumorscan_data::split::name_some;
use tumorscan_data::{LoadedDataset, Patient, Slice};
use tumorscan_model::{ComputeDevice, NetConfig};

/// Hyper-parameters of a run (saved in the run folder and checked on resume).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TrainConfig {
    /// Maximum epochs.
    pub epochs: usize,
    /// Slices per step.
    pub batch_size: usize,
    /// Initial learning rate (cosine decay to 1% of it over `epochs`).
    pub learning_rate: f64,
    /// Stop after this many epochs without a better validation score.
    pub patience: usize,
    /// Seed for initialisation, sampling and augmentation.
    pub seed: u64,
    /// Tumour-free slices drawn per tumour slice each epoch (`None`: every slice every epoch).
    pub empty_per_tumor: Option<f32>,
    /// Augmentation.
    pub augment: AugmentConfig,
    /// Cap on steps per epoch (quick runs and tests).
    pub max_steps_per_epoch: Option<usize>,
    /// Final fit: the split's training set already holds the validation patients, so every
    /// epoch runs (no early stopping) and the last one is kept; validation runs once, after the
    /// last epoch (its figures are on trained patients and only monitor the run), and `best/`
    /// is written then.
    #[serde(default)]
    pub train_on_val: bool,
    /// Fine-tuning: start from this trained model folder (`model.json` + `model.bpk`, e.g. an
    /// earlier run's `best/`) instead of fresh or pretrained weights; see [`crate::init`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init_from: Option<PathBuf>,
    /// Weight averaging: validate, select and save an exponential moving average of the weights
    /// with this decay per step ([`crate::average`]) instead of the trained weights themselves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ema_decay: Option<f64>,
    /// Decoupled weight decay (AdamW, Loshchilov & Hutter 2019): every step shrinks each weight
    /// by `learning rate x this` before Adam's update. `None`: plain Adam (every earlier run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight_decay: Option<f64>,
    /// Small-tumour oversampling: tumour slices under a size appear more than once per epoch.
    /// `None`: each training slice at most once (every earlier run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oversample_small: Option<Oversample>,
    /// Discriminative fine-tuning: the pretrained encoder's parameters ([`Task::pretrained_part`])
    /// learn at this multiple of the learning rate (same schedule), the rest at the full rate, so
    /// the first steps of a fresh decoder do not overwrite the ImageNet features.
    /// `None`: one rate for every parameter (every earlier run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoder_lr_factor: Option<f64>,
}

/// Which tumour slices an epoch repeats, and how often ([`TrainConfig::oversample_small`]).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct Oversample {
    /// Tumour slices with fewer ground-truth pixels than this (at the slice's own resolution,
    /// 256x256 in the LGG data) are repeated.
    pub below_pixels: u64,
    /// How many times each such slice appears per epoch (2: one extra copy).
    pub copies: usize,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            epochs: 30,
            batch_size: 16,
            learning_rate: 1e-3,
            patience: 8,
            seed: 42,
            empty_per_tumor: Some(0.5),
            augment: AugmentConfig::standard(),
            max_steps_per_epoch: None,
            train_on_val: false,
            init_from: None,
            ema_decay: None,
            weight_decay: None,
            oversample_small: None,
            encoder_lr_factor: None,
        }
    }
}

/// A training batch at model size.
pub struct Batch {
    /// `[B, 3, S, S]` normalised images.
    pub images: Tensor<4>,
    /// `[B, 1, S, S]` 0/1 masks.
    pub masks: Tensor<4>,
    /// `[B]` 0/1 slice labels (tumour present).
    pub labels: Tensor<1>,
}

/// One validation slice, prepared once (no augmentation).
pub struct ValItem<'a> {
    /// The slice (native size, ground truth).
    pub slice: &'a Slice,
    /// Model-size input.
    pub sample: Sample,
}

/// What is trained: the network, its loss and its validation.
pub trait Task: Sync {
    /// The network type.
    type Net: Module + 'static;
    /// `segment` or `detect`.
    fn kind(&self) -> &'static str;
    /// Network description saved with the weights.
    fn net_config(&self) -> NetConfig;
    /// Build fresh weights.
    fn build(&self, device: &Device) -> Self::Net;
    /// Starting weights of a new run: fresh ones, or pretrained ones loaded into them.
    fn initialise(&self, net: Self::Net) -> Result<Self::Net> {
        Ok(net)
    }
    /// Loss of a batch (training device).
    fn loss(&self, net: &Self::Net, batch: Batch) -> Tensor<1>;
    /// Validation metrics of an inference-mode network; must contain [`Task::selection_metric`].
    fn validate(&self, net: &Self::Net, items: &[ValItem], device: &Device, batch_size: usize) -> BTreeMap<String, f64>;
    /// Name of the metric that selects the best epoch (higher is better).
    fn selection_metric(&self) -> &'static str;
    /// Extra fields stored in the shipped `model.json` (e.g. a decision threshold chosen on validation).
    fn model_extras(&self, _net: &Self::Net, _items: &[ValItem], _device: &Device) -> serde_json::Value {
        serde_json::Value::Null
    }
    /// The training objective with its parameters, recorded in `config.json` and checked on resume.
    fn objective(&self) -> serde_json::Value {
        serde_json::Value::Null
    }
    /// The network's pretrained part, which [`TrainConfig::encoder_lr_factor`] slows down;
    /// `None` where the network has none.
    fn pretrained_part(&self, _net: &Self::Net) -> Option<ParamGroup> {
        None
    }
}

/// `net`, or `load(net, path)` where pretrained weights are given: what the tasks'
/// [`Task::initialise`] do.
pub(crate) fn from_pretrained<N>(
    net: N,
    pretrained: Option<&std::path::Path>,
    load: impl FnOnce(N, &std::path::Path) -> Result<N, String>,
) -> Result<N> {
    match pretrained {
        Some(path) => load(net, path).map_err(anyhow::Error::msg),
        None => Ok(net),
    }
}

/// Saved run state (`checkpoint/state.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct RunState {
    task: String,
    config: TrainConfig,
    net: NetConfig,
    epochs_done: usize,
    /// `-inf` until an epoch is validated, which JSON writes as `null` (a final fit with
    /// `--train-on-val` validates only after its last epoch): read back as `-inf`.
    #[serde(deserialize_with = "null_as_neg_infinity")]
    best_score: f64,
    best_epoch: usize,
    history: Vec<EpochRecord>,
    content_key: String,
    /// [`Task::objective`]; absent in runs saved before it was recorded.
    #[serde(default)]
    objective: serde_json::Value,
    /// Updates of the weight average so far (`--ema-decay` runs; its weights are saved beside
    /// the epoch's).
    #[serde(default)]
    ema_updates: u64,
    /// The patients of the run; absent in runs saved before it was recorded (their
    /// `config.json` holds it).
    #[serde(default)]
    split: Option<RunSplit>,
}

/// How `now` moves patients of the run's `saved` split ("test patients: A, B left, C added"),
/// empty when the two are the same.
fn split_changes(saved: &RunSplit, now: &RunSplit) -> Vec<String> {
    let sets = [
        ("train", &saved.train, &now.train),
        ("validation", &saved.val, &now.val),
        ("test", &saved.test, &now.test),
    ];
    sets.iter()
        .filter(|(_, a, b)| a != b)
        .map(|(name, a, b)| {
            let gone: Vec<&String> = a.difference(b).collect();
            let new: Vec<&String> = b.difference(a).collect();
            format!(
                "{name} patients: {} left, {} added",
                if gone.is_empty() { "none".into() } else { name_some(&gone) },
                if new.is_empty() { "none".into() } else { name_some(&new) }
            )
        })
        .collect()
}

fn null_as_neg_infinity<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NEG_INFINITY))
}

/// Result of [`train`].
#[derive(Debug, Clone, Serialize)]
pub struct TrainOutcome {
    /// Epochs run (in total, across resumes).
    pub epochs: usize,
    /// Best epoch.
    pub best_epoch: usize,
    /// Best validation score.
    pub best_score: f64,
    /// Folder of the best model (`model.json` + `model.bpk`).
    pub model_dir: PathBuf,
    /// Whether early stopping ended the run.
    pub stopped_early: bool,
}

/// Stable per-sample seed (order and thread independent).
fn sample_seed(seed: u64, epoch: usize, pos: usize) -> u64 {
    let mut x = seed ^ (epoch as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (pos as u64).wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
    x ^= x >> 33;
    x = x.wrapping_mul(0xFF51_AFD7_ED55_8CCD);
    x ^ (x >> 33)
}

/// Indices of training slices for one epoch, shuffled. The number of tumour-free slices follows
/// the distinct tumour slices, so oversampling adds only the repeated small tumours.
pub(crate) fn epoch_plan(train: &[&Slice], cfg: &TrainConfig, epoch: usize) -> Vec<usize> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(sample_seed(cfg.seed, epoch, usize::MAX));
    let (tumor, mut empty): (Vec<usize>, Vec<usize>) = (0..train.len()).partition(|&i| train[i].has_tumor());
    let mut plan = tumor.clone();
    match cfg.empty_per_tumor {
        Some(r) => {
            empty.shuffle(&mut rng);
            let n = ((tumor.len().max(1) as f32) * r).round() as usize;
            plan.extend(empty.into_iter().take(n));
        }
        None => plan.extend(empty),
    }
    if let Some(o) = cfg.oversample_small {
        // Copies sit at other plan positions, so each draws its own augmentation.
        let small = tumor.iter().filter(|&&i| train[i].tumor_pixels() < o.below_pixels);
        plan.extend(small.flat_map(|&i| std::iter::repeat_n(i, o.copies.saturating_sub(1))));
    }
    plan.shuffle(&mut rng);
    plan
}

/// Stack samples into a training batch on `device`.
pub(crate) fn to_tensors(samples: &[Sample], size: u32, device: &Device) -> Batch {
    let b = samples.len();
    let s = size as usize;
    let planes = samples.first().map_or(3, |x| x.image.len() / (s * s).max(1));
    let images: Vec<f32> = samples.iter().flat_map(|x| x.image.iter().copied()).collect();
    let masks: Vec<f32> = samples.iter().flat_map(|x| x.mask.iter().copied()).collect();
    let labels: Vec<f32> = samples.iter().map(|x| x.mask.iter().any(|&v| v > 0.0) as u8 as f32).collect();
    Batch {
        images: Tensor::from_data(TensorData::new(images, [b, planes, s, s]), device),
        masks: Tensor::from_data(TensorData::new(masks, [b, 1, s, s]), device),
        labels: Tensor::from_data(TensorData::new(labels, [b]), device),
    }
}

/// The `k` slices on each side of `s` in its patient, nearest first (2.5D context; the end
/// slices repeat at the volume's ends).
pub(crate) fn neighbours<'a>(patients: &HashMap<&str, &'a Patient>, s: &'a Slice, k: usize) -> Vec<&'a Slice> {
    if k == 0 {
        return Vec::new();
    }
    let found = patients
        .get(s.patient.as_str())
        .and_then(|p| p.slices.binary_search_by_key(&s.number, |x| x.number).ok().map(|i| (p, i)));
    match found {
        Some((p, i)) => context_indices(i, p.slices.len(), k).into_iter().map(|j| &p.slices[j]).collect(),
        // Training slices always come from the dataset's patients; repeat the slice if not.
        None => vec![s; 2 * k],
    }
}

/// The run's optimiser: Adam, or AdamW when it asks for weight decay.
pub(crate) fn optimizer(cfg: &TrainConfig) -> ModuleOptimizer {
    match cfg.weight_decay {
        Some(decay) => AdamWConfig::new().with_weight_decay(decay as f32).init(),
        None => AdamConfig::new().init(),
    }
}

/// The learning rate of every parameter: `lr`, and `lr x factor` for the group of a slowed part
/// ([`TrainConfig::encoder_lr_factor`]).
pub(crate) fn rates(lr: f64, slowed: Option<&(ParamGroup, f64)>) -> ModuleLearningRate {
    match slowed {
        // Constant "schedulers" stepped once: burn's way to a per-group learning rate.
        Some((group, factor)) => ModuleLrScheduler::new(lr).with_group(group.clone(), lr * factor).step(),
        None => lr.into(),
    }
}

fn lr_at(cfg: &TrainConfig, epoch: usize) -> f64 {
    let t = (epoch - 1) as f64 / cfg.epochs.max(1) as f64;
    let min = cfg.learning_rate * 0.01;
    min + 0.5 * (cfg.learning_rate - min) * (1.0 + (std::f64::consts::PI * t).cos())
}

/// Per-patient normalisers for the given patients.
pub fn normalizers(ds: &LoadedDataset) -> BTreeMap<String, Normalizer> {
    ds.patients
        .par_iter()
        .map(|p| (p.id.clone(), Normalizer::fit(p.slices.iter().map(|s| s.image.as_slice()))))
        .collect()
}

/// Train `task` on `split` of `ds`, writing everything into `out`. With `resume`, continue
/// from the last checkpoint in `out` (same task, config and data). Several `compute` devices
/// (of one backend) train data-parallel ([`crate::parallel`]); the first holds the weights.
pub fn train<T: Task>(
    task: &T,
    ds: &LoadedDataset,
    split: &RunSplit,
    cfg: &TrainConfig,
    compute: &[ComputeDevice],
    out: &Path,
    resume: bool,
) -> Result<TrainOutcome> {
    run(task, ds, split, cfg, compute, out, resume, usize::MAX)
}

/// Like a fresh [`train`], but return after epoch `stop_after` as if the process had been
/// killed there (for crash-and-resume tests).
pub fn train_until<T: Task>(
    task: &T,
    ds: &LoadedDataset,
    split: &RunSplit,
    cfg: &TrainConfig,
    compute: &[ComputeDevice],
    out: &Path,
    stop_after: usize,
) -> Result<TrainOutcome> {
    run(task, ds, split, cfg, compute, out, false, stop_after)
}

/// What makes a folder a run: any of these means a run was (at least) started there.
const RUN_FILES: [&str; 6] = ["checkpoint", "best", "metrics.csv", "metrics.json", "config.json", "curves.png"];

/// `out/config.json` when it is one a run wrote (a user's own file of that name is not).
fn run_config(out: &Path) -> Option<serde_json::Value> {
    let bytes = std::fs::read(out.join("config.json")).ok()?;
    let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    ["task", "split", "content_key"].iter().all(|k| v.get(k).is_some()).then_some(v)
}

/// Whether a run may start (`resume` false) or continue (`resume` true) in `out`: a new run
/// never writes over another run's files (even one whose checkpoint was deleted), and a resume
/// needs a checkpoint to continue from rather than silently starting afresh. Gives the note to
/// show when a resume starts afresh (a run killed before its first epoch ended), for the
/// caller to show once.
pub fn check_out(out: &Path, resume: bool) -> Result<Option<String>> {
    if out.symlink_metadata().is_ok() && !out.exists() {
        bail!("--out {} is a symbolic link to nothing; choose another --out", out.display());
    }
    if out.exists() && !out.is_dir() {
        bail!("--out {} exists and is not a folder; choose another --out", out.display());
    }
    let found: Vec<String> = RUN_FILES
        .iter()
        .map(|f| out.join(f))
        .filter(|p| p.symlink_metadata().is_ok())
        .map(|p| {
            let name = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            if p.is_dir() {
                format!("{name}/")
            } else {
                name
            }
        })
        .collect();
    let checkpoint = out.join("checkpoint").join("state.json").is_file();
    let unstarted = !checkpoint && killed_before_first_checkpoint(out, &found);
    match (resume, checkpoint) {
        (true, false) if unstarted => Ok(Some(format!(
            "{} holds a run that ended before its first epoch was saved; starting it from the beginning",
            out.display()
        ))),
        (false, true) => bail!(
            "{} already holds a run; pass --resume to continue it or choose another --out",
            out.display()
        ),
        (false, false) if unstarted => bail!(
            "{} holds a run that ended before its first epoch ({}); pass --resume to start it again, or choose another --out",
            out.display(),
            found.join(", ")
        ),
        (false, false) if !found.is_empty() => bail!(
            "{} already holds (part of) a run ({}) with no checkpoint to continue from; choose another --out (nothing in it is overwritten)",
            out.display(),
            found.join(", ")
        ),
        (true, false) if found.is_empty() => bail!(
            "--resume: nothing to resume in {} (no run there); drop --resume to start a new run",
            out.display()
        ),
        (true, false) => bail!(
            "--resume: {} holds part of a run ({}) but no usable checkpoint (checkpoint/state.json is missing), so it cannot be continued; choose another --out to start afresh",
            out.display(),
            found.join(", ")
        ),
        _ => Ok(None),
    }
}

/// A run killed before its first `checkpoint/state.json`: its own `config.json`, its
/// `checkpoint/` folder and at most what the first epoch writes before the state that names it
/// (`epoch-0001.*` weights, the first `best/`, their temporary names). Nothing there a restart
/// could lose but part of one epoch, so `--resume` (what a restart script passes) starts afresh;
/// a kill while the first epoch was being saved must not leave a folder that neither resumes
/// nor restarts.
fn killed_before_first_checkpoint(out: &Path, found: &[String]) -> bool {
    let temporary = |n: &str| n.starts_with('.') && n.contains(".tmp");
    // Every entry of `dir` a plain file that `allowed` names (a missing folder holds none).
    let holds_only = |dir: &Path, allowed: &dyn Fn(&str) -> bool| match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .into_iter()
            .all(|e| e.is_ok_and(|e| e.file_type().is_ok_and(|t| t.is_file()) && allowed(&e.file_name().to_string_lossy()))),
        Err(_) => !dir.exists(),
    };
    let first_best = || {
        let Ok(bytes) = std::fs::read(out.join("best").join("model.json")) else {
            return true;
        };
        serde_json::from_slice::<serde_json::Value>(&bytes).is_ok_and(|v| v["epoch"] == 1)
    };
    found.iter().any(|f| f == "checkpoint/")
        && found.iter().all(|f| matches!(f.as_str(), "config.json" | "checkpoint/" | "best/"))
        && run_config(out).is_some()
        && holds_only(&out.join("checkpoint"), &|n| n.starts_with("epoch-0001.") || temporary(n))
        && holds_only(&out.join("best"), &|n| {
            matches!(n, "model.bpk" | "model.json" | "config.json") || temporary(n)
        })
        && first_best()
}

/// Remove what a new run that failed before its first checkpoint wrote in `out` (its
/// `config.json`, `checkpoint/` and `best/`, none of which existed before: [`check_out`]), and
/// `out` itself where the run created it, so that the same command can simply be run again.
fn discard_unstarted(out: &Path, created_out: bool) {
    let _ = std::fs::remove_file(out.join("config.json"));
    let _ = std::fs::remove_dir_all(out.join("checkpoint"));
    let _ = std::fs::remove_dir_all(out.join("best"));
    if created_out {
        // Only if empty: never anything else that may have appeared there meanwhile.
        let _ = std::fs::remove_dir(out);
    }
}

/// The settings of a saved run that differ from this one's, key by key ("train.learning_rate:
/// 0.001 in the run, 0.01 now").
fn differences(key: &str, saved: &serde_json::Value, now: &serde_json::Value, out: &mut Vec<String>) {
    use serde_json::Value;
    match (saved, now) {
        (Value::Object(a), Value::Object(b)) => {
            let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            for k in keys {
                let (x, y) = (a.get(k).unwrap_or(&Value::Null), b.get(k).unwrap_or(&Value::Null));
                differences(&format!("{key}.{k}"), x, y, out);
            }
        }
        (a, b) if a != b => out.push(format!("{key}: {a} in the run, {b} now")),
        _ => {}
    }
}

#[allow(clippy::too_many_arguments)]
fn run<T: Task>(
    task: &T,
    ds: &LoadedDataset,
    split: &RunSplit,
    cfg: &TrainConfig,
    compute: &[ComputeDevice],
    out: &Path,
    resume: bool,
    stop_after: usize,
) -> Result<TrainOutcome> {
    let note = check_out(out, resume)?;
    let created_out = !out.exists();
    // Before anything in `out` is removed or written: one training per folder.
    let lock = RunLock::acquire(out)?;
    if let Some(note) = note {
        eprintln!("note: {note}");
        // Its first epoch's files, if the kill came while they were written, go with it.
        discard_unstarted(out, false);
    }
    let result = run_checked(task, ds, split, cfg, compute, out, resume, stop_after);
    drop(lock);
    if result.is_err() && !resume && !out.join("checkpoint").join("state.json").exists() {
        discard_unstarted(out, created_out);
    }
    result
}

/// [`run`] once [`check_out`] has allowed it.
#[allow(clippy::too_many_arguments)]
fn run_checked<T: Task>(
    task: &T,
    ds: &LoadedDataset,
    split: &RunSplit,
    cfg: &TrainConfig,
    compute: &[ComputeDevice],
    out: &Path,
    resume: bool,
    stop_after: usize,
) -> Result<TrainOutcome> {
    let Some(first) = compute.first() else {
        bail!("no compute device given");
    };
    if compute
        .iter()
        .any(|c| std::mem::discriminant(&c.0) != std::mem::discriminant(&first.0))
    {
        bail!("--devices must all be of one backend (all cpu or all cuda:N)");
    }
    let devices = compute
        .iter()
        .map(|c| c.training())
        .collect::<Result<Vec<_>, _>>()
        .map_err(anyhow::Error::msg)?;
    let device = devices[0].clone();
    let infer_device = first.inference().map_err(anyhow::Error::msg)?;
    let size = task.net_config().input_size();
    // Training samples are smaller than the input when cropping; validation sees it whole.
    let sample_size = cfg.augment.sample_size(size);
    let ckpt_dir = out.join("checkpoint");
    let state_path = ckpt_dir.join("state.json");
    std::fs::create_dir_all(&ckpt_dir).with_context(|| format!("creating {}", ckpt_dir.display()))?;

    let norms = normalizers(ds);
    let patients: HashMap<&str, &Patient> = ds.patients.iter().map(|p| (p.id.as_str(), p)).collect();
    let context = match task.net_config() {
        NetConfig::Segmenter(c) => c.context_slices,
        NetConfig::Classifier(_) => 0,
    };
    let in_set = |set: &std::collections::BTreeSet<String>| -> Vec<&Slice> { ds.slices().filter(|s| set.contains(&s.patient)).collect() };
    let train_slices = in_set(&split.train);
    let val_slices = in_set(&split.val);
    if train_slices.is_empty() || val_slices.is_empty() {
        bail!("no training or validation slices: check --folds and the fold numbers");
    }
    // Epochs are drawn around the tumour slices: without any, an epoch is one slice or none, and
    // an untrained network would be saved as the best.
    if !train_slices.iter().any(|s| s.has_tumor()) {
        bail!(
            "the {} training patients have no tumour slices (no mask shows tumour): nothing to learn; check --data and --folds",
            split.train.len()
        );
    }
    let val_items: Vec<ValItem> = val_slices
        .par_iter()
        .map(|s| ValItem {
            slice: s,
            sample: prepare_sample_in_context::<rand_chacha::ChaCha8Rng>(
                s,
                &neighbours(&patients, s, context),
                &norms[&s.patient],
                size,
                None,
            ),
        })
        .collect();

    device.seed(cfg.seed);
    let mut net = task.initialise(task.build(&device))?;
    if let Some(dir) = cfg.init_from.as_deref().filter(|_| !(resume && state_path.exists())) {
        net = crate::init::from_model_dir(net, dir, &task.net_config(), split)?;
    }
    let mut optim = optimizer(cfg);
    // The weight average's saved weights on resume; a new run starts it after the first step.
    let mut average_start = None;
    let mut state = RunState {
        task: task.kind().into(),
        config: cfg.clone(),
        net: task.net_config(),
        epochs_done: 0,
        best_score: f64::NEG_INFINITY,
        best_epoch: 0,
        history: Vec::new(),
        content_key: ds.content_key.clone(),
        objective: task.objective(),
        ema_updates: 0,
        split: Some(split.clone()),
    };
    if resume && state_path.exists() {
        let saved: RunState =
            serde_json::from_slice(&std::fs::read(&state_path)?).with_context(|| format!("reading {}", state_path.display()))?;
        let objective_differs = !saved.objective.is_null() && saved.objective != state.objective;
        if saved.task != state.task || saved.net != state.net || saved.config != state.config || objective_differs {
            let mut diffs = Vec::new();
            differences("task", &saved.task.as_str().into(), &state.task.as_str().into(), &mut diffs);
            differences(
                "net",
                &serde_json::to_value(&saved.net)?,
                &serde_json::to_value(&state.net)?,
                &mut diffs,
            );
            differences(
                "train",
                &serde_json::to_value(&saved.config)?,
                &serde_json::to_value(&state.config)?,
                &mut diffs,
            );
            if objective_differs {
                differences("objective", &saved.objective, &state.objective, &mut diffs);
            }
            bail!(
                "{} was started with a different task, network, loss or config ({}); start a new --out",
                out.display(),
                if diffs.is_empty() {
                    "a value that does not compare equal to itself".to_string()
                } else {
                    diffs.join("; ")
                }
            );
        }
        if saved.best_epoch > 0 && !out.join("best").join("model.bpk").is_file() {
            bail!(
                "{}: best/ (the model of epoch {}) is missing; put it back, or start a new --out",
                out.display(),
                saved.best_epoch
            );
        }
        if saved.content_key != state.content_key {
            bail!("{} was trained on different data (content key differs)", out.display());
        }
        // Another --folds / --val-fold / --test-fold would train on, or select by, patients the
        // run held out, and its config would then say they were held out.
        let saved_split = match &saved.split {
            Some(s) => Some(s.clone()),
            None => run_config(out).and_then(|v| serde_json::from_value::<RunSplit>(v["split"].clone()).ok()),
        };
        if let Some(saved_split) = saved_split {
            let changes = split_changes(&saved_split, split);
            if !changes.is_empty() {
                bail!(
                    "{} was started with other patients in training, validation or test ({}); resume with the run's --folds, --val-fold, --test-fold and --train-on-val, or start a new --out",
                    out.display(),
                    changes.join("; ")
                );
            }
        }
        net = load_module(net, &ckpt_dir.join(format!("epoch-{:04}.model.bpk", saved.epochs_done)))?;
        optim = load_optimizer(optim, &ckpt_dir.join(format!("epoch-{:04}.optim.bpk", saved.epochs_done)))?;
        if cfg.ema_decay.is_some() {
            average_start = Some(load_module(
                net.valid(),
                &ckpt_dir.join(format!("epoch-{:04}.ema.bpk", saved.epochs_done)),
            )?);
        }
        match saved.best_epoch {
            0 => eprintln!("resuming after epoch {} (no validated epoch yet)", saved.epochs_done),
            b => eprintln!(
                "resuming after epoch {} (best {:.4} at epoch {b})",
                saved.epochs_done, saved.best_score
            ),
        }
        state = RunState {
            objective: state.objective,
            split: state.split,
            ..saved
        };
    }
    // After a resume's load: the group names the parameters of the weights being trained.
    let slowed = match cfg.encoder_lr_factor {
        Some(factor) => match task.pretrained_part(&net) {
            Some(group) => Some((group, factor)),
            None => bail!("--encoder-lr-factor needs a network with a pretrained encoder (an EfficientNet U-Net)"),
        },
        None => None,
    };
    let run_config = serde_json::to_string_pretty(
        &serde_json::json!({"task": task.kind(), "net": task.net_config(), "objective": task.objective(), "train": cfg, "split": split, "content_key": ds.content_key, "devices": compute.iter().map(|c| c.0).collect::<Vec<_>>()}),
    )?;
    write_atomic(&out.join("config.json"), run_config.as_bytes())?;

    let mut average = cfg
        .ema_decay
        .map(|decay| WeightAverage::new(average_start.take(), decay, state.ema_updates));
    let slow_step: Option<u64> = std::env::var("TUMORSCAN_SLOW_STEP_MS").ok().and_then(|v| v.parse().ok());
    let mut stopped_early = false;
    let resumed_at = state.epochs_done;
    std::thread::scope(|scope| -> Result<()> {
        // One long-lived thread per device when there are several; none for one device.
        let replicas = (devices.len() > 1).then(|| Replicas::spawn(scope, task, &devices, sample_size));
        for epoch in state.epochs_done + 1..=cfg.epochs.min(stop_after) {
            if !cfg.train_on_val && epoch - state.best_epoch.max(1) > cfg.patience && state.best_epoch > 0 {
                stopped_early = true;
                break;
            }
            let t0 = Instant::now();
            let lr = lr_at(cfg, epoch);
            // Every parameter's rate for the epoch's steps (the schedule changes once per epoch).
            let step_rates = rates(lr, slowed.as_ref());
            let mut plan = epoch_plan(&train_slices, cfg, epoch);
            let max_batches = cfg.max_steps_per_epoch.unwrap_or(usize::MAX);
            plan.truncate(max_batches.saturating_mul(cfg.batch_size));
            let steps = plan.len().div_ceil(cfg.batch_size);
            let bar = ProgressBar::new(steps as u64);
            bar.set_style(
                ProgressStyle::with_template("epoch {prefix} [{bar:30}] {pos}/{len} {msg} ({elapsed}<{eta})")
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
            );
            bar.set_prefix(format!("{epoch}/{}", cfg.epochs));
            let (mut loss_sum, mut n) = (0.0, 0usize);
            let mut step_time = 0.0;
            for (bi, chunk) in plan.chunks(cfg.batch_size).enumerate() {
                let samples: Vec<Sample> = chunk
                    .par_iter()
                    .enumerate()
                    .map(|(k, &i)| {
                        let s = train_slices[i];
                        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(sample_seed(cfg.seed, epoch, bi * cfg.batch_size + k));
                        let around = neighbours(&patients, s, context);
                        prepare_sample_in_context(s, &around, &norms[&s.patient], size, Some((&cfg.augment, &mut rng)))
                    })
                    .collect();
                let ts = Instant::now();
                let (value, grads) = match &replicas {
                    Some(r) => r.step(&net, samples)?,
                    None => {
                        let batch = to_tensors(&samples, sample_size, &device);
                        let loss = task.loss(&net, batch);
                        let value = loss.clone().into_scalar::<f32>() as f64;
                        if !value.is_finite() {
                            bail!("training diverged at epoch {epoch} step {bi}: loss {value}; lower --lr");
                        }
                        (value, GradientsParams::from_grads(loss.backward(), &net))
                    }
                };
                net = optim.step(step_rates.clone(), net, grads);
                if let Some(avg) = average.as_mut() {
                    avg.update(&net.valid());
                }
                step_time += ts.elapsed().as_secs_f64();
                if let Some(ms) = slow_step {
                    // Test hook: widen the window in which a crash test can kill a running epoch.
                    std::thread::sleep(std::time::Duration::from_millis(ms));
                }
                loss_sum += value * chunk.len() as f64;
                n += chunk.len();
                bar.set_message(format!("loss {:.4}", loss_sum / n as f64));
                bar.inc(1);
            }
            bar.finish_and_clear();
            // A final fit trains on its validation patients, so validating every epoch would only
            // re-measure trained slices (~17 s of a 194 s 192 px refit epoch): once, after the last.
            let validated = !cfg.train_on_val || epoch == cfg.epochs;
            let valid = match average.as_ref().and_then(WeightAverage::net) {
                Some(avg) => avg.clone(),
                None => net.valid(),
            };
            let val = if validated {
                task.validate(&valid, &val_items, &infer_device, cfg.batch_size)
            } else {
                BTreeMap::new()
            };
            let score = val.get(task.selection_metric()).copied().unwrap_or(f64::NAN);
            if validated && !cfg.train_on_val && score.is_nan() {
                // No model could ever be selected (e.g. a ROC-AUC over one class only).
                bail!(
                    "validation gave no {} at epoch {epoch} (do the validation patients have tumour slices, and for detection tumour-free ones too?); choose another --val-fold",
                    task.selection_metric()
                );
            }
            let rec = EpochRecord {
                epoch,
                train_loss: loss_sum / n.max(1) as f64,
                learning_rate: lr,
                seconds: t0.elapsed().as_secs_f64(),
                step_seconds: step_time / steps.max(1) as f64,
                val,
            };
            let vals: Vec<String> = rec.val.iter().map(|(k, v)| format!("{k} {v:.4}")).collect();
            println!(
                "epoch {epoch:>3}/{} loss {:.4} lr {lr:.2e} {} | {:.0}s ({:.2}s/step)",
                cfg.epochs,
                rec.train_loss,
                vals.join(" "),
                rec.seconds,
                rec.step_seconds
            );
            state.history.push(rec);
            if validated && (score > state.best_score || cfg.train_on_val) {
                state.best_score = score;
                state.best_epoch = epoch;
                let best = out.join("best");
                std::fs::create_dir_all(&best)?;
                save_module(&valid, &best.join("model.bpk"))?;
                let card = serde_json::json!({
                    "task": task.kind(),
                    "net": task.net_config(),
                    "epoch": epoch,
                    "selection_metric": if cfg.train_on_val { "last epoch (validation patients trained on)" } else { task.selection_metric() },
                    "validation": state.history.last().map(|h| &h.val),
                    "extras": task.model_extras(&valid, &val_items, &infer_device),
                    "content_key": ds.content_key,
                    "seed": cfg.seed,
                    "weights": match cfg.ema_decay {
                        Some(d) => format!("exponential moving average of the trained weights, decay {d} per step"),
                        None => "the trained weights".into(),
                    },
                });
                write_atomic(&best.join("model.json"), serde_json::to_string_pretty(&card)?.as_bytes())?;
                // The run's config (its patient split above all) travels with a copied best/, as
                // a shipped model folder's does, so `evaluate` can still refuse trained folds.
                write_atomic(&best.join("config.json"), run_config.as_bytes())?;
                println!("  new best {}: {score:.4}", task.selection_metric());
            }
            // Checkpoint: weights and optimizer under the epoch's name, then the state that names them.
            save_module(&net, &ckpt_dir.join(format!("epoch-{epoch:04}.model.bpk")))?;
            save_optimizer(&optim, &ckpt_dir.join(format!("epoch-{epoch:04}.optim.bpk")))?;
            if let Some(avg) = &average {
                if let Some(avg_net) = avg.net() {
                    save_module(avg_net, &ckpt_dir.join(format!("epoch-{epoch:04}.ema.bpk")))?;
                }
                state.ema_updates = avg.updates();
            }
            state.epochs_done = epoch;
            write_atomic(&state_path, serde_json::to_string_pretty(&state)?.as_bytes())?;
            if epoch > 1 {
                for ext in ["model.bpk", "optim.bpk", "ema.bpk"] {
                    let _ = std::fs::remove_file(ckpt_dir.join(format!("epoch-{:04}.{ext}", epoch - 1)));
                }
            }
            write_history(out, &state.history, task.selection_metric(), cfg.train_on_val)?;
        }
        Ok(())
    })?;
    if state.epochs_done > 0 && state.epochs_done == resumed_at {
        // No epoch ran (each writes the history): a run killed between its last checkpoint and
        // its history would otherwise never write metrics.csv and curves.png.
        write_history(out, &state.history, task.selection_metric(), cfg.train_on_val)?;
    }
    Ok(TrainOutcome {
        epochs: state.epochs_done,
        best_epoch: state.best_epoch,
        best_score: state.best_score,
        model_dir: out.join("best"),
        stopped_early,
    })
}
