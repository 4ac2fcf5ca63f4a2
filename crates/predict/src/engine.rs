//! Running a model bundle on a volume: per-volume normalisation, segmentation at model size,
//! probability maps resized back to each slice's size, clean-up, detection, and agreement
//! between the two (a slice called tumour-free gets an empty mask).

use crate::input::Volume;
use crate::models::{DetectionRule, ModelBundle, Postprocess};
use crate::postprocess::{drop_small_components, grow_into, keep_best_3d, keep_large_3d, smooth_across_slices};
use rayon::prelude::*;
use serde::Serialize;
use tumorscan_data::augment::{context_indices, prepare_image, prepare_image_in_context, resize_map, Neighbour};
use tumorscan_data::normalize::Normalizer;

/// Result for one slice.
#[derive(Debug, Clone, Serialize)]
pub struct SlicePrediction {
    /// Input label (path, or `path#k`).
    pub file: String,
    /// Volume (patient) id.
    pub volume: String,
    /// Output stem.
    #[serde(skip)]
    pub stem: String,
    /// Order in the volume.
    pub slice: u32,
    /// Tumour probability 0..1.
    pub tumor_probability: f64,
    /// 1 when called tumour.
    pub has_tumor: u8,
    /// Tumour pixels in the mask.
    pub tumor_pixels: u64,
    /// Tumour area in mm^2 where spacing is known.
    pub tumor_area_mm2: Option<f64>,
    /// Bounding box of the mask (x, y, w, h), when not empty.
    pub bbox_x: Option<u32>,
    /// Bounding box top.
    pub bbox_y: Option<u32>,
    /// Bounding box width.
    pub bbox_width: Option<u32>,
    /// Bounding box height.
    pub bbox_height: Option<u32>,
    /// Slice width.
    pub width: u32,
    /// Slice height.
    pub height: u32,
    /// Conversions applied to the input.
    pub notes: String,
    /// Mask 0/1 at the slice's size.
    #[serde(skip)]
    pub mask: Vec<u8>,
}

/// A tumour-free 4x4 slice's prediction with stem `stem`, for tests.
#[cfg(test)]
pub(crate) fn test_prediction(stem: &str) -> SlicePrediction {
    SlicePrediction {
        file: format!("in/{stem}.tif"),
        volume: "v".into(),
        stem: stem.into(),
        slice: 1,
        tumor_probability: 0.25,
        has_tumor: 0,
        tumor_pixels: 0,
        tumor_area_mm2: None,
        bbox_x: None,
        bbox_y: None,
        bbox_width: None,
        bbox_height: None,
        width: 4,
        height: 4,
        notes: String::new(),
        mask: vec![0; 16],
    }
}

/// Options that override the bundle's.
#[derive(Debug, Clone, Default)]
pub struct PredictOptions {
    /// Override the detection threshold: a slice is called tumour when its reported
    /// `tumor_probability` reaches it (segmentation rule), or the classifier / combined
    /// probability does.
    pub threshold: Option<f64>,
    /// Keep masks even on slices called tumour-free.
    pub keep_masks_of_negatives: bool,
    /// Batch size.
    pub batch_size: usize,
}

fn bbox(mask: &[u8], w: u32) -> Option<(u32, u32, u32, u32)> {
    let (mut x0, mut y0, mut x1, mut y1) = (u32::MAX, u32::MAX, 0, 0);
    for (i, _) in mask.iter().enumerate().filter(|(_, &v)| v != 0) {
        let (x, y) = (i as u32 % w, i as u32 / w);
        x0 = x0.min(x);
        y0 = y0.min(y);
        x1 = x1.max(x);
        y1 = y1.max(y);
    }
    (x0 != u32::MAX).then(|| (x0, y0, x1 - x0 + 1, y1 - y0 + 1))
}

