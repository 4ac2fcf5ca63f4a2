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

/// Write `metrics.csv`, `metrics.json` and `curves.png` into `dir`.
pub fn write_history(dir: &Path, history: &[EpochRecord], selection: &str) -> Result<()> {
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
    let loss = Series {
        label: "train loss",
        points: history.iter().map(|h| (h.epoch as f64, h.train_loss)).collect(),
    };
    let sel = Series {
        label: selection,
        points: history
            .iter()
            .map(|h| (h.epoch as f64, h.val.get(selection).copied().unwrap_or(f64::NAN)))
            .collect(),
    };
    let mut series = vec![loss, sel];
    for k in keys.iter().filter(|k| k.as_str() != selection).take(2) {
        series.push(Series {
            label: k,
            points: history
                .iter()
                .map(|h| (h.epoch as f64, h.val.get(k).copied().unwrap_or(f64::NAN)))
                .collect(),
        });
    }
    line_chart(
        &dir.join("curves.png"),
        "training curves",
        "epoch",
        "value",
        &series,
        None,
        LegendAt::UpperRight,
    )?;
    Ok(())
}
