//! `tumorscan evaluate pool`: cross-validation, pooling `evaluate segment|detect` results of
//! different folds into one figure over all of their patients.

use crate::evaluate_cmd::ReportOut;
use anyhow::{bail, Context, Result};
use clap::Args;
use serde_json::Value;
use std::path::{Path, PathBuf};
use tumorscan_evaluate::calibration::{CalibrationBin, PooledCalibration};
use tumorscan_evaluate::detection::Confusion;
use tumorscan_evaluate::pooled::{altered_input, pool_detection, pool_segmentation, FoldDetection, FoldSegmentation};

/// `evaluate pool` arguments.
#[derive(Args)]
pub struct PoolArgs {
    /// `segmentation.json` / `detection.json` files of `evaluate segment|detect`, one per fold,
    /// or the folders holding them.
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
    /// Where pooled.md and pooled.json go.
    #[command(flatten)]
    report: ReportOut,
}

/// The `evaluate segment|detect` results in `inputs` (JSON files, or folders holding them).
pub(crate) fn read_results(inputs: &[PathBuf]) -> Result<(Vec<FoldSegmentation>, Vec<FoldDetection>)> {
    let (mut seg, mut det) = (Vec::new(), Vec::new());
    for input in inputs {
        let files: Vec<PathBuf> = if input.is_dir() {
            let found: Vec<PathBuf> = ["segmentation.json", "detection.json"]
                .iter()
                .map(|f| input.join(f))
                .filter(|p| p.is_file())
                .collect();
            if found.is_empty() {
                bail!("{}: no segmentation.json or detection.json in it", input.display());
            }
            found
        } else {
            vec![input.clone()]
        };
        for file in files {
            let v: Value = serde_json::from_slice(&std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?)
                .with_context(|| format!("{} is not JSON", file.display()))?;
            if v.get("candidates").is_some() {
                det.push(read_detection(&file, &v)?);
            } else if v.get("report").is_some() {
                seg.push(read_segmentation(&file, &v)?);
            } else {
                bail!(
                    "{}: not a segmentation.json or detection.json of `tumorscan evaluate`",
                    file.display()
                );
            }
        }
    }
    // A robustness run (--missing-sequence) beside runs on the scans as they are would make one
    // figure of two inputs.
    let inputs: Vec<(&str, &str)> = seg
        .iter()
        .map(|f| (f.source.as_str(), altered_input(&f.held_out)))
        .chain(det.iter().map(|f| (f.source.as_str(), altered_input(&f.held_out))))
        .collect();
    if let Some((first, other)) = inputs.first().and_then(|a| Some((a, inputs.iter().find(|b| b.1 != a.1)?))) {
        bail!(
            "{} was evaluated {}, but {} {}: results on different inputs are not pooled or compared",
            first.0,
            input_words(first.1),
            other.0,
            input_words(other.1)
        );
    }
    Ok((seg, det))
}

/// How the input of results that [`read_results`] accepted was altered ([`altered_input`]; the
/// same for all of them), "" for the scans as they are.
pub(crate) fn results_input(seg: &[FoldSegmentation], det: &[FoldDetection]) -> String {
    let held_out = seg.iter().map(|f| &f.held_out).chain(det.iter().map(|f| &f.held_out));
    held_out.map(|h| altered_input(h)).next().unwrap_or_default().to_string()
}

/// How a result's input was altered ([`altered_input`]), in words for a refusal.
pub(crate) fn input_words(note: &str) -> String {
    if note.is_empty() {
        "on the scans as they are".into()
    } else {
        format!("with \"{}\"", note.trim_end_matches('.'))
    }
}

/// Pool the inputs and write the report.
pub fn pool(a: &PoolArgs) -> Result<()> {
    let (seg, det) = read_results(&a.inputs)?;
    let mut md = String::new();
    let mut json = serde_json::Map::new();
    // Every fold's input was altered alike (read_results refuses a mix): robustness figures,
    // said first so they are not read as the plain cross-validation.
    let altered = results_input(&seg, &det);
    if !altered.is_empty() {
        md.push_str(&format!("{altered} (every pooled fold)\n\n"));
        json.insert("input_altered".into(), altered.into());
    }
    if !seg.is_empty() {
        let p = pool_segmentation(&seg, a.report.seed)?;
        md.push_str(&p.markdown());
        json.insert("segmentation".into(), serde_json::to_value(&p)?);
    }
    if !det.is_empty() {
        let p = pool_detection(&det)?;
        if !seg.is_empty() {
            md.push('\n');
        }
        md.push_str(&p.markdown());
        json.insert("detection".into(), serde_json::to_value(&p)?);
    }
    // Created only now, so that bad inputs leave no empty folder behind.
    a.report.create()?;
    let out = &a.report.out;
    std::fs::write(out.join("pooled.md"), &md)?;
    std::fs::write(out.join("pooled.json"), serde_json::to_string_pretty(&Value::Object(json))?)?;
    println!("{md}");
    println!("wrote {0}/pooled.md, {0}/pooled.json", out.display());
    Ok(())
}

