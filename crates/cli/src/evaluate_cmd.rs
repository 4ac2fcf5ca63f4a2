//! `tumorscan evaluate segment|detect`: score a model on a held-out fold.

use crate::compare_cmd::{compare, CompareArgs};
use crate::dataset_cmd::{load, LoadArgs};
use crate::pool_cmd::{pool, PoolArgs};
use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use tumorscan_data::augment::MissingSequence;
use tumorscan_data::normalize::Normalizer;
use tumorscan_data::render::{grid, label, overlay};
use tumorscan_data::split::{check_lists_all, name_some, read_folds, FoldRow};
use tumorscan_data::{LoadedDataset, Patient};
use tumorscan_evaluate::compare::{compare_patients, Figure, PairedEffect};
use tumorscan_evaluate::detection::{best_accuracy_threshold, evaluate_detection, DetectionReport, Scored};
use tumorscan_evaluate::plot::{confusion_png, line_chart, reliability_png, LegendAt, Series};
use tumorscan_evaluate::pooled::VERIFIED_HELD_OUT;
use tumorscan_evaluate::segmentation::{evaluate_segmentation, SegmentationReport, SlicePair};
use tumorscan_model::ComputeDevice;
use tumorscan_predict::engine::{
    classifier_score, combined_score, in_slice_context, masks_from_probabilities, pixel_rule_score, probability_maps, segmentation_score,
};
use tumorscan_predict::input::{InputSlice, Volume};
use tumorscan_predict::models::{Classifier, DetectionRule, Device, Postprocess};
use tumorscan_predict::postprocess::{smooth_across_slices, ComponentRank};
use tumorscan_predict::ModelBundle;

/// Evaluate subcommands.
#[derive(Subcommand)]
pub enum EvaluateCommand {
    /// Per-patient volumetric Dice (Buda et al.), per-slice metrics, post-processing effects, panels.
    #[command(
        after_help = "Example:\n  tumorscan evaluate segment --model runs/seg/best --data kaggle_3m/ --folds folds.csv --fold 0 --out eval/seg"
    )]
    Segment(EvalArgs),
    /// Slice detection: accuracy, precision, recall, specificity, F1, ROC-AUC, calibration, report, patient level.
    #[command(
        after_help = "Example:\n  tumorscan evaluate detect --model runs/seg/best --data kaggle_3m/ --folds folds.csv --fold 0 --val-fold 1 --out eval/det"
    )]
    Detect(DetectArgs),
    /// Cross-validation: pool results of different folds (each patient once) into one figure.
    #[command(after_help = "Example:\n  tumorscan evaluate pool eval/fold0 eval/fold1 eval/fold2 eval/fold3 eval/fold4 --out eval/cv")]
    Pool(PoolArgs),
    /// Two models on the same patients: paired per-patient Dice differences, their bootstrap
    /// interval and a sign-flip permutation p-value; slice calls paired (McNemar) when given
    /// detection results.
    #[command(
        after_help = "Example:\n  tumorscan evaluate compare --baseline eval/v1-fold1 eval/v1-fold3 --candidate eval/v2-fold1 eval/v2-fold3 --out eval/v2-vs-v1"
    )]
    Compare(CompareArgs),
}

/// Common evaluation arguments.
#[derive(Args)]
pub struct EvalArgs {
    /// Model folder (bundle, or a training run's best/).
    #[arg(long)]
    model: PathBuf,
    /// Dataset folder.
    #[arg(long)]
    data: PathBuf,
    /// Folds CSV.
    #[arg(long)]
    folds: PathBuf,
    /// Fold to evaluate: a fold the model never trained on (refused otherwise). The run's
    /// validation fold is allowed but reported as not a test result (it chose the checkpoint).
    #[arg(long)]
    fold: usize,
    #[command(flatten)]
    report: ReportOut,
    /// Robustness check: evaluate every patient as if a sequence were missing, filled in with
    /// FLAIR the way the dataset stores 10 of its patients ('post': post-contrast replaced,
    /// 'both': FLAIR in all three channels).
    #[arg(long, value_enum)]
    missing_sequence: Option<MissingArg>,
    #[command(flatten)]
    load: LoadArgs,
}

/// Where a report goes, and the seed of its bootstrap intervals.
#[derive(Args)]
pub struct ReportOut {
    /// Output folder.
    #[arg(long)]
    pub out: PathBuf,
    /// Overwrite files in an existing --out.
    #[arg(long)]
    pub force: bool,
    /// Seed of the bootstrap.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

impl ReportOut {
    /// Refuse an output folder inside the dataset (a report there would become part of it), and
    /// check it as [`ReportOut::create`] will, before any work is done.
    pub fn check(&self, data: &Path) -> Result<()> {
        if tumorscan_data::layout::is_within_dataset(&self.out, data) {
            bail!(
                "--out {} is inside --data {}: the report would become part of the dataset; choose an --out outside it",
                self.out.display(),
                data.display()
            );
        }
        self.refuse_existing()
    }

    /// Create the output folder; a non-empty one is refused without --force, so that no
    /// earlier report is overwritten by accident.
    pub fn create(&self) -> Result<()> {
        self.refuse_existing()?;
        std::fs::create_dir_all(&self.out).with_context(|| format!("creating {}", self.out.display()))
    }

    fn refuse_existing(&self) -> Result<()> {
        if self.out.symlink_metadata().is_ok() && !self.out.exists() {
            bail!("--out {} is a symbolic link to nothing; choose another --out", self.out.display());
        }
        // Created only at the end: a parent that is a file would fail after all the work.
        if let Some(parent) = self.out.ancestors().skip(1).find(|a| !a.as_os_str().is_empty() && a.exists()) {
            if !parent.is_dir() {
                bail!(
                    "--out {}: {} is not a folder; choose another --out",
                    self.out.display(),
                    parent.display()
                );
            }
        }
        if self.out.exists() && !self.out.is_dir() {
            bail!("--out {} exists and is not a folder; choose another --out", self.out.display());
        }
        let listing = || std::fs::read_dir(&self.out).with_context(|| format!("reading {}", self.out.display()));
        if self.out.exists() && listing()?.next().is_some() && !self.force {
            bail!(
                "{} exists and is not empty; pass --force or choose another --out",
                self.out.display()
            );
        }
        Ok(())
    }
}

/// `--missing-sequence` values.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum MissingArg {
    /// Post-contrast replaced by FLAIR.
    Post,
    /// Pre- and post-contrast replaced by FLAIR.
    Both,
}

