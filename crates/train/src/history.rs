//! Per-epoch metrics: kept in the run state, written as CSV and JSON, drawn as curves.

use anyhow::Result;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;
use tumorscan_evaluate::plot::{line_chart, LegendAt, Series};

/// What one epoch measured.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct EpochRecord {
    /// 1-based epoch.
    pub epoch: usize,
    /// Mean training loss.
    pub train_loss: f64,
    /// Learning rate used.
    pub learning_rate: f64,
    /// Wall time of the epoch (training + validation), seconds.
    pub seconds: f64,
    /// Mean seconds per training step.
    pub step_seconds: f64,
    /// Validation metrics (the selection metric among them).
    pub val: BTreeMap<String, f64>,
}

/// Write `metrics.csv`, `metrics.json` and `curves.png` into `dir`. `final_fit`: the run trained
/// on its validation patients too (`--train-on-val`), so the curves say their validation
/// figures are not held-out ones.
pub fn write_history(dir: &Path, history: &[EpochRecord], selection: &str, final_fit: bool) -> Result<()> {
    // Every metric any epoch recorded: a final fit validates its last epoch only.
    let keys: Vec<String> = history
        .iter()
        .flat_map(|h| h.val.keys().cloned())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut csv = String::from("epoch,train_loss,learning_rate,seconds,step_seconds");
    for k in &keys {
        csv.push_str(&format!(",{k}"));
    }
    csv.push('\n');
    for h in history {
        csv.push_str(&format!(
            "{},{:.6},{:.3e},{:.1},{:.3}",
            h.epoch, h.train_loss, h.learning_rate, h.seconds, h.step_seconds
        ));
        for k in &keys {
            csv.push_str(&format!(",{:.6}", h.val.get(k).copied().unwrap_or(f64::NAN)));
        }
        csv.push('\n');
    }
    crate::checkpoint::write_atomic(&dir.join("metrics.csv"), csv.as_bytes())?;
    crate::checkpoint::write_atomic(&dir.join("metrics.json"), serde_json::to_string_pretty(history)?.as_bytes())?;
    let shown: Vec<&str> = std::iter::once(selection)
        .chain(keys.iter().map(String::as_str).filter(|k| *k != selection).take(2))
        .collect();
    let label = |k: &str| if final_fit { format!("{k} (trained on)") } else { k.to_string() };
    let labels: Vec<String> = shown.iter().map(|k| label(k)).collect();
    let mut series = vec![Series {
        label: "train loss",
        points: history.iter().map(|h| (h.epoch as f64, h.train_loss)).collect(),
    }];
    for (k, label) in shown.iter().zip(&labels) {
        series.push(Series {
            label,
            points: history
                .iter()
                .map(|h| (h.epoch as f64, h.val.get(*k).copied().unwrap_or(f64::NAN)))
                .collect(),
        });
    }
    let title = if final_fit {
        "training curves (final fit: its validation patients were trained on)"
    } else {
        "training curves"
    };
    line_chart(
        &dir.join("curves.png"),
        title,
        "epoch",
        "value",
        &series,
        None,
        LegendAt::UpperRight,
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A final fit validates its last epoch only: the files are written, the CSV keeps the
    /// empty epochs as NaN, and the chart draws the lone points (no panic on one-point series).
    #[test]
    fn a_final_fit_history_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let epoch = |e: usize, val: &[(&str, f64)]| EpochRecord {
            epoch: e,
            train_loss: 1.0 / e as f64,
            learning_rate: 1e-3,
            seconds: 1.0,
            step_seconds: 0.1,
            val: val.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
        };
        let history = [epoch(1, &[]), epoch(2, &[]), epoch(3, &[("val_patient_dice", 0.9)])];
        write_history(dir.path(), &history, "val_patient_dice", true).unwrap();
        let csv = std::fs::read_to_string(dir.path().join("metrics.csv")).unwrap();
        assert!(csv.contains("\n1,") && csv.contains("NaN") && csv.contains(",0.900000"), "{csv}");
        let png = std::fs::read(dir.path().join("curves.png")).unwrap();
        assert!(png.starts_with(b"\x89PNG"), "a PNG");
    }
}
