//! PNG charts (plotters, bitmap backend, embedded font): line charts for training curves and
//! ROC curves, a confusion-matrix picture and a reliability diagram.

use crate::calibration::CalibrationBin;
use plotters::prelude::*;
use std::path::Path;
use std::sync::Once;

static FONT: Once = Once::new();

fn ensure_font() {
    FONT.call_once(|| {
        for style in [FontStyle::Normal, FontStyle::Bold] {
            let _ = plotters::style::register_font("sans-serif", style, tumorscan_data::render::FONT_BYTES);
        }
    });
}

/// Errors from drawing a chart.
#[derive(Debug, thiserror::Error)]
#[error("{path}: cannot draw chart: {reason}")]
pub struct PlotError {
    /// Output path.
    pub path: String,
    /// What failed.
    pub reason: String,
}

fn err(path: &Path, e: impl std::fmt::Display) -> PlotError {
    PlotError {
        path: path.display().to_string(),
        reason: e.to_string(),
    }
}

/// One named series of (x, y) points.
pub struct Series<'a> {
    /// Legend label.
    pub label: &'a str,
    /// Points.
    pub points: Vec<(f64, f64)>,
}

/// matplotlib's tab10: distinct for up to ten series (ROC plots carry seven candidates).
const COLORS: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// Where a chart's legend goes: a corner the series leave empty (ROC curves leave the lower
/// right, training curves the upper right, above the falling loss).
pub use plotters::chart::SeriesLabelPosition as LegendAt;

/// Draw series as lines in one panel and save a PNG.
pub fn line_chart(
    path: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
    y_range: Option<(f64, f64)>,
    legend: LegendAt,
) -> Result<(), PlotError> {
    ensure_font();
    let root = BitMapBackend::new(path, (720, 440)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(path, e))?;
    let xs = series.iter().flat_map(|s| s.points.iter().map(|p| p.0));
    let ys = series.iter().flat_map(|s| s.points.iter().map(|p| p.1)).filter(|v| v.is_finite());
    let (x0, x1) = xs.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| (a.min(v), b.max(v)));
    let (y0, y1) = y_range.unwrap_or_else(|| {
        let (a, b) = ys.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| (a.min(v), b.max(v)));
        (a.min(0.0), if b > a { b * 1.05 } else { a + 1.0 })
    });
    let (x0, x1) = if x0.is_finite() && x1 > x0 { (x0, x1) } else { (0.0, 1.0) };
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(56)
        .build_cartesian_2d(x0..x1, y0..y1)
        .map_err(|e| err(path, e))?;
    chart
        .configure_mesh()
        .x_desc(x_label)
        .y_desc(y_label)
        .draw()
        .map_err(|e| err(path, e))?;
    for (i, s) in series.iter().enumerate() {
        let c = COLORS[i % COLORS.len()];
        let finite: Vec<(f64, f64)> = s.points.iter().copied().filter(|p| p.1.is_finite()).collect();
        // A series with a single point (e.g. validation metrics of a final fit, measured once)
        // draws no line: mark it.
        if finite.len() == 1 {
            chart
                .draw_series(finite.iter().map(|&p| Circle::new(p, 4, c.filled())))
                .map_err(|e| err(path, e))?;
        }
        chart
            .draw_series(LineSeries::new(finite, c.stroke_width(2)))
            .map_err(|e| err(path, e))?
            .label(s.label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .position(legend)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| err(path, e))?;
    root.present().map_err(|e| err(path, e))
}