impl MissingArg {
    fn sequence(self) -> MissingSequence {
        match self {
            Self::Post => MissingSequence::PostContrast,
            Self::Both => MissingSequence::Both,
        }
    }
}

/// Detection evaluation arguments.
#[derive(Args)]
pub struct DetectArgs {
    #[command(flatten)]
    common: EvalArgs,
    /// Validation fold on which thresholds are chosen (never the evaluated fold).
    #[arg(long)]
    val_fold: Option<usize>,
    /// A trained slice classifier (run's best/ folder) to compare and combine.
    #[arg(long)]
    classifier: Option<PathBuf>,
}

/// Run an evaluate subcommand.
pub fn run(cmd: EvaluateCommand) -> Result<()> {
    match cmd {
        EvaluateCommand::Segment(a) => segment(&a),
        EvaluateCommand::Detect(a) => detect(&a),
        EvaluateCommand::Pool(a) => pool(&a),
        EvaluateCommand::Compare(a) => compare(&a),
    }
}

struct Prepared {
    ds: LoadedDataset,
    bundle: ModelBundle,
}

/// Refuse a slice classifier given as `--model` (whose loader would only say "not a
/// segmentation model"), pointing to where it goes.
fn refuse_classifier_as_model(model: &Path, detect: bool) -> Result<()> {
    // Anything unreadable is left to the bundle loader, which names it.
    let card: Option<serde_json::Value> = std::fs::read(model.join("model.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    if card.is_some_and(|c| c["net"]["kind"] == "classifier") {
        let m = model.display();
        if detect {
            bail!(
                "--model {m} is a slice classifier (train detect), not a segmentation model: pass it as \
                 --classifier {m}, with --model a segmentation model (a train segment run's best/, or a bundle such as models/)"
            );
        }
        bail!(
            "--model {m} is a slice classifier (train detect), not a segmentation model: evaluate it with \
             `evaluate detect --model <segmentation model> --classifier {m}`"
        );
    }
    Ok(())
}

fn prepare(a: &EvalArgs, detect: bool) -> Result<Prepared> {
    refuse_classifier_as_model(&a.model, detect)?;
    // Created only when the results are written, so that bad inputs leave no empty folder.
    a.report.check(&a.data)?;
    let device = ComputeDevice::cpu().inference().map_err(anyhow::Error::msg)?;
    let bundle = ModelBundle::load(&a.model, &device)?;
    let mut ds = load(&a.data, &a.load)?;
    if let Some(m) = a.missing_sequence {
        ds.patients
            .iter_mut()
            .flat_map(|p| p.slices.iter_mut())
            .for_each(|s| m.sequence().apply_to_rgb(&mut s.image));
    }
    Ok(Prepared { ds, bundle })
}

/// The patients of `fold`; every one of them must be in the dataset. Patients of other folds
/// may be absent (e.g. --data a copy of one fold's patients, with the full folds file).
fn fold_patients<'a>(ds: &'a LoadedDataset, rows: &[FoldRow], folds: &Path, fold: usize) -> Result<Vec<&'a Patient>> {
    let ids: BTreeSet<&str> = rows.iter().filter(|r| r.fold == fold).map(|r| r.patient.as_str()).collect();
    if ids.is_empty() {
        bail!("fold {fold} is empty or missing in {}", folds.display());
    }
    let ps: Vec<&Patient> = ds.patients.iter().filter(|p| ids.contains(p.id.as_str())).collect();
    if ps.len() != ids.len() {
        let absent: Vec<&str> = ids.iter().copied().filter(|id| ds.patient(id).is_none()).collect();
        bail!(
            "{} patient(s) of fold {fold} in {} are not in {}: {}; every patient of an evaluated fold (and of --val-fold) \
             must be in --data (patients of other folds may be absent)",
            absent.len(),
            folds.display(),
            ds.root.display(),
            name_some(&absent)
        );
    }
    Ok(ps)
}

/// The folds file, checked against the dataset: it must put every patient of --data in a fold
/// (one left out would silently not be scored). Listed patients absent from --data are
/// allowed outside the `used` folds ([`fold_patients`] checks those) and noted.
fn read_checked_folds(ds: &LoadedDataset, folds: &Path, used: &[usize]) -> Result<Vec<FoldRow>> {
    let rows = read_folds(folds)?;
    for &f in used {
        fold_patients(ds, &rows, folds, f)?;
    }
    check_lists_all(&rows, folds, ds)?;
    let absent: Vec<&str> = rows
        .iter()
        .filter(|r| ds.patient(&r.patient).is_none())
        .map(|r| r.patient.as_str())
        .collect();
    if !absent.is_empty() {
        eprintln!(
            "note: {} patient(s) of other folds in {} are not in {} ({}); the evaluated folds are complete",
            absent.len(),
            folds.display(),
            ds.root.display(),
            name_some(&absent)
        );
    }
    Ok(rows)
}

