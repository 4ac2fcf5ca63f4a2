//! `tumorscan evaluate compare`: two models' per-patient Dice on the same patients, side by side,
//! with the paired difference's interval and permutation p-value; and their slice calls, paired
//! slice by slice.

use crate::evaluate_cmd::ReportOut;
use crate::pool_cmd::{input_words, read_results, results_input};
use anyhow::{bail, Result};
use clap::Args;
use std::collections::BTreeSet;
use std::path::PathBuf;
use tumorscan_evaluate::compare::{compare_detection, compare_patients, Figure, FoldCalls};
use tumorscan_evaluate::pooled::{is_verified, FoldDetection, FoldSegmentation};

/// `evaluate compare` arguments.
#[derive(Args)]
pub struct CompareArgs {
    /// The baseline's `segmentation.json` and/or `detection.json` files of `evaluate segment|detect`
    /// (or their folders), one per fold.
    #[arg(long, num_args = 1.., required = true)]
    baseline: Vec<PathBuf>,
    /// The candidate's, on the same patients (and the same kinds of result).
    #[arg(long, num_args = 1.., required = true)]
    candidate: Vec<PathBuf>,
    /// Where compare.md and compare.json go.
    #[command(flatten)]
    report: ReportOut,
}

/// One side's results: per-patient Dice, slice calls, the names of its models, and whether
/// every fold was a verified held-out test fold.
struct Side {
    figures: Vec<Figure>,
    calls: Vec<FoldCalls>,
    models: String,
    verified: bool,
    /// How the input was altered (`--missing-sequence`), "" for the scans as they are.
    input: String,
}

fn side(inputs: &[PathBuf], flag: &str) -> Result<Side> {
    let (seg, det) = read_results(inputs)?;
    if seg.is_empty() && det.is_empty() {
        bail!("{flag}: no segmentation.json or detection.json among the inputs");
    }
    let figures = seg
        .iter()
        .flat_map(|f: &FoldSegmentation| f.patients.iter().map(move |(p, d)| (p.clone(), f.fold, *d)))
        .collect();
    let calls = det
        .iter()
        .map(|f: &FoldDetection| {
            let c = &f.confusion;
            // Pairing reads the listed slices; a list that disagrees with the counts would pair silently wrong.
            if f.wrong.len() as u64 != c.fp + c.fn_ {
                bail!(
                    "{flag}: {} lists {} misclassified slices but counts {} wrong calls; \
                     it cannot be paired slice by slice (rerun `evaluate detect`)",
                    f.source,
                    f.wrong.len(),
                    c.fp + c.fn_
                );
            }
            Ok(FoldCalls {
                fold: f.fold,
                slices: c.tp + c.fp + c.tn + c.fn_,
                tumor_slices: c.tp + c.fn_,
                wrong: f.wrong.clone(),
                patients: f.patients.clone(),
            })
        })
        .collect::<Result<_>>()?;
    let mut models: Vec<String> = Vec::new();
    for name in seg
        .iter()
        .map(|f| (&f.model, f.fold))
        .chain(det.iter().map(|f| (&f.model, f.fold)))
        .map(|(m, fold)| format!("{m} (fold {fold})"))
    {
        if !models.contains(&name) {
            models.push(name);
        }
    }
    let verified = seg.iter().all(|f| is_verified(&f.held_out)) && det.iter().all(|f| is_verified(&f.held_out));
    let input = results_input(&seg, &det);
    Ok(Side {
        figures,
        calls,
        models: models.join("; "),
        verified,
        input,
    })
}

/// The result files an input names (the file, or the results in a folder), resolved so that
/// two spellings of one file compare equal.
fn result_files(inputs: &[PathBuf]) -> BTreeSet<PathBuf> {
    inputs
        .iter()
        .flat_map(|input| {
            if input.is_dir() {
                vec![input.join("segmentation.json"), input.join("detection.json")]
            } else {
                vec![input.clone()]
            }
        })
        .filter_map(|f| f.canonicalize().ok())
        .collect()
}

/// Compare the two sides and write the report.
pub fn compare(a: &CompareArgs) -> Result<()> {
    // A result paired with itself differs by nothing: a mistaken command, not a finding.
    let (base_files, cand_files) = (result_files(&a.baseline), result_files(&a.candidate));
    if let Some(f) = base_files.intersection(&cand_files).next() {
        bail!(
            "--baseline and --candidate both hold {}: a result compared with itself differs by nothing; \
             give each side its own model's results",
            f.display()
        );
    }
    let (base, cand) = (side(&a.baseline, "--baseline")?, side(&a.candidate, "--candidate")?);
    if base.input != cand.input {
        bail!(
            "the two sides were evaluated on different inputs: --baseline {}, --candidate {}",
            input_words(&base.input),
            input_words(&cand.input)
        );
    }
    let kinds = |s: &Side| (!s.figures.is_empty(), !s.calls.is_empty());
    let words = |s: &Side| match kinds(s) {
        (true, true) => "segmentation and detection",
        (true, false) => "segmentation only",
        (false, true) => "detection only",
        (false, false) => "neither",
    };
    if kinds(&base) != kinds(&cand) {
        bail!(
            "the two sides hold different kinds of result: --baseline {}, --candidate {}; compare an `evaluate segment` result with another, or an `evaluate detect` one with another",
            words(&base),
            words(&cand)
        );
    }
    let seg = (!base.figures.is_empty())
        .then(|| compare_patients(&base.figures, &cand.figures, a.report.seed))
        .transpose()?;
    let det = (!base.calls.is_empty())
        .then(|| compare_detection(&base.calls, &cand.calls))
        .transpose()?;
    let verified = base.verified && cand.verified;
    let folds_note = if verified {
        "Every fold on both sides is a verified held-out test fold."
    } else {
        "NOT a test result: some folds were not verified held-out test folds (validation folds, used for model selection)."
    };
    // Both sides on an altered input (robustness figures) read like a plain comparison otherwise.
    let folds_note = match base.input.as_str() {
        "" => folds_note.to_string(),
        altered => format!("{folds_note} {altered}"),
    };
    let folds_note = folds_note.as_str();
    let md = [
        seg.as_ref().map(|c| c.markdown(&base.models, &cand.models, folds_note)),
        det.as_ref().map(|c| c.markdown(&base.models, &cand.models, folds_note)),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join("\n");
    // Created only now, so that bad inputs leave no empty folder behind.
    a.report.create()?;
    let out = &a.report.out;
    let json = serde_json::json!({"baseline": base.models, "candidate": cand.models, "all_verified_held_out": verified, "input_altered": base.input, "comparison": seg, "detection": det});
    std::fs::write(out.join("compare.md"), &md)?;
    std::fs::write(out.join("compare.json"), serde_json::to_string_pretty(&json)?)?;
    println!("{md}");
    println!("wrote {0}/compare.md, {0}/compare.json", out.display());
    Ok(())
}
