//! `tumorscan predict` and `tumorscan merge`.

use anyhow::{bail, Context, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use std::path::{Path, PathBuf};
use std::time::Instant;
use tumorscan_model::{BackendKind, ComputeDevice};
use tumorscan_predict::engine::PredictOptions;
use tumorscan_predict::input::{collect_inputs, collect_sequences, Companions, Failure, Inputs, Volume};
use tumorscan_predict::output::{
    check_out_dir, create_out_dir, summarize_truth, summarize_volume, write_json, write_predictions_csv, write_volume_images, RunSummary,
    PREDICTION_COLUMNS,
};
use tumorscan_predict::{predict_volume, ModelBundle};

/// Exit code when some inputs failed and others were written.
pub const PARTIAL_FAILURE: i32 = 2;

/// `predict` arguments.
#[derive(Args)]
#[command(after_help = "Examples:
  tumorscan predict samples/ --out results/          # then open results/report.html
  tumorscan predict scan_12.tif scan_13.tif --out r/ --json
  tumorscan predict kaggle_3m/ --out part3/ --shard 3/8   # one of 8 machines
  tumorscan predict flair.nii.gz --out r/             # writes r/flair_mask.nii.gz
  tumorscan predict flair.nii.gz --pre t1.nii.gz --post t1c.nii.gz --out r/   # sequences stored apart
  tumorscan predict flair.nii.gz --truth seg.nii.gz --out r/   # scored: Dice in r/summary.json
  tumorscan predict BraTS2021_Training_Data/ --out r/  # each case's sequences combined, scored against its _seg
  tumorscan predict MR_FLAIR/ --out r/                # a DICOM series: writes r/MR_FLAIR_seg.dcm

Outputs: predictions.csv (file, volume, slice, tumor_probability, has_tumor, tumor_pixels,
tumor_area_mm2, bbox, width, height, notes, mask_file), masks/<stem>_mask.png (0/255, input size),
overlays/<stem>.png, <volume>_mask.nii.gz for NIfTI inputs, <volume>_seg.dcm (DICOM Segmentation
over the series, for viewers and PACS) for DICOM series, report.html, summary.json. Names
that would repeat get -2, -3, ... (two flair.nii.gz: flair_mask.nii.gz, flair-2_mask.nii.gz).
Folders: symbolic link loops and earlier predict outputs are skipped (noted on stderr).
Exit status: 0 all inputs done, 1 nothing done (--out is not created), 2 some inputs failed (listed).")]
pub struct PredictArgs {
    /// Slice files (.tif/.tiff/.png/.jpg), folders (patient folder, kaggle_3m root, DICOM series of .dcm files, BraTS-style cases of <case>_flair|t1|t1ce|seg.nii.gz), or NIfTI volumes (.nii/.nii.gz).
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
    /// Output folder (must be new or empty unless --force).
    #[arg(long)]
    out: PathBuf,
    /// Pre-contrast T1 of the same patient when it is stored apart from FLAIR (a NIfTI file, a
    /// DICOM series folder or a folder of slices), on FLAIR's voxel grid (co-registered; nothing
    /// is resampled). The one input is then the FLAIR volume. A sequence not given gets FLAIR in
    /// its place, which costs accuracy: the built-in model's mean patient Dice on test fold 0 is
    /// 0.802 with both, 0.794 with --pre alone, 0.764 on FLAIR alone.
    #[arg(long)]
    pre: Option<PathBuf>,
    /// Post-contrast T1 stored apart from FLAIR, as --pre. Give it with --pre: without it the
    /// built-in model scored 0.759, no better than FLAIR alone.
    #[arg(long)]
    post: Option<PathBuf>,
    /// Ground truth of the one NIfTI input, as a NIfTI mask volume on its voxel grid (non-zero
    /// voxels are tumour, so a BraTS label map gives its whole tumour): each volume is then
    /// scored against it, as with `_mask` files beside slices (Dice in summary.json and the
    /// report).
    #[arg(long)]
    truth: Option<PathBuf>,
    /// Model folder (bundle, or a training run's best/); default: the built-in model.
    #[arg(long)]
    model: Option<PathBuf>,
    /// Call a slice tumour when its tumor_probability reaches this, in [0, 1] (default: the model's
    /// own rule; for the built-in model a slice is tumour exactly when its score is 0.5 or more,
    /// i.e. it has an outline). Lower finds more tumour slices, some without an outline (the
    /// slices beside an outlined one score 0.25-0.5); higher keeps only the surer ones.
    #[arg(long, value_parser = parse_threshold)]
    threshold: Option<f64>,
    /// Write into an existing non-empty --out (overwrites tumorscan's own files there, deletes nothing).
    #[arg(long)]
    force: bool,
    /// Print the summary as JSON on stdout.
    #[arg(long)]
    json: bool,
    /// Process shard I of N (0-based, by patient/volume), e.g. --shard $JOB_COMPLETION_INDEX/8.
    #[arg(long)]
    shard: Option<String>,
    /// Batch size for inference (at least 1).
    #[arg(long, default_value_t = 16, value_parser = parse_batch_size)]
    batch_size: usize,
    /// Compute device: cpu, cuda, cuda:N.
    #[arg(long, default_value = "cpu")]
    device: BackendKind,
}

/// Parse a probability in [0, 1].
fn parse_threshold(s: &str) -> std::result::Result<f64, String> {
    match s.parse::<f64>() {
        Ok(t) if (0.0..=1.0).contains(&t) => Ok(t),
        _ => Err(format!("'{s}' is not a probability between 0 and 1")),
    }
}

/// Parse a batch size: a whole number of at least 1.
fn parse_batch_size(s: &str) -> std::result::Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!("'{s}' is not a batch size: a whole number of at least 1")),
    }
}