/// Refuse to evaluate on patients the model was trained on, and label a fold used for model
/// selection as such (when the run's config.json beside the model says so).
/// Whether `patients` were kept out of the training and selection of every network of the
/// model (for an ensemble, of each member). `who` names the model and `fold` the patients'
/// fold in a refusal ("the classifier (--classifier X)", "--val-fold 1"), `advice` says what
/// to do instead.
fn check_held_out(model: &Path, ensemble: &[String], patients: &[&Patient], who: &str, fold: &str, advice: &str) -> Result<String> {
    // The model folder's own config.json first (train writes one into best/, a bundle's segment/
    // has one), then the run's above a best/ copied before that.
    let mut configs = Vec::new();
    if let Some(bytes) = ["config.json", "../config.json", "segment/config.json"]
        .iter()
        .find_map(|c| std::fs::read(model.join(c)).ok())
    {
        configs.push(bytes);
    }
    for member in ensemble {
        match std::fs::read(model.join(member).join("config.json")).or_else(|_| std::fs::read(model.join(member).join("../config.json"))) {
            Ok(bytes) => configs.push(bytes),
            Err(_) => {
                return Ok(format!(
                    "training split of ensemble member {member} not found: held-out status not verified"
                ))
            }
        }
    }
    if configs.is_empty() {
        return Ok("training split not found beside the model: held-out status not verified".into());
    }
    let (mut train, mut val) = (BTreeSet::new(), BTreeSet::new());
    for bytes in &configs {
        let v: serde_json::Value = serde_json::from_slice(bytes)?;
        // A config without the lists proves nothing about where the patients were.
        if !["train", "val"].iter().all(|k| v["split"][k].is_array()) {
            return Ok("training split not recorded in the config.json beside the model: held-out status not verified".into());
        }
        let set = |k: &str| -> BTreeSet<String> {
            v["split"][k]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        };
        train.extend(set("train"));
        val.extend(set("val"));
    }
    if let Some(p) = patients.iter().find(|p| train.contains(&p.id)) {
        bail!("patient {} of {fold} was used to train {who}; {advice}", p.id);
    }
    if patients.iter().any(|p| val.contains(&p.id)) {
        return Ok(
            "VALIDATION fold: used for model selection; these figures may choose post-processing and thresholds but are not a test result"
                .into(),
        );
    }
    Ok(VERIFIED_HELD_OUT.into())
}

/// How the input was altered, for the report ("" when it was not).
fn input_note(a: &EvalArgs) -> String {
    match a.missing_sequence {
        None => String::new(),
        Some(MissingArg::Post) => {
            "\n\nInput altered (robustness check, --missing-sequence post): every slice's post-contrast channel replaced by FLAIR.".into()
        }
        Some(MissingArg::Both) => {
            "\n\nInput altered (robustness check, --missing-sequence both): FLAIR in all three channels of every slice.".into()
        }
    }
}

fn volume_of(p: &Patient) -> Volume {
    let slices = p
        .slices
        .iter()
        .map(|s| InputSlice {
            label: s.image_path.display().to_string(),
            stem: format!("{}_{}", s.patient, s.number),
            number: s.number,
            width: s.width,
            height: s.height,
            rgb: s.image.clone(),
            spacing_mm: None,
            position_mm: None,
            orientation: None,
            truth: Some(s.mask.clone()),
            notes: vec![],
        })
        .collect();
    Volume {
        id: p.id.clone(),
        source: p.id.clone().into(),
        slices,
        nifti: None,
        dicom: None,
        slice_thickness_mm: None,
        notes: Vec::new(),
    }
}

/// Probability maps of every slice of the given patients (native size).
fn probabilities(bundle: &ModelBundle, patients: &[&Patient], flip_tta: bool) -> Vec<(Volume, Vec<Vec<f32>>)> {
    patients
        .iter()
        .map(|p| {
            let v = volume_of(p);
            let norm = Normalizer::fit(v.slices.iter().map(|s| s.rgb.as_slice()));
            let probs = probability_maps(bundle, &v, &norm, 16, flip_tta);
            (v, probs)
        })
        .collect()
}

/// Each volume's maps averaged across neighbouring slices at `weight`, as the bundle's clean-up
/// sees them ([`smooth_across_slices`]).
fn smooth_each(maps: &mut [(Volume, Vec<Vec<f32>>)], weight: f32) {
    for (v, p) in maps {
        *p = smooth_across_slices(std::mem::take(p), v.one_grid(), weight);
    }
}

/// [`smooth_each`] on a copy; the maps themselves, borrowed, at weight 0.
fn smoothed_maps(maps: &[(Volume, Vec<Vec<f32>>)], weight: f32) -> std::borrow::Cow<'_, [(Volume, Vec<Vec<f32>>)]> {
    if weight == 0.0 {
        return std::borrow::Cow::Borrowed(maps);
    }
    let mut copy = maps.to_vec();
    smooth_each(&mut copy, weight);
    std::borrow::Cow::Owned(copy)
}

fn seg_report(maps: &[(Volume, Vec<Vec<f32>>)], pp: &Postprocess, seed: u64) -> (SegmentationReport, Vec<Vec<Vec<u8>>>) {
    let masks: Vec<Vec<Vec<u8>>> = maps.iter().map(|(v, p)| masks_from_probabilities(v, p, pp.threshold, pp)).collect();
    let mut pairs = Vec::new();
    for ((v, _), ms) in maps.iter().zip(&masks) {
        for (s, m) in v.slices.iter().zip(ms) {
            pairs.push(SlicePair {
                patient: &v.id,
                slice: s.number,
                width: s.width as usize,
                height: s.height as usize,
                truth: s.truth.as_deref().unwrap_or(&[]),
                prediction: m,
            });
        }
    }
    (evaluate_segmentation(&pairs, seed), masks)
}

/// A report's per-patient Dice as the figures a paired comparison takes.
fn figures(r: &SegmentationReport, fold: usize) -> Vec<Figure> {
    r.per_patient.iter().map(|p| (p.patient.clone(), fold, p.dice)).collect()
}