fn field<'a>(file: &Path, v: &'a Value, key: &str) -> Result<&'a Value> {
    v.pointer(key)
        .with_context(|| format!("{}: no {key}; was it written by `tumorscan evaluate`?", file.display()))
}

fn common(file: &Path, v: &Value) -> Result<(usize, String, String)> {
    let fold = field(file, v, "/fold")?
        .as_u64()
        .with_context(|| format!("{}: fold is not a number", file.display()))?;
    let text = |k| Ok::<_, anyhow::Error>(field(file, v, k)?.as_str().unwrap_or_default().to_string());
    Ok((fold as usize, text("/model")?, text("/held_out")?))
}

fn read_segmentation(file: &Path, v: &Value) -> Result<FoldSegmentation> {
    let (fold, model, held_out) = common(file, v)?;
    let patients = field(file, v, "/report/per_patient")?
        .as_array()
        .with_context(|| format!("{}: report.per_patient is not a list", file.display()))?
        .iter()
        .map(|p| match (p["patient"].as_str(), p["dice"].as_f64()) {
            (Some(id), Some(d)) => Ok((id.to_string(), d)),
            _ => bail!("{}: a per_patient entry lacks patient or dice", file.display()),
        })
        .collect::<Result<Vec<_>>>()?;
    let rows = v["postprocessing"].as_array().map(Vec::as_slice).unwrap_or_default();
    let variants = rows
        .iter()
        .filter_map(|r| Some((r["variant"].as_str()?.to_string(), r["patient_dice_mean"]["value"].as_f64()?)))
        .collect();
    // Per-patient figures of each variant (absent from files written before session 50).
    let variant_patients = rows
        .iter()
        .filter_map(|r| {
            let per = r["per_patient"]
                .as_array()?
                .iter()
                .map(|p| Some((p["patient"].as_str()?.to_string(), p["dice"].as_f64()?)))
                .collect::<Option<Vec<_>>>()?;
            Some((r["variant"].as_str()?.to_string(), per))
        })
        .collect();
    Ok(FoldSegmentation {
        source: file.display().to_string(),
        fold,
        model,
        held_out,
        patients,
        variants,
        variant_patients,
    })
}

/// A detection report's calibration (absent from files written before session 49).
fn fold_calibration(c: &Value) -> Option<PooledCalibration> {
    let bins: Vec<CalibrationBin> = serde_json::from_value(c["bins"].clone()).ok()?;
    Some(PooledCalibration::of_fold(c["brier"]["value"].as_f64()?, bins))
}

fn read_detection(file: &Path, v: &Value) -> Result<FoldDetection> {
    let (fold, model, held_out) = common(file, v)?;
    // The rule the model ships with: the candidate `evaluate detect` marked best on validation
    // (the bundle's own rule when no --val-fold was given).
    let name = field(file, v, "/best_on_validation")?.as_str().unwrap_or_default();
    let candidates = field(file, v, "/candidates")?.as_array().cloned().unwrap_or_default();
    let Some(c) = candidates.iter().find(|c| c["name"].as_str() == Some(name)) else {
        bail!("{}: candidate {name:?} not found", file.display());
    };
    let report = &c["report"];
    let confusion: Confusion = serde_json::from_value(report["confusion"].clone())
        .with_context(|| format!("{}: no confusion counts for {name:?}", file.display()))?;
    Ok(FoldDetection {
        source: file.display().to_string(),
        fold,
        model,
        held_out,
        candidate: name.to_string(),
        confusion,
        // An interval {value, low, high} (a bare number in older files).
        roc_auc: report["roc_auc"]["value"]
            .as_f64()
            .or(report["roc_auc"].as_f64())
            .unwrap_or(f64::NAN),
        calibration: fold_calibration(&report["calibration"]),
        operating_points: serde_json::from_value(report["operating_points"].clone()).ok(),
        patients: v["patients"]
            .as_array()
            .map(|ids| ids.iter().filter_map(|p| p.as_str().map(str::to_string)).collect())
            .unwrap_or_default(),
        tumor_patients: report["tumor_patients"].as_u64().unwrap_or(0),
        tumor_patients_detected: report["tumor_patients_detected"].as_u64().unwrap_or(0),
        tumor_patients_found: report["tumor_patients_found"].as_u64(),
        wrong: report["misclassified"]
            .as_array()
            .map(|m| {
                m.iter()
                    .filter_map(|x| Some((x["patient"].as_str()?.to_string(), u32::try_from(x["slice"].as_u64()?).ok()?)))
                    .collect()
            })
            .unwrap_or_default(),
    })
}