/// Tumour probability maps of every slice of a volume, at each slice's own size
/// (per-volume normalisation, model-size inference, bilinear resize back). An ensemble whose
/// members take different input sizes is averaged over all members at the slice's size.
pub fn probability_maps(bundle: &ModelBundle, volume: &Volume, norm: &Normalizer, batch: usize, flip_tta: bool) -> Vec<Vec<f32>> {
    let members = bundle.segmenters.len() as f32;
    let mut total: Vec<Vec<f32>> = Vec::new();
    for size in bundle.seg_input_sizes() {
        let maps = maps_at_size(bundle, volume, norm, batch, flip_tta, size);
        // Each size's maps are already its members' mean: weigh by its share of the members.
        let w = bundle.members_of_size(size) as f32 / members;
        if total.is_empty() {
            total = maps;
            total.iter_mut().flatten().for_each(|v| *v *= w);
        } else {
            total
                .iter_mut()
                .zip(maps)
                .for_each(|(t, m)| t.iter_mut().zip(m).for_each(|(t, m)| *t += w * m));
        }
    }
    total
}

/// [`probability_maps`] of the members that take inputs of `size`.
fn maps_at_size(bundle: &ModelBundle, volume: &Volume, norm: &Normalizer, batch: usize, flip_tta: bool, size: u32) -> Vec<Vec<f32>> {
    let context = bundle.seg_config().context_slices;
    let slices = &volume.slices;
    let inputs: Vec<Vec<f32>> = (0..slices.len())
        .into_par_iter()
        .map(|i| {
            let s = &slices[i];
            // 2.5D networks also see their neighbours' FLAIR (the volume's slices are in order).
            let around: Vec<Neighbour> = context_indices(i, slices.len(), context)
                .into_iter()
                .map(|j| (slices[j].rgb.as_slice(), slices[j].width, slices[j].height))
                .collect();
            prepare_image_in_context(&s.rgb, s.width, s.height, &around, norm, size)
        })
        .collect();
    let planes = 3 + 2 * context;
    let refs: Vec<&[f32]> = inputs.iter().map(Vec::as_slice).collect();
    let mut probs = bundle.segment_probabilities(&refs, size, batch.max(1));
    if flip_tta {
        let n = size as usize;
        let flip = |v: &[f32], planes: usize| -> Vec<f32> {
            let mut out = vec![0f32; v.len()];
            for p in 0..planes {
                for y in 0..n {
                    for x in 0..n {
                        out[p * n * n + y * n + x] = v[p * n * n + y * n + (n - 1 - x)];
                    }
                }
            }
            out
        };
        let flipped: Vec<Vec<f32>> = inputs.par_iter().map(|v| flip(v, planes)).collect();
        let refs: Vec<&[f32]> = flipped.iter().map(Vec::as_slice).collect();
        let back = bundle.segment_probabilities(&refs, size, batch.max(1));
        probs.par_iter_mut().zip(back).for_each(|(p, b)| {
            p.iter_mut().zip(flip(&b, 1)).for_each(|(a, b)| *a = 0.5 * (*a + b));
        });
    }
    volume
        .slices
        .par_iter()
        .zip(&probs)
        .map(|(s, p)| resize_map(p, size, size, (s.width, s.height)))
        .collect()
}

/// A score that is 0 when the cleaned mask is empty: detection and mask always agree.
pub fn gate(score: f64, cleaned_pixels: u64) -> f64 {
    if cleaned_pixels == 0 {
        0.0
    } else {
        score
    }
}

/// The segmentation's tumour score of a slice: its largest pixel probability. Where the
/// cleaned mask is empty the score is kept just under the pixel threshold, so a slice without a
/// mask never scores as a tumour, while tumour-free slices still rank by how close the network
/// came (that order is what ROC-AUC measures; gating them all to 0 made them ties).
pub fn segmentation_score(prob: &[f32], cleaned_pixels: u64, pixel_threshold: f32) -> f64 {
    let max = prob.iter().copied().fold(0f32, f32::max) as f64;
    if cleaned_pixels == 0 {
        max.min(f64::from(pixel_threshold) - 1e-4).max(0.0)
    } else {
        max
    }
}

/// The score reported under the segmentation rule "a tumour when the cleaned mask has at least
/// `min_pixels` pixels": [`segmentation_score`], held under the pixel threshold when the mask is
/// smaller than that, so the score is at least the pixel threshold exactly for the slices the
/// rule calls tumour (and its ROC curve is that of the reported probability).
pub fn pixel_rule_score(prob: &[f32], cleaned_pixels: u64, min_pixels: u64, pixel_threshold: f32) -> f64 {
    let counted = if cleaned_pixels >= min_pixels.max(1) { cleaned_pixels } else { 0 };
    segmentation_score(prob, counted, pixel_threshold)
}