/// Parse `I/N`.
pub fn parse_shard(s: &str) -> Result<(u64, u64)> {
    let (i, n) = s
        .split_once('/')
        .with_context(|| format!("--shard '{s}': expected I/N, e.g. 0/4"))?;
    let (i, n): (u64, u64) = (
        i.trim().parse().with_context(|| format!("--shard '{s}': I is not a number"))?,
        n.trim().parse().with_context(|| format!("--shard '{s}': N is not a number"))?,
    );
    if n == 0 || i >= n {
        bail!("--shard '{s}': need 0 <= I < N");
    }
    Ok((i, n))
}

/// Stable shard of a path: FNV-1a of it, so every machine agrees.
fn shard_of_path(path: &str, n: u64) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in path.bytes() {
        h = (h ^ b as u64).wrapping_mul(0x100_0000_01b3);
    }
    h % n
}

/// Stable shard of a volume: by its source path.
pub fn shard_of(v: &Volume, n: u64) -> u64 {
    shard_of_path(&v.source.to_string_lossy(), n)
}

/// The one input completed by `--pre`, `--post` and `--truth` into one volume.
fn one_patient_inputs(a: &PredictArgs) -> Result<Inputs> {
    let [flair] = a.inputs.as_slice() else {
        bail!(
            "--pre, --post and --truth complete one volume: give exactly one input (got {})",
            a.inputs.len()
        );
    };
    let with = Companions {
        pre: a.pre.as_deref(),
        post: a.post.as_deref(),
        truth: a.truth.as_deref(),
    };
    let (volume, notes) = collect_sequences(flair, with, Some(&a.out)).map_err(anyhow::Error::msg)?;
    if a.pre.is_none() && a.post.is_some() {
        // The figures are the built-in model's; any model trained with --missing-sequences
        // shares the reason.
        let measured = if a.model.is_none() {
            "; on test fold 0 the built-in model's mean patient Dice was 0.759 this way, 0.764 on FLAIR alone, 0.794 with --pre alone and 0.802 with both (models/experiments/sequences-apart/)"
        } else {
            ""
        };
        eprintln!("note: post-contrast without pre-contrast: training (--missing-sequences) imitates a missing post-contrast or both, never this{measured}");
    }
    Ok(Inputs {
        volumes: vec![volume],
        failures: Vec::new(),
        notes,
    })
}

