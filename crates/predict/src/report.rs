//! `report.html`: one self-contained page (images inline as base64 PNG) with the run summary,
//! a per-patient table, panels of the slices called tumour, and the model's identity and
//! evaluation figures.

use crate::engine::SlicePrediction;
use crate::models::{DetectionRule, ModelBundle};
use crate::output::RunSummary;
use base64::Engine as _;

/// Most slice panels shown (largest tumours first), to keep the page small.
pub const MAX_PANELS: usize = 60;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// What the reported `tumor_probability` means under a detection rule, for the reader.
fn score_meaning(rule: &DetectionRule) -> String {
    match rule {
        DetectionRule::Segmentation {
            min_pixels, slice_context, ..
        } => format!(
            "the slice's largest pixel probability where its outline has at least {min_pixels} pixel(s) (a tumour call), held under 0.5 elsewhere{}",
            if *slice_context {
                "; a slice without an outline scores 0.25-0.5 when the slice before or after it has one, under 0.25 otherwise"
            } else {
                ""
            }
        ),
        DetectionRule::Classifier { .. } => "the slice classifier's probability".into(),
        DetectionRule::Combined { .. } => "the mean of the slice classifier's probability and the largest pixel probability".into(),
    }
}

/// The slices whose ground truth shows tumour but which were not called tumour (only when
/// `_mask` files came with the input): the largest of them, and how many there are.
#[derive(Default)]
pub struct Missed<'a> {
    /// (prediction, ground-truth tumour pixels, overlay PNG bytes), largest first kept.
    pub shown: Vec<(&'a SlicePrediction, u64, Vec<u8>)>,
    /// All such slices of the run.
    pub total: usize,
}

fn card(p: &SlicePrediction, png: &[u8], caption: &str) -> String {
    format!(
        "<div class=\"card\" title=\"{}\"><img alt=\"{}\" src=\"data:image/png;base64,{}\"><br>{}<br>{caption}</div>",
        esc(&p.file),
        esc(&p.stem),
        base64::engine::general_purpose::STANDARD.encode(png),
        esc(&p.stem),
    )
}