/// Slice context for the segmentation rule's scores of one volume, in slice order. The calls
/// stay as they are (a score reaches `pixel_threshold` exactly where the rule found an outline);
/// the slices without one are re-ranked by what a tumour is, a 3D object: a slice next to a slice
/// with an outline (+-1) scores in [t/2, t), above every slice without such a neighbour
/// ([0, t/2)), each band ordered by the slice's own score. Chosen on four pooled validation folds
/// (`models/experiments/detection-context/`): the thin end slices a tumour's outline misses rank
/// above spurious probability elsewhere in the head. A volume of one slice is left as it is.
pub fn in_slice_context(scores: &mut [f64], pixel_threshold: f32) {
    let t = f64::from(pixel_threshold);
    if scores.len() < 2 {
        return;
    }
    let outlined: Vec<bool> = scores.iter().map(|&s| s >= t).collect();
    for (i, s) in scores.iter_mut().enumerate() {
        if outlined[i] {
            continue;
        }
        let beside = (i > 0 && outlined[i - 1]) || outlined.get(i + 1).copied().unwrap_or(false);
        let own = s.clamp(0.0, t);
        // Kept a reported digit under t (scores are reported to 4 decimals), as the plain score.
        *s = if beside { (t / 2.0 + own / 2.0).min(t - 1e-4) } else { own / 2.0 };
    }
}

/// The classifier rule's score: its probability, gated by the cleaned mask ([`gate`]) when the
/// rule requires a mask.
pub fn classifier_score(classifier: f64, cleaned_pixels: u64, require_mask: bool) -> f64 {
    if require_mask {
        gate(classifier, cleaned_pixels)
    } else {
        classifier
    }
}

/// The combined rule's score: the mean of the classifier's and the segmentation's scores, gated
/// by the cleaned mask ([`gate`]) when the rule requires a mask.
pub fn combined_score(classifier: f64, segmentation: f64, cleaned_pixels: u64, require_mask: bool) -> f64 {
    classifier_score((classifier + segmentation) / 2.0, cleaned_pixels, require_mask)
}

/// Threshold probability maps and clean the masks as `pp` says.
pub fn masks_from_probabilities(volume: &Volume, probs: &[Vec<f32>], threshold: f32, pp: &Postprocess) -> Vec<Vec<u8>> {
    let mut masks: Vec<Vec<u8>> = volume
        .slices
        .par_iter()
        .zip(probs)
        .map(|(s, p)| {
            let mut m: Vec<u8> = p.iter().map(|&v| (v >= threshold) as u8).collect();
            drop_small_components(&mut m, s.width as usize, s.height as usize, pp.min_component_pixels);
            m
        })
        .collect();
    if volume.one_grid() && !volume.slices.is_empty() {
        let (w, h) = (volume.slices[0].width as usize, volume.slices[0].height as usize);
        if pp.largest_3d_component {
            keep_best_3d(&mut masks, probs, w, h, pp.keep_3d_by);
        } else if pp.min_3d_fraction > 0.0 {
            keep_large_3d(&mut masks, w, h, pp.min_3d_fraction);
        }
        if pp.grow_to > 0.0 {
            grow_into(&mut masks, probs, w, h, pp.grow_to);
        }
    } else if pp.grow_to > 0.0 {
        // Slices of different sizes have no voxel grid in common: each grows on its own.
        for (i, s) in volume.slices.iter().enumerate() {
            let (w, h) = (s.width as usize, s.height as usize);
            grow_into(&mut masks[i..=i], &probs[i..=i], w, h, pp.grow_to);
        }
    }
    masks
}