fn segment(a: &EvalArgs) -> Result<()> {
    let Prepared { ds, bundle } = prepare(a, false)?;
    let rows = read_checked_folds(&ds, &a.folds, &[a.fold])?;
    let patients = fold_patients(&ds, &rows, &a.folds, a.fold)?;
    let held_out = check_held_out(
        &a.model,
        &bundle.manifest.ensemble,
        &patients,
        &format!("the model (--model {})", a.model.display()),
        &format!("the evaluated fold {}", a.fold),
        "evaluate a fold it held out (its test fold)",
    )? + &input_note(a);
    eprintln!("{held_out}");
    let t = std::time::Instant::now();
    let plain = probabilities(&bundle, &patients, false);
    let secs = t.elapsed().as_secs_f64();
    let tta = probabilities(&bundle, &patients, true);
    let slices: usize = plain.iter().map(|(v, _)| v.slices.len()).sum();
    eprintln!("segmented {slices} slices of {} patients in {secs:.1} s", patients.len());
    let main_pp = bundle.manifest.postprocess.clone();
    let base = Postprocess::default();
    // Hysteresis after the largest 3D component (`grow_to`).
    let grown = |low: f32| Postprocess {
        largest_3d_component: true,
        grow_to: low,
        ..base.clone()
    };
    // Probability averaged with the neighbouring slices' before the largest 3D component.
    let smoothed = |w: f32| Postprocess {
        largest_3d_component: true,
        slice_smoothing: w,
        ..base.clone()
    };
    let variants = [
        ("as shipped", main_pp.clone()),
        ("raw (threshold 0.5, no clean-up)", base.clone()),
        (
            "threshold 0.4",
            Postprocess {
                threshold: 0.4,
                ..base.clone()
            },
        ),
        (
            "threshold 0.6",
            Postprocess {
                threshold: 0.6,
                ..base.clone()
            },
        ),
        (
            "flip TTA",
            Postprocess {
                flip_tta: true,
                ..base.clone()
            },
        ),
        (
            "drop components < 16 px",
            Postprocess {
                min_component_pixels: 16,
                ..base.clone()
            },
        ),
        (
            "drop components < 64 px",
            Postprocess {
                min_component_pixels: 64,
                ..base.clone()
            },
        ),
        (
            "largest 3D component",
            Postprocess {
                largest_3d_component: true,
                ..base.clone()
            },
        ),
        (
            "3D component with the most probability mass",
            Postprocess {
                largest_3d_component: true,
                keep_3d_by: ComponentRank::Mass,
                ..base.clone()
            },
        ),
        (
            "3D component with the highest peak probability",
            Postprocess {
                largest_3d_component: true,
                keep_3d_by: ComponentRank::Peak,
                ..base.clone()
            },
        ),
        (
            "3D components >= 10% of the largest",
            Postprocess {
                min_3d_fraction: 0.1,
                ..base.clone()
            },
        ),
        (
            "3D components >= 30% of the largest",
            Postprocess {
                min_3d_fraction: 0.3,
                ..base.clone()
            },
        ),
        (
            "flip TTA + drop < 64 px",
            Postprocess {
                flip_tta: true,
                min_component_pixels: 64,
                ..base.clone()
            },
        ),
        (
            "flip TTA + largest 3D",
            Postprocess {
                flip_tta: true,
                largest_3d_component: true,
                ..base.clone()
            },
        ),
        ("largest 3D, slices smoothed 0.1", smoothed(0.1)),
        ("largest 3D, slices smoothed 0.2", smoothed(0.2)),
        ("largest 3D, grown to 0.4", grown(0.4)),
        ("largest 3D, grown to 0.3", grown(0.3)),
        ("largest 3D, grown to 0.2", grown(0.2)),
    ];
    let mut md = format!(
        "## Segmentation, fold {} ({} patients, {slices} slices)\n\nModel: {}\n\n{held_out}\n\n",
        a.fold,
        patients.len(),
        bundle.identity()
    );
    let mut variant_rows = Vec::new();
    let mut main: Option<(SegmentationReport, Vec<Vec<Vec<u8>>>)> = None;
    md.push_str(&format!("### Post-processing variants (choose on the validation fold, never on test)\n\nEach variant is also paired with the shipped clean-up on the same patients: the mean per-patient difference with its bootstrap 95% interval, and how many patients score higher / lower.\n\n| variant | mean patient Dice [95% CI] | median | {} | slice Dice | FP slices | missed tumour slices |\n| --- | --- | --- | --- | --- | --- | --- | --- |\n", PairedEffect::COLUMNS));
    // The first variant is the shipped configuration; every later one is paired with it.
    let mut shipped: Option<Vec<Figure>> = None;
    for (name, pp) in &variants {
        let maps = smoothed_maps(if pp.flip_tta { &tta } else { &plain }, pp.slice_smoothing);
        let (r, masks) = seg_report(&maps, pp, a.report.seed);
        let here = figures(&r, a.fold);
        let effect = match &shipped {
            Some(base) => Some(
                compare_patients(base, &here, a.report.seed)
                    .with_context(|| format!("pairing {name:?} with the shipped clean-up"))?
                    .effect(),
            ),
            None => None,
        };
        let cells = PairedEffect::cells(effect.as_ref());
        md.push_str(&format!(
            "| {name} | {} | {:.3} | {cells} | {:.3} | {} of {} | {} of {} |\n",
            r.patient_dice_mean,
            r.patient_dice_median,
            r.slice_dice_mean,
            r.false_positive_slices,
            r.empty_slices,
            r.missed_tumor_slices,
            r.tumor_slices
        ));
        let per_patient: Vec<_> = r
            .per_patient
            .iter()
            .map(|p| serde_json::json!({"patient": p.patient, "dice": p.dice}))
            .collect();
        variant_rows.push(serde_json::json!({"variant": name, "postprocess": pp, "patient_dice_mean": r.patient_dice_mean, "patient_dice_median": r.patient_dice_median, "slice_dice_mean": r.slice_dice_mean, "false_positive_slices": r.false_positive_slices, "missed_tumor_slices": r.missed_tumor_slices, "vs_shipped": effect, "per_patient": per_patient}));
        if main.is_none() {
            shipped = Some(here);
            main = Some((r, masks));
        }
    }
    let maps = smoothed_maps(if main_pp.flip_tta { &tta } else { &plain }, main_pp.slice_smoothing);
    let Some((report, masks)) = main else { bail!("no variants") };
    md.push('\n');
    md.push_str(&report.markdown("Shipped configuration"));
    md.push_str(&format!("\nEmpty cases: a patient whose truth and prediction are both empty scores Dice 1; a patient with an empty truth and a non-empty prediction scores 0. Per-slice metrics are over tumour slices only: a missed one (empty prediction) scores Dice 0 and has no HD95. HD95: boundary pixels (4-neighbour) of both masks, distances to the other's nearest boundary pooled over both directions, 95th percentile by nearest rank. Inference: {secs:.1} s for {slices} slices on this machine.\n"));
    let json = serde_json::json!({
        "fold": a.fold, "model": bundle.identity(), "held_out": held_out, "seconds": secs,
        "report": report, "postprocessing": variant_rows,
    });
    a.report.create()?;
    std::fs::write(a.report.out.join("segmentation.json"), serde_json::to_string_pretty(&json)?)?;
    std::fs::write(a.report.out.join("segmentation.md"), &md)?;
    let panels = a.report.out.join("panels.png");
    let drawn = write_panels(&panels, &maps, &masks, &report)?;
    if !drawn {
        // An earlier report's panels (--force) would pass for this one's.
        let _ = std::fs::remove_file(&panels);
    }
    println!("{md}");
    println!(
        "wrote {0}/segmentation.json, {0}/segmentation.md{1}",
        a.report.out.display(),
        if drawn {
            format!(", {}/panels.png", a.report.out.display())
        } else {
            " (no panels.png: the fold has no tumour slices to show)".into()
        }
    );
    Ok(())
}