/// Build the page. `panels` holds (prediction, overlay PNG bytes) of slices to show.
pub fn render(summary: &RunSummary, bundle: &ModelBundle, panels: &[(&SlicePrediction, Vec<u8>)], missed: &Missed) -> String {
    let mut h = String::from("<!doctype html><html><head><meta charset=\"utf-8\"><title>tumorscan report</title><style>body{font-family:sans-serif;margin:24px;color:#222}table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}th{background:#f3f3f3}td:first-child{text-align:left}.grid{display:flex;flex-wrap:wrap;gap:10px}.card{width:260px;font-size:12px;overflow-wrap:anywhere}.card img{width:256px;image-rendering:pixelated;border:1px solid #888}.warn{color:#a40}code{background:#f4f4f4;padding:1px 4px}pre{white-space:pre-wrap;overflow-wrap:anywhere}</style></head><body>");
    h.push_str("<h1>tumorscan report</h1>");
    h.push_str(&format!(
        "<p>{} slices in {} volume(s); <b>{}</b> called tumour. Red: predicted tumour; green outline: ground truth where it was given.</p>",
        summary.slices,
        summary.volumes.len(),
        summary.tumor_slices
    ));
    h.push_str("<p class=\"warn\">Research software, not a medical device: not for diagnosis.</p>");
    // Ground-truth columns only where some volume came with `_mask` files.
    let scored = summary.volumes.iter().any(|v| v.ground_truth.is_some());
    h.push_str("<h2>Per patient / volume</h2><table><tr><th>volume</th><th>slices</th><th>tumour slices</th><th>tumour pixels</th><th>area mm&sup2;</th><th>volume mL</th><th>max probability</th>");
    if scored {
        h.push_str("<th>Dice vs ground truth</th><th>tumour slices missed (of the truth's)</th><th>false tumour slices</th>");
    }
    h.push_str("</tr>");
    for v in &summary.volumes {
        let opt = |x: Option<f64>| x.map(|v| format!("{v:.2}")).unwrap_or_else(|| "&ndash;".into());
        let truth = match (&v.ground_truth, scored) {
            (Some(t), _) => format!(
                "<td>{:.3}</td><td>{} of {}</td><td>{}</td>",
                t.dice, t.missed_tumor_slices, t.truth_tumor_slices, t.false_tumor_slices
            ),
            (None, true) => "<td>&ndash;</td><td>&ndash;</td><td>&ndash;</td>".into(),
            (None, false) => String::new(),
        };
        h.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.3}</td>{truth}</tr>",
            esc(&v.volume),
            v.slices,
            v.tumor_slices,
            v.tumor_pixels,
            opt(v.tumor_area_mm2),
            opt(v.tumor_volume_ml),
            v.max_probability
        ));
    }
    h.push_str("</table>");
    // How a volume was read when that may cost accuracy (another plane, turned): said here too.
    for v in &summary.volumes {
        for n in &v.notes {
            h.push_str(&format!("<p class=\"warn\">{}: {}</p>", esc(&v.volume), esc(n)));
        }
    }
    if let Some(t) = &summary.ground_truth {
        h.push_str(&format!(
            "<p><b>Against the ground truth</b>, over the {} volume(s) scored: mean Dice {:.3}; slice accuracy {:.3} ({} of {} slices; {} of {} tumour slices missed, {} false tumour slices).</p>",
            t.volumes,
            t.mean_dice,
            t.slice_accuracy,
            t.slices - t.missed_tumor_slices - t.false_tumor_slices,
            t.slices,
            t.missed_tumor_slices,
            t.truth_tumor_slices,
            t.false_tumor_slices
        ));
    }
    if scored {
        h.push_str("<p>Dice is volumetric: intersections and sizes summed over the volume's slices, as <code>evaluate segment</code> scores a patient; a volume scores only when every slice has its ground truth (a <code>_mask</code> file, a segmentation beside a BraTS-style case, or <code>--truth</code>).</p>");
    }
    if !summary.failures.is_empty() {
        h.push_str("<h2>Inputs that failed</h2><ul>");
        for f in &summary.failures {
            h.push_str(&format!("<li><code>{}</code>: {}</li>", esc(&f.path), esc(&f.error)));
        }
        h.push_str("</ul>");
    }
    // Only the largest tumours get a panel (MAX_PANELS): say so when some are left out.
    let shown = if panels.len() < summary.tumor_slices {
        format!(
            "{} of {} shown: the largest tumours, in volume and slice order; predictions.csv lists every slice",
            panels.len(),
            summary.tumor_slices
        )
    } else {
        format!("{} shown", panels.len())
    };
    h.push_str(&format!("<h2>Slices called tumour ({shown})</h2><div class=\"grid\">"));
    for (p, png) in panels {
        let caption = format!(
            "p={:.4}, {} px{}{}",
            p.tumor_probability,
            p.tumor_pixels,
            p.tumor_area_mm2.map(|a| format!(", {a:.1} mm&sup2;")).unwrap_or_default(),
            if p.tumor_pixels == 0 {
                " <span class=\"warn\">(no outline: called by its score alone)</span>"
            } else {
                ""
            }
        );
        h.push_str(&card(p, png, &caption));
    }
    h.push_str("</div>");
    // With ground truth, the misses belong beside the calls: a reader checking the model
    // against its masks needs both.
    if missed.total > 0 {
        h.push_str(&format!(
            "<h2>Tumour in the ground truth, not called ({} of {} shown{})</h2><div class=\"grid\">",
            missed.shown.len(),
            missed.total,
            if missed.shown.len() < missed.total { ": the largest" } else { "" }
        ));
        for (p, truth, png) in &missed.shown {
            let caption = format!(
                "p={:.4}; truth {truth} px <span class=\"warn\">(missed)</span>",
                p.tumor_probability
            );
            h.push_str(&card(p, png, &caption));
        }
        h.push_str("</div>");
    }
    h.push_str("<h2>Model</h2>");
    h.push_str(&format!("<p>{}</p>", esc(&bundle.identity())));
    h.push_str(&format!(
        "<p>Detection rule: <code>{}</code>; post-processing: <code>{}</code></p>",
        esc(&serde_json::to_string(&bundle.manifest.detection).unwrap_or_default()),
        esc(&serde_json::to_string(&bundle.manifest.postprocess).unwrap_or_default())
    ));
    if let Some(t) = summary.threshold {
        h.push_str(&format!(
            "<p class=\"warn\">Slices were called tumour where p reached {t} (<code>--threshold</code>), in place of the rule's own call.</p>"
        ));
    }
    h.push_str(&format!("<p>p on each panel: {}</p>", score_meaning(&bundle.manifest.detection)));
    // What the model's evaluation measured of that score, where its bundle records it.
    if let Some(measured) = bundle.manifest.info.get("calibration").and_then(|c| c.as_str()) {
        h.push_str(&format!("<p><b>How sure</b>: {}</p>", esc(measured)));
    }
    // An ensemble lists each member; their probability maps are averaged.
    let nets: Vec<String> = bundle
        .segmenters
        .iter()
        .map(|s| {
            format!(
                "<code>{}</code>",
                esc(&s.card.get("net").map(|n| n.to_string()).unwrap_or_default())
            )
        })
        .collect();
    let label = if nets.len() > 1 {
        format!("Networks (ensemble of {}, mean probability)", nets.len())
    } else {
        "Network".to_string()
    };
    h.push_str(&format!("<p>{label}: {}</p>", nets.join("<br>")));
    if !bundle.manifest.info.is_null() {
        h.push_str(&format!(
            "<h3>Evaluation and provenance</h3><pre>{}</pre>",
            esc(&serde_json::to_string_pretty(&bundle.manifest.info).unwrap_or_default())
        ));
    }
    h.push_str(&format!(
        "<p style=\"color:#777\">Generated by tumorscan {} in {:.1} s.</p></body></html>",
        env!("CARGO_PKG_VERSION"),
        summary.seconds
    ));
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    fn called(stem: &str, pixels: u64) -> SlicePrediction {
        SlicePrediction {
            tumor_probability: 0.9,
            has_tumor: 1,
            tumor_pixels: pixels,
            ..crate::engine::test_prediction(stem)
        }
    }

    /// The panel heading says when only the largest tumours are shown, and the page names
    /// the version that wrote it.
    #[test]
    fn left_out_panels_are_said_and_the_version_named() {
        let device = tumorscan_model::ComputeDevice::cpu().inference().unwrap();
        let bundle = ModelBundle::builtin(&device).unwrap();
        let preds = [called("a", 900), called("b", 500), called("c", 40)];
        let summary = RunSummary {
            model: bundle.identity(),
            slices: 3,
            tumor_slices: 3,
            volumes: Vec::new(),
            failures: Vec::new(),
            shard: None,
            threshold: None,
            ground_truth: None,
            seconds: 1.0,
        };
        let panels: Vec<_> = preds.iter().map(|p| (p, Vec::new())).collect();
        let none = Missed::default();
        let all = render(&summary, &bundle, &panels, &none);
        assert!(all.contains("Slices called tumour (3 shown)"), "{all}");
        assert!(!all.contains("not called"), "no ground truth, no section");
        let some = render(&summary, &bundle, &panels[..2], &none);
        assert!(some.contains("(2 of 3 shown: the largest tumours"), "{some}");
        assert!(some.contains(&format!("Generated by tumorscan {}", env!("CARGO_PKG_VERSION"))));
        // Slices whose ground truth shows tumour that was not called get their own section.
        let miss = crate::engine::test_prediction("d");
        let missed = Missed {
            shown: vec![(&miss, 253, Vec::new())],
            total: 2,
        };
        let with = render(&summary, &bundle, &panels, &missed);
        assert!(
            with.contains("Tumour in the ground truth, not called (1 of 2 shown: the largest)"),
            "{with}"
        );
        assert!(with.contains("truth 253 px"), "{with}");
    }
}