/// Predict every slice of a volume.
pub fn predict_volume(bundle: &ModelBundle, volume: &Volume, opts: &PredictOptions) -> Vec<SlicePrediction> {
    let batch = opts.batch_size.max(1);
    let norm = Normalizer::fit(volume.slices.iter().map(|s| s.rgb.as_slice()));
    let pp = &bundle.manifest.postprocess;
    let pixel_threshold = pp.threshold;
    let maps = probability_maps(bundle, volume, &norm, batch, pp.flip_tta);
    let native = smooth_across_slices(maps, volume.one_grid(), pp.slice_smoothing);
    let mut masks = masks_from_probabilities(volume, &native, pixel_threshold, pp);
    let class_probs: Option<Vec<f32>> = bundle.classifier.as_ref().and_then(|c| {
        let inputs: Vec<Vec<f32>> = volume
            .slices
            .par_iter()
            .map(|s| prepare_image(&s.rgb, s.width, s.height, &norm, c.config.input_size))
            .collect();
        let refs: Vec<&[f32]> = inputs.iter().map(Vec::as_slice).collect();
        bundle.classifier_probabilities(&refs, batch)
    });
    let pixels: Vec<u64> = masks.iter().map(|m| m.iter().map(|&v| v as u64).sum()).collect();
    let mut calls: Vec<(f64, bool)> = (0..volume.slices.len())
        .map(|i| {
            let px = pixels[i];
            let seg = || segmentation_score(&native[i], px, pixel_threshold);
            let cls = class_probs.as_ref().map(|c| c[i] as f64);
            match (&bundle.manifest.detection, cls) {
                (
                    DetectionRule::Segmentation {
                        min_pixels,
                        min_probability,
                        ..
                    },
                    _,
                ) => {
                    // Equal to the plain score wherever the mask is large enough to count.
                    let s = pixel_rule_score(&native[i], px, *min_pixels, pixel_threshold);
                    (s, px >= (*min_pixels).max(1) && s >= *min_probability)
                }
                (DetectionRule::Classifier { threshold, require_mask }, Some(c)) => {
                    let s = classifier_score(c, px, *require_mask);
                    (s, (px > 0 || !require_mask) && s >= opts.threshold.unwrap_or(*threshold))
                }
                (DetectionRule::Combined { threshold, require_mask }, Some(c)) => {
                    let m = combined_score(c, seg(), px, *require_mask);
                    (m, (px > 0 || !require_mask) && m >= opts.threshold.unwrap_or(*threshold))
                }
                // A rule that needs the classifier always loads it (ModelBundle::load).
                (_, None) => (seg(), px > 0),
            }
        })
        .collect();
    if let DetectionRule::Segmentation { slice_context: true, .. } = bundle.manifest.detection {
        let mut scores: Vec<f64> = calls.iter().map(|c| c.0).collect();
        in_slice_context(&mut scores, pixel_threshold);
        calls.iter_mut().zip(scores).for_each(|(c, s)| c.0 = s);
    }
    if let (DetectionRule::Segmentation { .. }, Some(t)) = (&bundle.manifest.detection, opts.threshold) {
        // The user's cut is on the reported score: at or above the pixel threshold that is the
        // rule's own call with a floor on the peak probability; below it, slices without an
        // outline (a tumour's thin ends first, under slice context) are called too. The score is
        // compared unrounded, as `evaluate detect` lists its operating points (the CSV's 4
        // decimals can show 0.2500 for 0.24995, and 1.0000 for a score under 1).
        calls.iter_mut().for_each(|c| c.1 = c.0 >= t);
    }
    volume
        .slices
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let mut mask = std::mem::take(&mut masks[i]);
            let (prob, positive) = calls[i];
            if !positive && !opts.keep_masks_of_negatives {
                mask.iter_mut().for_each(|v| *v = 0);
            }
            let pixels = mask.iter().map(|&v| v as u64).sum::<u64>();
            let b = bbox(&mask, s.width);
            SlicePrediction {
                file: s.label.clone(),
                volume: volume.id.clone(),
                stem: s.stem.clone(),
                slice: s.number,
                tumor_probability: (prob * 1e4).round() / 1e4,
                has_tumor: positive as u8,
                tumor_pixels: pixels,
                tumor_area_mm2: s.spacing_mm.map(|(a, b)| ((pixels as f64 * a * b) * 100.0).round() / 100.0),
                bbox_x: b.map(|b| b.0),
                bbox_y: b.map(|b| b.1),
                bbox_width: b.map(|b| b.2),
                bbox_height: b.map(|b| b.3),
                width: s.width,
                height: s.height,
                notes: s.notes.join("; "),
                mask,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pixel_rule_score_is_under_the_threshold_exactly_below_the_pixel_count() {
        let p = [0.1f32, 0.93, 0.2];
        assert_eq!(pixel_rule_score(&p, 8, 8, 0.5), 0.93f32 as f64);
        assert_eq!(pixel_rule_score(&p, 20, 8, 0.5), 0.93f32 as f64);
        for px in [0, 1, 7] {
            let s = pixel_rule_score(&p, px, 8, 0.5);
            assert!(s < 0.5 && s > 0.49, "{px}: {s}");
        }
        // A rule of 0 pixels means at least one.
        assert!(pixel_rule_score(&p, 0, 0, 0.5) < 0.5);
        assert_eq!(pixel_rule_score(&p, 1, 0, 0.5), 0.93f32 as f64);
    }

    #[test]
    fn segmentation_score_stays_under_the_pixel_threshold_without_a_mask() {
        let p = [0.1f32, 0.93, 0.2];
        assert_eq!(segmentation_score(&p, 4, 0.5), 0.93f32 as f64);
        // The mask was cleaned away: still below the threshold, whatever the raw maximum.
        let s = segmentation_score(&p, 0, 0.5);
        assert!(s < 0.5 && s > 0.49, "{s}");
        // Below the threshold the raw maximum orders tumour-free slices.
        assert!(segmentation_score(&[0.3], 0, 0.5) > segmentation_score(&[0.05], 0, 0.5));
        assert_eq!(segmentation_score(&[0.3], 0, 0.5), 0.3f32 as f64);
        assert_eq!(gate(0.8, 0), 0.0);
    }

    #[test]
    fn slice_context_keeps_the_calls_and_ranks_neighbours_of_outlines_first() {
        // Slices 1-2 have outlines; 0 and 3 are their neighbours; 4-5 are far from them.
        let mut s = vec![0.01, 0.9, 0.7, 0.2, 0.001, 0.45];
        in_slice_context(&mut s, 0.5);
        assert_eq!((s[1], s[2]), (0.9, 0.7), "outlined slices keep their score");
        assert!((s[0] - 0.255).abs() < 1e-12 && (s[3] - 0.35).abs() < 1e-12, "{s:?}");
        assert!((s[4] - 0.0005).abs() < 1e-12 && (s[5] - 0.225).abs() < 1e-12, "{s:?}");
        // Same calls at the threshold; every neighbour of an outline above every other slice.
        assert!(s.iter().enumerate().all(|(i, &v)| (v >= 0.5) == (i == 1 || i == 2)));
        assert!(s[0].min(s[3]) > s[4].max(s[5]));
        // Within a band the slice's own score still orders.
        assert!(s[3] > s[0] && s[5] > s[4]);
        // Next to an outline, a slice just under the threshold stays under it as reported.
        let mut edge = vec![0.9, 0.4999];
        in_slice_context(&mut edge, 0.5);
        assert!(((edge[1] * 1e4).round() / 1e4) < 0.5, "{edge:?}");
        // A lone slice has no neighbours to be ranked by.
        let mut one = vec![0.3];
        in_slice_context(&mut one, 0.5);
        assert_eq!(one, vec![0.3]);
        // Bundles written before the field keep the stored rule.
        let old: crate::models::DetectionRule = serde_json::from_str(r#"{"kind": "segmentation", "min_pixels": 8}"#).unwrap();
        assert!(matches!(
            old,
            crate::models::DetectionRule::Segmentation { slice_context: false, .. }
        ));
    }

    #[test]
    fn classifier_rules_gate_by_the_mask_only_when_they_require_one() {
        assert_eq!(classifier_score(0.8, 0, true), 0.0);
        assert_eq!(classifier_score(0.8, 0, false), 0.8);
        assert_eq!(classifier_score(0.8, 5, true), 0.8);
        assert_eq!(combined_score(0.8, 0.4, 0, true), 0.0);
        assert!((combined_score(0.8, 0.4, 0, false) - 0.6).abs() < 1e-12);
        // Bundles written before `require_mask` existed keep their behaviour.
        let old: crate::models::DetectionRule = serde_json::from_str(r#"{"kind": "combined", "threshold": 0.4}"#).unwrap();
        assert_eq!(
            old,
            crate::models::DetectionRule::Combined {
                threshold: 0.4,
                require_mask: true
            }
        );
    }
}