/// FLAIR / truth / prediction / overlay rows for the best, median and worst tumour slices;
/// false (nothing written) when there are no tumour slices.
fn write_panels(path: &Path, maps: &[(Volume, Vec<Vec<f32>>)], masks: &[Vec<Vec<u8>>], r: &SegmentationReport) -> Result<bool> {
    let mut scored: Vec<_> = r.per_slice.iter().collect();
    scored.sort_by(|x, y| y.dice.total_cmp(&x.dice));
    if scored.is_empty() {
        return Ok(false);
    }
    let picks = [
        ("best", scored[0]),
        ("median", scored[scored.len() / 2]),
        ("worst", scored[scored.len() - 1]),
    ];
    let mut tiles = Vec::new();
    for (what, sc) in picks {
        let (vi, (v, _)) = maps
            .iter()
            .enumerate()
            .find(|(_, (v, _))| v.id == sc.patient)
            .context("panel patient")?;
        let (si, s) = v
            .slices
            .iter()
            .enumerate()
            .find(|(_, s)| s.number == sc.slice)
            .context("panel slice")?;
        let truth = s.truth.as_deref().unwrap_or(&[]);
        let pred = &masks[vi][si];
        let gray = |m: &[u8]| {
            image::RgbImage::from_fn(s.width, s.height, |x, y| {
                let v = m[(y * s.width + x) as usize] * 255;
                image::Rgb([v, v, v])
            })
        };
        let mut a = overlay(&s.rgb, s.width, s.height, None, None);
        label(
            &mut a,
            &[
                &format!("{what}: {} #{}", sc.patient.trim_start_matches("TCGA_"), sc.slice),
                "FLAIR",
            ],
        );
        let mut b = gray(truth);
        label(&mut b, &["ground truth"]);
        let mut c = gray(pred);
        label(&mut c, &[&format!("prediction, Dice {:.3}", sc.dice)]);
        let mut d = overlay(&s.rgb, s.width, s.height, Some(truth), Some(pred));
        label(&mut d, &["green truth, red prediction"]);
        tiles.extend([a, b, c, d]);
    }
    grid(&tiles, 4).save(path).with_context(|| format!("writing {}", path.display()))?;
    Ok(true)
}

/// A candidate's threshold-chosen rule and its results.
struct Outcome {
    name: String,
    val_accuracy: f64,
    val_auc: f64,
    report: DetectionReport,
    rule: DetectionRule,
}

struct Candidate {
    name: String,
    val: Vec<Scored>,
    test: Vec<Scored>,
    default_threshold: f64,
    /// Lowest threshold the rule can use: below the pixel threshold a slice without a mask
    /// would count as tumour here but not in `predict`.
    min_threshold: f64,
    /// The bundle rule this candidate becomes at threshold t.
    rule: fn(f64) -> DetectionRule,
    /// Which score the figures (and the ROC) are of.
    reported: Reported,
}

/// The score a candidate's figures are of.
#[derive(Clone, Copy, PartialEq)]
enum Reported {
    /// The score its threshold was chosen on.
    Own,
    /// The pixel rule: thresholds are chosen on pixel counts, the figures are of the score
    /// `predict` reports under the rule ([`pixel_rule_score`]).
    PixelRule,
    /// The pixel rule's score with slice context ([`in_slice_context`]), as `predict` reports it.
    PixelRuleInContext,
}

/// Per slice: its volume, index, cleaned-mask pixels (bundle post-processing) and raw map.
type SliceView<'a> = (&'a Volume, usize, u64, &'a [f32]);