/// Run `predict`; returns the process exit code.
pub fn run(a: PredictArgs) -> Result<i32> {
    let t0 = Instant::now();
    // Everything that can refuse the run is checked before --out is created, so a failed run
    // leaves nothing behind to block the corrected one.
    let shard = a.shard.as_deref().map(parse_shard).transpose()?;
    check_out_dir(&a.out, a.force)?;
    let device = ComputeDevice(a.device).inference().map_err(anyhow::Error::msg)?;
    let bundle = ModelBundle::open(a.model.as_deref(), &device)?;
    let Inputs {
        mut volumes,
        mut failures,
        notes,
    } = if a.pre.is_some() || a.post.is_some() || a.truth.is_some() {
        one_patient_inputs(&a)?
    } else {
        collect_inputs(&a.inputs, Some(&a.out))
    };
    for n in &notes {
        eprintln!("note: {n}");
    }
    // Decided over all inputs: a shard whose inputs all went to other shards did nothing wrong.
    let nothing_read = (volumes.is_empty() && !failures.is_empty()).then_some(failures.len());
    if let Some((i, n)) = shard {
        let all = volumes.len();
        volumes.retain(|v| shard_of(v, n) == i);
        // Each failure is reported by one shard, as each volume is predicted by one.
        failures.retain(|f| shard_of_path(&f.path, n) == i);
        if volumes.is_empty() && all > 0 {
            eprintln!("note: shard {i}/{n} holds none of the {all} volume(s); predictions.csv will have its header only");
        }
    }
    for f in &failures {
        eprintln!("skipped {}: {}", f.path, f.error);
    }
    if let Some(failed) = nothing_read {
        bail!("no input could be read ({failed} failed)");
    }
    let created = create_out_dir(&a.out)?;
    let result = predict_into(&a, &bundle, &volumes, failures, t0);
    if result.is_err() {
        // Only the folders this run made, and only while empty: nothing that was there goes.
        created.remove_if_empty();
    }
    result
}