/// A 2x2 confusion matrix as a PNG (rows: truth, columns: prediction), with a caption of up to
/// two lines under it saying whose calls these are (rule, threshold, fold).
pub fn confusion_png(path: &Path, labels: [&str; 2], m: [[u64; 2]; 2], caption: &str) -> Result<(), PlotError> {
    ensure_font();
    let root = BitMapBackend::new(path, (420, 380)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(path, e))?;
    let max = m.iter().flatten().copied().max().unwrap_or(1).max(1) as f64;
    let text =
        |s: &str, x: i32, y: i32, size: i32, col: &RGBColor| Text::new(s.to_string(), (x, y), ("sans-serif", size).into_font().color(col));
    root.draw(&text("Confusion matrix", 120, 10, 20, &BLACK))
        .map_err(|e| err(path, e))?;
    root.draw(&text("predicted", 200, 40, 15, &BLACK)).map_err(|e| err(path, e))?;
    for (i, l) in labels.iter().enumerate() {
        root.draw(&text(l, 140 + i as i32 * 130, 60, 15, &BLACK))
            .map_err(|e| err(path, e))?;
        root.draw(&text(l, 8, 130 + i as i32 * 130, 15, &BLACK)).map_err(|e| err(path, e))?;
    }
    for (r, row) in m.iter().enumerate() {
        for (c, &v) in row.iter().enumerate() {
            let (x, y) = (110 + c as i32 * 130, 80 + r as i32 * 130);
            let shade = (255.0 - 200.0 * v as f64 / max) as u8;
            root.draw(&Rectangle::new([(x, y), (x + 125, y + 125)], RGBColor(shade, shade, 255).filled()))
                .map_err(|e| err(path, e))?;
            let col = if shade < 140 { WHITE } else { BLACK };
            root.draw(&text(&v.to_string(), x + 40, y + 50, 22, &col))
                .map_err(|e| err(path, e))?;
        }
    }
    root.draw(&text("truth", 8, 80, 15, &BLACK)).map_err(|e| err(path, e))?;
    for (i, line) in caption.lines().take(2).enumerate() {
        root.draw(&text(line, 8, 344 + 16 * i as i32, 12, &BLACK))
            .map_err(|e| err(path, e))?;
    }
    root.present().map_err(|e| err(path, e))
}

/// A reliability diagram: each non-empty score bin as a point at (mean score, fraction of its
/// slices with tumour) labelled with its slice count (a bin of 3 slices swings far), over the
/// diagonal of a perfectly calibrated score.
pub fn reliability_png(path: &Path, title: &str, bins: &[CalibrationBin]) -> Result<(), PlotError> {
    ensure_font();
    let root = BitMapBackend::new(path, (640, 560)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(path, e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 18))
        .margin(16)
        .x_label_area_size(40)
        .y_label_area_size(56)
        // A little room past 0 and 1: bins sit at the ends (scores of 0.001 and 0.999).
        .build_cartesian_2d(-0.03..1.08, 0.0..1.1)
        .map_err(|e| err(path, e))?;
    chart
        .configure_mesh()
        .x_desc("mean score of a 0.1-wide bin (label: its slices; line: perfectly calibrated)")
        .y_desc("fraction of its slices with tumour")
        .draw()
        .map_err(|e| err(path, e))?;
    let grey = RGBColor(150, 150, 150);
    chart
        .draw_series(LineSeries::new([(0.0, 0.0), (1.0, 1.0)], grey.stroke_width(1)))
        .map_err(|e| err(path, e))?;
    let blue = COLORS[0];
    let points: Vec<(f64, f64, u64)> = bins
        .iter()
        .filter(|b| b.slices > 0)
        .map(|b| (b.mean_score(), b.tumor_fraction(), b.slices))
        .collect();
    chart
        .draw_series(points.iter().map(|&(x, y, _)| Circle::new((x, y), 5, blue.filled())))
        .map_err(|e| err(path, e))?;
    chart
        .draw_series(
            points
                .iter()
                // Beside the point, not under it.
                .map(|&(x, y, n)| {
                    EmptyElement::at((x, y)) + Text::new(n.to_string(), (7, -18), ("sans-serif", 13).into_font().color(&BLACK))
                }),
        )
        .map_err(|e| err(path, e))?;
    root.present().map_err(|e| err(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charts_are_written_as_png() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.png");
        line_chart(
            &p,
            "loss",
            "epoch",
            "loss",
            &[Series {
                label: "train",
                points: vec![(1.0, 0.5), (2.0, 0.3)],
            }],
            None,
            LegendAt::UpperRight,
        )
        .unwrap();
        assert_eq!(image::open(&p).unwrap().width(), 720);
        let q = dir.path().join("m.png");
        confusion_png(&q, ["no tumour", "tumour"], [[10, 2], [1, 7]], "rule, fold 0").unwrap();
        assert!(image::open(&q).is_ok());
        let r = dir.path().join("r.png");
        let bin = |low: f64, slices, score_sum, tumor_slices| CalibrationBin {
            low,
            high: low + 0.1,
            slices,
            score_sum,
            tumor_slices,
        };
        reliability_png(&r, "reliability", &[bin(0.0, 0, 0.0, 0), bin(0.9, 4, 3.9, 3)]).unwrap();
        assert_eq!(image::open(&r).unwrap().width(), 640);
    }
}