fn slice_views<'a>(maps: &'a [(Volume, Vec<Vec<f32>>)], pp: &Postprocess) -> Vec<SliceView<'a>> {
    maps.iter()
        .flat_map(|(v, probs)| {
            let masks = masks_from_probabilities(v, probs, pp.threshold, pp);
            masks
                .into_iter()
                .enumerate()
                .map(move |(i, m)| (v, i, m.iter().map(|&x| x as u64).sum::<u64>(), probs[i].as_slice()))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The pixel rule ("cleaned mask of at least t pixels") as a candidate, with or without slice
/// context: thresholds are chosen on pixel counts, figures are of the reported score.
fn pixel_candidate(name: &str, context: bool, val: &[SliceView], test: &[SliceView]) -> Candidate {
    fn rule(t: f64, slice_context: bool) -> DetectionRule {
        DetectionRule::Segmentation {
            min_pixels: t.ceil().max(1.0) as u64,
            min_probability: 0.0,
            slice_context,
        }
    }
    let pixels = |px: u64, _: &[f32], _: usize| px as f64;
    Candidate {
        name: name.into(),
        val: scored(val, &pixels),
        test: scored(test, &pixels),
        default_threshold: 1.0,
        min_threshold: 0.0,
        rule: if context { |t| rule(t, true) } else { |t| rule(t, false) },
        reported: if context {
            Reported::PixelRuleInContext
        } else {
            Reported::PixelRule
        },
    }
}

/// The pixel rule's scores ([`pixel_rule_score`]), with slice context within each volume when
/// `context` (views are grouped by volume, in slice order).
fn pixel_rule_scored(views: &[SliceView], min_px: u64, pixel_threshold: f32, context: bool) -> Vec<Scored> {
    let mut out = scored(views, &|px, p, _| pixel_rule_score(p, px, min_px, pixel_threshold));
    if context {
        for volume in out.chunk_by_mut(|a, b| a.patient == b.patient) {
            let mut s: Vec<f64> = volume.iter().map(|x| x.score).collect();
            in_slice_context(&mut s, pixel_threshold);
            volume.iter_mut().zip(s).for_each(|(x, v)| x.score = v);
        }
    }
    out
}

fn scored(views: &[SliceView], f: &dyn Fn(u64, &[f32], usize) -> f64) -> Vec<Scored> {
    views
        .iter()
        .enumerate()
        .map(|(k, (v, i, pixels, p))| {
            let s = &v.slices[*i];
            let t = s.truth.as_deref().unwrap_or(&[]);
            Scored {
                patient: v.id.clone(),
                slice: s.number,
                score: f(*pixels, p, k),
                truth: t.contains(&1),
                truth_pixels: t.iter().map(|&x| x as u64).sum(),
            }
        })
        .collect()
}

fn classifier_scores(classifier: &Classifier, device: &Device, patients: &[&Patient]) -> Result<Vec<Scored>> {
    let size = classifier.config.input_size;
    let mut out = Vec::new();
    for p in patients {
        let norm = Normalizer::fit(p.slices.iter().map(|s| s.image.as_slice()));
        let inputs: Vec<Vec<f32>> = p
            .slices
            .iter()
            .map(|s| tumorscan_data::augment::prepare_image(&s.image, s.width, s.height, &norm, size))
            .collect();
        let refs: Vec<&[f32]> = inputs.iter().map(Vec::as_slice).collect();
        let probs = classifier.probabilities(&refs, device, 16);
        out.extend(p.slices.iter().zip(probs).map(|(s, pr)| Scored {
            patient: p.id.clone(),
            slice: s.number,
            score: pr as f64,
            truth: s.has_tumor(),
            truth_pixels: s.tumor_pixels(),
        }));
    }
    Ok(out)
}

/// Every evaluated slice with its truth, its cleaned mask, its largest pixel probability and
/// each candidate's score: the table behind the detection figures, for analyses of one's own.
fn write_slice_table(path: &Path, views: &[SliceView], reports: &[Outcome], scores: &[Vec<f64>]) -> Result<()> {
    let mut w = csv::Writer::from_path(path).with_context(|| format!("writing {}", path.display()))?;
    let mut header: Vec<String> = ["patient", "slice", "truth_pixels", "cleaned_pixels", "max_probability"]
        .map(String::from)
        .to_vec();
    header.extend(reports.iter().map(|o| format!("score: {}", o.name)));
    w.write_record(&header)?;
    for (k, (v, i, pixels, p)) in views.iter().enumerate() {
        let s = &v.slices[*i];
        let truth = s.truth.as_deref().map_or(0, |t| t.iter().map(|&x| x as u64).sum::<u64>());
        let max = p.iter().copied().fold(0f32, f32::max);
        let mut row = vec![
            v.id.clone(),
            s.number.to_string(),
            truth.to_string(),
            pixels.to_string(),
            format!("{max:.6}"),
        ];
        row.extend(scores.iter().map(|c| format!("{:.6}", c[k])));
        w.write_record(&row)?;
    }
    w.flush().with_context(|| format!("writing {}", path.display()))
}

/// The candidate (index in `detect`'s list) that a bundle's rule is, and its threshold.
fn bundle_candidate(rule: &DetectionRule) -> (usize, f64) {
    match *rule {
        DetectionRule::Segmentation { min_probability, .. } if min_probability > 0.0 => (2, min_probability),
        DetectionRule::Segmentation {
            min_pixels, slice_context, ..
        } => (usize::from(slice_context), min_pixels as f64),
        DetectionRule::Classifier { threshold, require_mask } => (if require_mask { 3 } else { 5 }, threshold),
        DetectionRule::Combined { threshold, require_mask } => (if require_mask { 4 } else { 6 }, threshold),
    }
}

/// The decision threshold `train detect` stored in a classifier's `model.json` (under
/// `extras`), if any.
fn stored_threshold(dir: &Path) -> Option<f64> {
    let card: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join("model.json")).ok()?).ok()?;
    card["extras"]["threshold"].as_f64().filter(|t| t.is_finite())
}