/// Predict `volumes` and write every output into the (created) `--out`.
fn predict_into(a: &PredictArgs, bundle: &ModelBundle, volumes: &[Volume], failures: Vec<Failure>, t0: Instant) -> Result<i32> {
    let total: usize = volumes.iter().map(|v| v.slices.len()).sum();
    let bar = ProgressBar::new(total as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} slices {msg} ({elapsed}<{eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let opts = PredictOptions {
        threshold: a.threshold,
        keep_masks_of_negatives: false,
        batch_size: a.batch_size,
    };
    let seg_source = bundle.segmentation_source();
    let mut all = Vec::new();
    let mut summaries = Vec::new();
    // (pixels, index in `all`, overlay PNG) of the slices called tumour, and of the slices whose
    // ground truth (a `_mask` file) shows tumour that was not called.
    let (mut panels, mut missed, mut missed_total) = (Vec::new(), Vec::new(), 0);
    for v in volumes {
        bar.set_message(v.id.clone());
        let preds = predict_volume(bundle, v, &opts);
        let written = write_volume_images(&a.out, v, &preds, &seg_source)?;
        let mut summary = summarize_volume(v, &preds);
        for n in written.notes {
            bar.suspend(|| eprintln!("note: {}: {n}", v.id));
            summary.notes.push(n);
        }
        summaries.push(summary);
        for ((i, p), png) in preds.iter().enumerate().zip(written.overlays) {
            let truth = v.slices[i]
                .truth
                .as_deref()
                .map_or(0, |t| t.iter().filter(|&&x| x != 0).count() as u64);
            if p.has_tumor == 1 {
                panels.push((p.tumor_pixels, all.len() + i, png));
            } else if truth > 0 {
                missed_total += 1;
                missed.push((truth, all.len() + i, png));
            }
        }
        // Keep only the largest tumours' panels in memory.
        for list in [&mut panels, &mut missed] {
            list.sort_by_key(|p| std::cmp::Reverse(p.0));
            list.truncate(tumorscan_predict::report::MAX_PANELS);
        }
        bar.inc(v.slices.len() as u64);
        all.extend(preds);
    }
    bar.finish_and_clear();
    write_predictions_csv(&a.out.join("predictions.csv"), &all)?;
    let summary = RunSummary {
        ground_truth: summarize_truth(&summaries),
        model: bundle.identity(),
        slices: all.len(),
        tumor_slices: all.iter().filter(|p| p.has_tumor == 1).count(),
        volumes: summaries,
        failures,
        shard: a.shard.clone(),
        threshold: a.threshold,
        seconds: t0.elapsed().as_secs_f64(),
    };
    write_json(&a.out.join("summary.json"), &summary)?;
    // The largest tumours were kept; show them in volume and slice order.
    panels.sort_by_key(|(_, i, _)| *i);
    missed.sort_by_key(|(_, i, _)| *i);
    let panel_refs: Vec<_> = panels.iter().map(|(_, i, png)| (&all[*i], png.clone())).collect();
    let missed = tumorscan_predict::report::Missed {
        shown: missed.iter().map(|(px, i, png)| (&all[*i], *px, png.clone())).collect(),
        total: missed_total,
    };
    let html = tumorscan_predict::report::render(&summary, bundle, &panel_refs, &missed);
    tumorscan_data::table::write_atomic(&a.out.join("report.html"), html.as_bytes())?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        println!(
            "{} slices in {} volume(s), {} with tumour, {:.1} s",
            summary.slices,
            summary.volumes.len(),
            summary.tumor_slices,
            summary.seconds
        );
        for v in &summary.volumes {
            let truth = v.ground_truth.as_ref().map_or(String::new(), |t| {
                format!(
                    "; against its ground truth Dice {:.3}, {} of {} tumour slices missed, {} false",
                    t.dice, t.missed_tumor_slices, t.truth_tumor_slices, t.false_tumor_slices
                )
            });
            println!(
                "  {:<32} {:>3}/{:<3} slices with tumour, {} px{truth}",
                v.volume, v.tumor_slices, v.slices, v.tumor_pixels
            );
        }
        if let Some(t) = summary.ground_truth.as_ref().filter(|t| t.volumes > 1) {
            println!(
                "against the ground truth, {} volumes: mean Dice {:.3}, slice accuracy {:.3}",
                t.volumes, t.mean_dice, t.slice_accuracy
            );
        }
        println!(
            "open {}; table {}; masks in {}",
            a.out.join("report.html").display(),
            a.out.join("predictions.csv").display(),
            a.out.join("masks").display()
        );
    }
    if !summary.failures.is_empty() {
        eprintln!("{} input(s) failed (listed above and in summary.json)", summary.failures.len());
        return Ok(PARTIAL_FAILURE);
    }
    Ok(0)
}

/// `merge` arguments.
#[derive(Args)]
#[command(after_help = "Example:\n  tumorscan merge shard-*/predictions.csv --out all.csv")]
pub struct MergeArgs {
    /// predictions.csv files of the shards.
    #[arg(required = true)]
    csvs: Vec<PathBuf>,
    /// Merged CSV (rows by volume and slice number; mask_file absolute, as it pointed into
    /// each shard's folder).
    #[arg(long)]
    out: PathBuf,
    /// Overwrite --out.
    #[arg(long)]
    force: bool,
}

/// Concatenate shard CSVs (predict's header; a shard may have no rows) in a single run's order
/// (by volume, then slice number), with each `mask_file` made absolute (it was relative to its
/// shard's folder); refuses duplicates and files that are not predict's `predictions.csv`.
pub fn merge(a: MergeArgs) -> Result<i32> {
    if a.out.is_dir() {
        bail!(
            "{} is a folder; --out names the merged CSV file, e.g. {}",
            a.out.display(),
            a.out.join("all.csv").display()
        );
    }
    if a.out.exists() && !a.force {
        bail!("{} exists; pass --force to overwrite", a.out.display());
    }
    // Files written before the mask_file column was added still merge (with each other).
    let legacy = &PREDICTION_COLUMNS[..PREDICTION_COLUMNS.len() - 1];
    let mut header: Option<csv::StringRecord> = None;
    let mut rows: Vec<csv::StringRecord> = Vec::new();
    for p in &a.csvs {
        let mut r = csv::Reader::from_path(p).with_context(|| format!("reading {}", p.display()))?;
        let h = r.headers().with_context(|| format!("{}: malformed CSV", p.display()))?.clone();
        if h.is_empty() {
            bail!("{}: empty file, not a predictions.csv written by `tumorscan predict`", p.display());
        }
        let has_columns = |cols: &[&str]| h.iter().eq(cols.iter().copied());
        if !has_columns(&PREDICTION_COLUMNS) && !has_columns(legacy) {
            bail!(
                "{}: not a predictions.csv written by `tumorscan predict` (its columns are {}, not {})",
                p.display(),
                h.iter().take(5).collect::<Vec<_>>().join(","),
                PREDICTION_COLUMNS.join(",")
            );
        }
        match &header {
            None => header = Some(h),
            Some(h0) if *h0 != h => bail!("{}: columns differ from {}", p.display(), a.csvs[0].display()),
            _ => {}
        }
        // mask_file is relative to its shard's folder; from the merged file it must still lead
        // to the mask, wherever that file goes: made absolute.
        let mask_col = header.as_ref().and_then(|h| h.iter().position(|c| c == "mask_file"));
        let shard_dir = p.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let shard_dir = shard_dir.canonicalize().unwrap_or_else(|_| shard_dir.to_path_buf());
        for rec in r.records() {
            let rec = rec.with_context(|| format!("{}: malformed row", p.display()))?;
            let rec = match mask_col.and_then(|i| rec.get(i).map(|m| (i, m))) {
                Some((i, m)) if !m.is_empty() && Path::new(m).is_relative() => rec
                    .iter()
                    .enumerate()
                    .map(|(k, v)| {
                        if k == i {
                            shard_dir.join(m).display().to_string()
                        } else {
                            v.to_string()
                        }
                    })
                    .collect(),
                _ => rec,
            };
            rows.push(rec);
        }
    }
    let mut files = std::collections::HashSet::new();
    if let Some(dup) = rows.iter().find(|r| !files.insert(r.get(0).unwrap_or_default().to_string())) {
        bail!("{} appears in more than one shard", dup.get(0).unwrap_or_default());
    }
    // As one run lists them: volume by volume, slices in number order (not 1, 10, 11, 2).
    let key = |r: &csv::StringRecord| {
        let slice: u64 = r.get(2).and_then(|s| s.parse().ok()).unwrap_or(u64::MAX);
        (
            r.get(1).unwrap_or_default().to_string(),
            slice,
            r.get(0).unwrap_or_default().to_string(),
        )
    };
    rows.sort_by_cached_key(key);
    let mut w = csv::Writer::from_writer(Vec::new());
    if let Some(h) = &header {
        w.write_record(h)?;
    }
    for r in &rows {
        w.write_record(r)?;
    }
    tumorscan_data::table::write_atomic(&a.out, &w.into_inner().map_err(|e| anyhow::anyhow!("{e}"))?)
        .with_context(|| format!("writing {}", a.out.display()))?;
    println!("merged {} rows from {} files into {}", rows.len(), a.csvs.len(), a.out.display());
    Ok(0)
}
