//! `tumorscan evaluate compare`: two models' per-patient Dice on the same patients, side by side,
//! with the paired difference's interval and permutation p-value.

use crate::evaluate_cmd::ReportOut;
use crate::pool_cmd::read_results;
use anyhow::{bail, Result};
use clap::Args;
use std::path::PathBuf;
use tumorscan_evaluate::compare::{compare_patients, Figure};
use tumorscan_evaluate::pooled::{is_verified, FoldSegmentation};

/// `evaluate compare` arguments.
#[derive(Args)]
pub struct CompareArgs {
    /// The baseline's `segmentation.json` files of `evaluate segment` (or their folders), one per fold.
    #[arg(long, num_args = 1.., required = true)]
    baseline: Vec<PathBuf>,
    /// The candidate's, on the same patients.
    #[arg(long, num_args = 1.., required = true)]
    candidate: Vec<PathBuf>,
    /// Where compare.md and compare.json go.
    #[command(flatten)]
    report: ReportOut,
}

/// One side's per-patient figures, the names of its models, and whether every fold was a
/// verified held-out test fold.
fn side(inputs: &[PathBuf], flag: &str) -> Result<(Vec<Figure>, String, bool)> {
    let (seg, _) = read_results(inputs)?;
    if seg.is_empty() {
        bail!("{flag}: no segmentation.json among the inputs (compare reads `evaluate segment` results)");
    }
    let figures = seg
        .iter()
        .flat_map(|f: &FoldSegmentation| f.patients.iter().map(move |(p, d)| (p.clone(), f.fold, *d)))
        .collect();
    let mut models: Vec<String> = seg.iter().map(|f| format!("{} (fold {})", f.model, f.fold)).collect();
    models.dedup();
    let verified = seg.iter().all(|f| is_verified(&f.held_out));
    Ok((figures, models.join("; "), verified))
}

/// Compare the two sides and write the report.
pub fn compare(a: &CompareArgs) -> Result<()> {
    let (base, base_name, base_verified) = side(&a.baseline, "--baseline")?;
    let (cand, cand_name, cand_verified) = side(&a.candidate, "--candidate")?;
    let c = compare_patients(&base, &cand, a.report.seed)?;
    let folds_note = if base_verified && cand_verified {
        "Every fold on both sides is a verified held-out test fold."
    } else {
        "NOT a test result: some folds were not verified held-out test folds (validation folds, used for model selection)."
    };
    let md = c.markdown(&base_name, &cand_name, folds_note);
    // Created only now, so that bad inputs leave no empty folder behind.
    a.report.create()?;
    let out = &a.report.out;
    let json = serde_json::json!({"baseline": base_name, "candidate": cand_name, "all_verified_held_out": base_verified && cand_verified, "comparison": c});
    std::fs::write(out.join("compare.md"), &md)?;
    std::fs::write(out.join("compare.json"), serde_json::to_string_pretty(&json)?)?;
    println!("{md}");
    println!("wrote {0}/compare.md, {0}/compare.json", out.display());
    Ok(())
}