fn detect(a: &DetectArgs) -> Result<()> {
    let c = &a.common;
    if a.val_fold == Some(c.fold) {
        bail!("--val-fold must differ from --fold: thresholds are never chosen on the evaluated fold");
    }
    let Prepared { ds, bundle } = prepare(c, true)?;
    // A classifier given on the command line, else the bundle's own (when its rule uses one);
    // loaded before the fold is segmented, so that a mistyped path fails at once.
    let loaded = match &a.classifier {
        Some(dir) => Some(tumorscan_predict::models::load_classifier_dir(dir, &bundle.device)?),
        None => None,
    };
    let used: Vec<usize> = std::iter::once(c.fold).chain(a.val_fold).collect();
    let rows = read_checked_folds(&ds, &c.folds, &used)?;
    let test = fold_patients(&ds, &rows, &c.folds, c.fold)?;
    let model = format!("the segmentation model (--model {})", c.model.display());
    let classifier = |dir: &Path| format!("the classifier (--classifier {})", dir.display());
    let evaluated = format!("the evaluated fold {}", c.fold);
    let test_advice = "evaluate a fold it held out (its test fold)";
    let mut held_out = check_held_out(&c.model, &bundle.manifest.ensemble, &test, &model, &evaluated, test_advice)?;
    if let Some(dir) = &a.classifier {
        // The classifier has its own training split: a fold it was trained on is refused too.
        let note = check_held_out(dir, &[], &test, &classifier(dir), &evaluated, test_advice)?;
        held_out += &format!("\n\nClassifier: {note}");
    }
    held_out += &input_note(c);
    let val = match a.val_fold {
        Some(v) => {
            let val = fold_patients(&ds, &rows, &c.folds, v)?;
            // Thresholds chosen on patients a model trained on would flatter it (e.g. a final
            // fit on train + validation): refused like a trained test fold.
            let trained = || format!("--val-fold {v}: thresholds cannot be chosen on patients a model was trained on");
            let fold = format!("validation fold {v}");
            let advice = "choose a --val-fold it held out";
            check_held_out(&c.model, &bundle.manifest.ensemble, &val, &model, &fold, advice).with_context(trained)?;
            if let Some(dir) = &a.classifier {
                check_held_out(dir, &[], &val, &classifier(dir), &fold, advice).with_context(trained)?;
            }
            val
        }
        None => Vec::new(),
    };
    let tta = bundle.manifest.postprocess.flip_tta;
    let pp = bundle.manifest.postprocess.clone();
    let (mut test_maps, mut val_maps) = (probabilities(&bundle, &test, tta), probabilities(&bundle, &val, tta));
    smooth_each(&mut test_maps, pp.slice_smoothing);
    smooth_each(&mut val_maps, pp.slice_smoothing);
    let (tv, vv) = (slice_views(&test_maps, &pp), slice_views(&val_maps, &pp));
    let seg = |px: u64, p: &[f32], _: usize| segmentation_score(p, px, pp.threshold);
    let mut cands = vec![
        pixel_candidate(
            "segmentation: cleaned-mask tumour pixels (scored by largest pixel probability)",
            false,
            &vv,
            &tv,
        ),
        pixel_candidate(
            "segmentation: cleaned-mask tumour pixels, ranked with slice context",
            true,
            &vv,
            &tv,
        ),
        Candidate {
            name: "segmentation: largest pixel probability".into(),
            val: scored(&vv, &seg),
            test: scored(&tv, &seg),
            default_threshold: 0.5,
            min_threshold: f64::from(pp.threshold),
            rule: |t| DetectionRule::Segmentation {
                min_pixels: 1,
                min_probability: t,
                slice_context: false,
            },
            reported: Reported::Own,
        },
    ];
    if let Some(classifier) = loaded.as_ref().or(bundle.classifier.as_ref()) {
        // Without --val-fold the classifier alone is scored at the threshold it was stored with
        // (chosen on its own validation fold by `train detect`), not at 0.5.
        let dir = a.classifier.clone().unwrap_or_else(|| c.model.join("detect"));
        let stored = stored_threshold(&dir).unwrap_or(0.5);
        let (cv, ct) = (
            classifier_scores(classifier, &bundle.device, &val)?,
            classifier_scores(classifier, &bundle.device, &test)?,
        );
        let cls = |c: &[Scored], mask: bool| {
            let c = c.to_vec();
            move |px: u64, _: &[f32], k: usize| classifier_score(c[k].score, px, mask)
        };
        let both = |c: &[Scored], mask: bool| {
            let c = c.to_vec();
            move |px: u64, p: &[f32], k: usize| combined_score(c[k].score, segmentation_score(p, px, pp.threshold), px, mask)
        };
        // With and without the requirement that a tumour call has an outline.
        cands.push(Candidate {
            name: "classifier".into(),
            val: scored(&vv, &cls(&cv, true)),
            test: scored(&tv, &cls(&ct, true)),
            default_threshold: stored,
            min_threshold: 0.0,
            rule: |t| DetectionRule::Classifier {
                threshold: t,
                require_mask: true,
            },
            reported: Reported::Own,
        });
        cands.push(Candidate {
            name: "classifier + segmentation (mean probability)".into(),
            val: scored(&vv, &both(&cv, true)),
            test: scored(&tv, &both(&ct, true)),
            default_threshold: 0.5,
            min_threshold: 0.0,
            rule: |t| DetectionRule::Combined {
                threshold: t,
                require_mask: true,
            },
            reported: Reported::Own,
        });
        cands.push(Candidate {
            name: "classifier, no mask needed".into(),
            val: scored(&vv, &cls(&cv, false)),
            test: scored(&tv, &cls(&ct, false)),
            default_threshold: stored,
            min_threshold: 0.0,
            rule: |t| DetectionRule::Classifier {
                threshold: t,
                require_mask: false,
            },
            reported: Reported::Own,
        });
        cands.push(Candidate {
            name: "classifier + segmentation (mean probability), no mask needed".into(),
            val: scored(&vv, &both(&cv, false)),
            test: scored(&tv, &both(&ct, false)),
            default_threshold: 0.5,
            min_threshold: 0.0,
            rule: |t| DetectionRule::Combined {
                threshold: t,
                require_mask: false,
            },
            reported: Reported::Own,
        });
    }
    let mut md = format!(
        "## Detection, fold {} ({} patients)\n\nModel: {}\n\n{held_out}\n\nThresholds: {}\n\n",
        c.fold,
        test.len(),
        bundle.identity(),
        if val.is_empty() {
            "no --val-fold: the bundle's rule for its own candidate, the classifier's stored threshold for the classifier alone, 0.5 for the others".to_string()
        } else {
            format!("chosen on validation fold {} to maximise slice accuracy", a.val_fold.unwrap_or(0))
        }
    );
    md.push_str("| candidate | threshold | val accuracy | val ROC-AUC | test accuracy [95% CI] | test ROC-AUC [95% CI] | sensitivity | specificity | tumour patients found (flagged) |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- |\n");
    let mut reports: Vec<Outcome> = Vec::new();
    let mut test_scores: Vec<Vec<f64>> = Vec::new();
    let (own, own_threshold) = bundle_candidate(&bundle.manifest.detection);
    for (i, cand) in cands.iter().enumerate() {
        let thr = if cand.val.is_empty() {
            // The pixel-rule candidates (with and without slice context) share the bundle's
            // pixel count, so that they differ only in their ranking.
            let pixel_rule = |c: &Candidate| c.reported != Reported::Own;
            if i == own || (pixel_rule(cand) && cands.get(own).is_some_and(pixel_rule)) {
                own_threshold
            } else {
                cand.default_threshold
            }
        } else {
            best_accuracy_threshold(&cand.val).max(cand.min_threshold)
        };
        // The pixel rule is scored as `predict` reports it: same decisions at the pixel
        // threshold, ranked by probability.
        let (val_items, test_items, at) = if cand.reported != Reported::Own {
            let min_px = thr.ceil().max(1.0) as u64;
            let context = cand.reported == Reported::PixelRuleInContext;
            let rescore = |views: &[SliceView]| pixel_rule_scored(views, min_px, pp.threshold, context);
            (rescore(&vv), rescore(&tv), f64::from(pp.threshold))
        } else {
            (cand.val.clone(), cand.test.clone(), thr)
        };
        let (val_acc, val_auc) = if val_items.is_empty() {
            (f64::NAN, f64::NAN)
        } else {
            let v = evaluate_detection(&val_items, at, c.report.seed);
            (v.accuracy.value, v.roc_auc.value)
        };
        let r = evaluate_detection(&test_items, at, c.report.seed);
        test_scores.push(test_items.iter().map(|s| s.score).collect());
        // No --val-fold: nothing was measured on validation (a dash, not NaN).
        let val = |v: f64| if v.is_nan() { "-".to_string() } else { format!("{v:.4}") };
        md.push_str(&format!(
            "| {} | {:.4} | {} | {} | {} | {} | {:.3} | {:.3} | {} ({}) of {} |\n",
            cand.name,
            thr,
            val(val_acc),
            val(val_auc),
            r.accuracy,
            r.roc_auc,
            r.recall.value,
            r.specificity.value,
            r.tumor_patients_found,
            r.tumor_patients_detected,
            r.tumor_patients
        ));
        reports.push(Outcome {
            name: cand.name.clone(),
            val_accuracy: val_acc,
            val_auc,
            report: r,
            rule: (cand.rule)(thr),
        });
    }
    // The candidate shipped is the best on validation: accuracy, then ROC-AUC, then the listed
    // order; never picked on test. Without a validation fold: the bundle's own rule.
    let key = |o: &Outcome| (o.val_accuracy, o.val_auc);
    let best = if val.is_empty() {
        own.min(reports.len() - 1)
    } else {
        reports
            .iter()
            .enumerate()
            .max_by(|x, y| {
                key(x.1)
                    .partial_cmp(&key(y.1))
                    .unwrap_or(std::cmp::Ordering::Equal)
                    .then(y.0.cmp(&x.0))
            })
            .map(|(i, _)| i)
            .unwrap_or(0)
    };
    let Outcome { name, report: r, rule, .. } = &reports[best];
    md.push_str(&format!(
        "\n### {} {name}\n\nBundle rule: `{}`\n\n```\n{}```\n",
        if val.is_empty() {
            "The bundle's rule:"
        } else {
            "Best on validation:"
        },
        serde_json::to_string(rule)?,
        r.text()
    ));
    let cm = r.confusion;
    // With one class only, the other class's rates are 0 / 0: printed as 0 (scikit-learn's
    // zero_division=0), which would read as a measured failure.
    if cm.tp + cm.fn_ == 0 || cm.tn + cm.fp == 0 {
        let (none, undefined) = if cm.tp + cm.fn_ == 0 {
            ("tumour", "sensitivity and ROC-AUC")
        } else {
            ("tumour-free", "specificity and ROC-AUC")
        };
        md.push_str(&format!(
            "\nThis fold has no {none} slices: {undefined} are undefined here (0 / 0, printed as 0 or NaN), not measured.\n"
        ));
    }
    md.push_str("\nMisclassified slices (patient, slice, score, truth tumour pixels):\n\n");
    for m in &r.misclassified {
        md.push_str(&format!(
            "- {} #{}: score {:.4}, truth {} ({} px)\n",
            m.patient,
            m.slice,
            m.score,
            if m.truth { "tumour" } else { "no tumour" },
            m.truth_pixels
        ));
    }
    md.push('\n');
    md.push_str(&r.calibration.markdown());
    c.report.create()?;
    reliability_png(
        &c.report.out.join("calibration.png"),
        &format!("Reliability of the reported score, fold {}", c.fold),
        &r.calibration.bins,
    )?;
    // Each curve names its area; the rule the bundle ships with is marked.
    let labels: Vec<String> = reports
        .iter()
        .map(|o| {
            let shipped = if &o.name == name { ", the reported rule" } else { "" };
            format!("{} (AUC {:.3}{shipped})", o.name, o.report.roc_auc.value)
        })
        .collect();
    let series: Vec<Series> = reports
        .iter()
        .zip(&labels)
        .map(|(o, label)| Series {
            label,
            points: o.report.roc.clone(),
        })
        .collect();
    line_chart(
        &c.report.out.join("roc.png"),
        &format!("ROC, fold {} ({} slices)", c.fold, r.slices),
        "false-positive rate",
        "true-positive rate",
        &series,
        Some((0.0, 1.0)),
        LegendAt::LowerRight,
    )?;
    let which = if val.is_empty() {
        "the bundle's rule"
    } else {
        "best on validation"
    };
    confusion_png(
        &c.report.out.join("confusion.png"),
        ["no tumour", "tumour"],
        [[cm.tn, cm.fp], [cm.fn_, cm.tp]],
        &format!(
            "{which}, score >= {:.2}; fold {}, {} slices\nsensitivity {:.3}, specificity {:.3}",
            r.threshold, c.fold, r.slices, r.recall.value, r.specificity.value
        ),
    )?;
    let json = serde_json::json!({"fold": c.fold, "val_fold": a.val_fold, "model": bundle.identity(), "held_out": held_out, "patients": test.iter().map(|p| &p.id).collect::<Vec<_>>(), "best_on_validation": name, "bundle_rule": rule,
        "candidates": reports.iter().map(|o| serde_json::json!({"name": o.name, "val_accuracy": o.val_accuracy, "val_roc_auc": o.val_auc, "rule": o.rule, "report": o.report})).collect::<Vec<_>>()});
    std::fs::write(c.report.out.join("detection.json"), serde_json::to_string_pretty(&json)?)?;
    std::fs::write(c.report.out.join("detection.md"), &md)?;
    write_slice_table(&c.report.out.join("slices.csv"), &tv, &reports, &test_scores)?;
    println!("{md}");
    println!(
        "wrote {0}/detection.json, {0}/detection.md, {0}/slices.csv, {0}/roc.png, {0}/confusion.png, {0}/calibration.png",
        c.report.out.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `train detect` stores its threshold under `extras` (the shipped classifier's: 0.7435).
    #[test]
    fn a_classifier_is_scored_at_its_stored_threshold() {
        let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/detect");
        let t = stored_threshold(&shipped).expect("models/detect/model.json has a threshold");
        assert!((t - 0.7435).abs() < 1e-4, "{t}");
        assert_eq!(stored_threshold(Path::new("/nonexistent")), None);
    }
}
