//! Mask clean-up: drop connected components under N pixels per slice; keep only a patient's
//! best 3D component (largest, most probability mass, or highest peak), or those of at least a
//! fraction of the largest's size (26-connected across neighbouring slices); grow the kept
//! outline into lower probability that connects to it (hysteresis). Before thresholding, the
//! probability maps can be averaged with the neighbouring slices' ([`smooth_across_slices`]).

use serde::{Deserialize, Serialize};

/// How [`keep_best_3d`] ranks a patient's 3D components.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ComponentRank {
    /// Most voxels (what bundles before the choice was recorded do).
    #[default]
    Voxels,
    /// Highest summed probability over the component's voxels.
    Mass,
    /// Highest single-voxel probability (to 1e-6); ties go to the larger component.
    Peak,
}

/// Remove 8-connected components smaller than `min_pixels` from a 0/1 mask (in place).
/// Returns the number of components removed.
pub fn drop_small_components(mask: &mut [u8], w: usize, h: usize, min_pixels: usize) -> usize {
    if min_pixels <= 1 {
        return 0;
    }
    let mut label = vec![0u32; mask.len()];
    let mut removed = 0;
    let mut next = 0;
    for start in 0..mask.len() {
        if mask[start] == 0 || label[start] != 0 {
            continue;
        }
        next += 1;
        let mut stack = vec![start];
        let mut comp = Vec::new();
        label[start] = next;
        while let Some(i) = stack.pop() {
            comp.push(i);
            let (x, y) = ((i % w) as i64, (i / w) as i64);
            for dy in -1..=1 {
                for dx in -1..=1 {
                    let (nx, ny) = (x + dx, y + dy);
                    if nx >= 0 && ny >= 0 && (nx as usize) < w && (ny as usize) < h {
                        let j = ny as usize * w + nx as usize;
                        if mask[j] != 0 && label[j] == 0 {
                            label[j] = next;
                            stack.push(j);
                        }
                    }
                }
            }
        }
        if comp.len() < min_pixels {
            removed += 1;
            for i in comp {
                mask[i] = 0;
            }
        }
    }
    removed
}

/// Keep only the best 3D connected component over a patient's slices (all the same size, in
/// slice order) by `rank`; `probs` are the probability maps the masks were thresholded from
/// (unused for [`ComponentRank::Voxels`]). Returns the voxels removed.
pub fn keep_best_3d(masks: &mut [Vec<u8>], probs: &[Vec<f32>], w: usize, h: usize, rank: ComponentRank) -> usize {
    let (label, sizes) = label_3d(masks, w, h);
    let plane = w * h;
    let prob = |i: usize| probs.get(i / plane).and_then(|p| p.get(i % plane)).copied().unwrap_or(0.0) as f64;
    // Per label: (primary score, voxels); the last of equal keys wins, as max_by does.
    let mut keys: Vec<(f64, usize)> = sizes.iter().map(|&n| (0.0, n)).collect();
    match rank {
        ComponentRank::Voxels => keys.iter_mut().for_each(|k| k.0 = k.1 as f64),
        ComponentRank::Mass => label
            .iter()
            .enumerate()
            .filter(|(_, &l)| l != 0)
            .for_each(|(i, &l)| keys[l as usize].0 += prob(i)),
        ComponentRank::Peak => label.iter().enumerate().filter(|(_, &l)| l != 0).for_each(|(i, &l)| {
            let k = &mut keys[l as usize];
            k.0 = k.0.max((prob(i) * 1e6).round());
        }),
    }
    let Some((best, _)) = keys
        .iter()
        .enumerate()
        .skip(1)
        .max_by(|(_, a), (_, b)| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal))
    else {
        return 0;
    };
    remove_labels(masks, plane, &label, |l| l != best)
}

/// Keep the 3D connected components with at least `fraction` of the largest one's voxels; the
/// rest go. Unlike [`keep_best_3d`], a true tumour survives next to a false component of
/// similar size. Returns the voxels removed.
pub fn keep_large_3d(masks: &mut [Vec<u8>], w: usize, h: usize, fraction: f32) -> usize {
    let (label, sizes) = label_3d(masks, w, h);
    let largest = sizes.iter().copied().max().unwrap_or(0);
    let floor = fraction.clamp(0.0, 1.0) as f64 * largest as f64;
    remove_labels(masks, w * h, &label, |l| (sizes[l] as f64) < floor)
}

/// Hysteresis: add to the masks every voxel whose probability is at least `low` and that is
/// 26-connected (through such voxels) to a voxel already in the masks. Weak probability counts
/// only where it continues a kept outline, e.g. a tumour's thin end slices. Returns the voxels
/// added.
pub fn grow_into(masks: &mut [Vec<u8>], probs: &[Vec<f32>], w: usize, h: usize, low: f32) -> usize {
    let plane = w * h;
    let depth = masks.len().min(probs.len());
    let mut stack: Vec<usize> = (0..depth * plane).filter(|&i| masks[i / plane][i % plane] != 0).collect();
    let mut added = 0;
    while let Some(i) = stack.pop() {
        for n in neighbours_26(i, w, h, depth) {
            let (k, j) = (n / plane, n % plane);
            if masks[k][j] == 0 && probs[k].get(j).is_some_and(|&p| p >= low) {
                masks[k][j] = 1;
                added += 1;
                stack.push(n);
            }
        }
    }
    added
}

/// Average each slice's probability map with its neighbours' in the volume (slice order):
/// `(1 - 2 weight) p[i] + weight (p[i-1] + p[i+1])`, an end slice giving its missing neighbour's
/// weight to itself. A tumour is a 3D object: this lifts a thin end slice beside a confident one
/// and damps probability no neighbour shares. Slices that do not share one pixel grid
/// (`one_grid` false: slices of different sizes), a single slice and a weight of 0 leave the maps
/// as they are; the weight is clamped to [0, 0.5].
pub fn smooth_across_slices(maps: Vec<Vec<f32>>, one_grid: bool, weight: f32) -> Vec<Vec<f32>> {
    let w = weight.clamp(0.0, 0.5);
    if w == 0.0 || maps.len() < 2 || !one_grid || maps.windows(2).any(|m| m[0].len() != m[1].len()) {
        return maps;
    }
    (0..maps.len())
        .map(|i| {
            let (before, after) = (i.checked_sub(1).map(|k| &maps[k]), maps.get(i + 1));
            let centre = 1.0 - w * f32::from(u8::from(before.is_some()) + u8::from(after.is_some()));
            maps[i]
                .iter()
                .enumerate()
                .map(|(j, &p)| centre * p + w * (before.map_or(0.0, |m| m[j]) + after.map_or(0.0, |m| m[j])))
                .collect()
        })
        .collect()
}

/// The 26-connected neighbours of voxel `i` in a stack of `depth` slices of w x h.
fn neighbours_26(i: usize, w: usize, h: usize, depth: usize) -> impl Iterator<Item = usize> {
    let plane = w * h;
    let (z, r) = ((i / plane) as i64, i % plane);
    let (x, y) = ((r % w) as i64, (r / w) as i64);
    (-1..=1i64)
        .flat_map(move |dz| (-1..=1i64).flat_map(move |dy| (-1..=1i64).map(move |dx| (x + dx, y + dy, z + dz))))
        .filter(move |&(nx, ny, nz)| nx >= 0 && ny >= 0 && nz >= 0 && (nx as usize) < w && (ny as usize) < h && (nz as usize) < depth)
        .map(move |(nx, ny, nz)| nz as usize * plane + ny as usize * w + nx as usize)
}

/// 26-connected labels of a stack of same-size masks (0 = background) and each label's voxel
/// count (`sizes[0]` is unused).
fn label_3d(masks: &[Vec<u8>], w: usize, h: usize) -> (Vec<u32>, Vec<usize>) {
    let plane = w * h;
    let total = masks.len() * plane;
    let at = |i: usize| masks[i / plane][i % plane];
    let mut label = vec![0u32; total];
    let mut sizes = vec![0usize];
    for start in 0..total {
        if at(start) == 0 || label[start] != 0 {
            continue;
        }
        let id = sizes.len() as u32;
        sizes.push(0);
        let mut stack = vec![start];
        label[start] = id;
        while let Some(i) = stack.pop() {
            sizes[id as usize] += 1;
            for j in neighbours_26(i, w, h, masks.len()) {
                if at(j) != 0 && label[j] == 0 {
                    label[j] = id;
                    stack.push(j);
                }
            }
        }
    }
    (label, sizes)
}

/// Zero the voxels whose (non-zero) label `remove` selects; returns how many.
fn remove_labels(masks: &mut [Vec<u8>], plane: usize, label: &[u32], remove: impl Fn(usize) -> bool) -> usize {
    let mut removed = 0;
    for (i, &l) in label.iter().enumerate() {
        if l != 0 && remove(l as usize) {
            masks[i / plane][i % plane] = 0;
            removed += 1;
        }
    }
    removed
}

#[cfg(test)]
mod tests {

    #[test]
    fn smoothing_averages_each_slice_with_its_neighbours() {
        let maps = vec![vec![1.0, 0.0], vec![0.0, 0.0], vec![0.0, 1.0]];
        let s = smooth_across_slices(maps.clone(), true, 0.25);
        // Middle: 0.5 * own + 0.25 * each neighbour; ends: 0.75 * own + 0.25 * the one neighbour.
        assert_eq!(s, vec![vec![0.75, 0.0], vec![0.25, 0.25], vec![0.0, 0.75]]);
        assert_eq!(smooth_across_slices(maps.clone(), true, 0.0), maps);
        assert_eq!(smooth_across_slices(vec![vec![0.3]], true, 0.25), vec![vec![0.3]]);
        // Slices of different sizes share no pixel grid, even with equal pixel counts.
        assert_eq!(smooth_across_slices(maps.clone(), false, 0.25), maps);
        let mixed = vec![vec![1.0], vec![0.0, 0.0]];
        assert_eq!(smooth_across_slices(mixed.clone(), true, 0.25), mixed);
        // A constant volume stays constant at any weight (the weights sum to 1).
        let flat = smooth_across_slices(vec![vec![0.6; 3]; 4], true, 0.5);
        assert!(flat.iter().flatten().all(|&p| (p - 0.6).abs() < 1e-6));
    }

    use super::*;

    #[test]
    fn small_components_go_large_stay() {
        let mut m = vec![0u8; 25];
        m[0] = 1; // single pixel
        for i in [12, 13, 17, 18] {
            m[i] = 1;
        }
        assert_eq!(drop_small_components(&mut m, 5, 5, 3), 1);
        assert_eq!(m.iter().filter(|&&v| v == 1).count(), 4);
    }

    #[test]
    fn largest_3d_component_survives() {
        let mut masks = vec![vec![0u8; 9]; 3];
        masks[0][4] = 1;
        masks[1][4] = 1; // connected across slices to the one above: size 2
        masks[2][0] = 1; // diagonal neighbour in 3D of masks[1][4]? (dx=-1, dy=-1, dz=1): yes
        masks[2][8] = 1; // also diagonal: all one component of 4? (masks[1][4] touches both)
        let probs = vec![vec![0.9f32; 9]; 3];
        assert_eq!(keep_best_3d(&mut masks, &probs, 3, 3, ComponentRank::Voxels), 0);
        let mut masks = vec![vec![0u8; 16]; 2];
        masks[0][0] = 1;
        masks[1][10] = 1;
        masks[1][11] = 1;
        assert_eq!(keep_best_3d(&mut masks, &[], 4, 4, ComponentRank::Voxels), 1);
        assert_eq!(masks[0][0], 0);
    }

    #[test]
    fn mass_and_peak_can_prefer_a_smaller_component() {
        // One 8x8 slice: a 6-pixel blob at 0.55 (mass 3.3) and a 4-pixel blob at 0.95 (mass 3.8).
        let (big, small) = ([0, 1, 2, 8, 9, 10], [5, 6, 13, 14]);
        let mut probs = vec![vec![0.0f32; 64]];
        big.iter().for_each(|&i| probs[0][i] = 0.55);
        small.iter().for_each(|&i| probs[0][i] = 0.95);
        // The indices of the pixels `rank` keeps, and how many it removed.
        fn kept(probs: &[Vec<f32>], rank: ComponentRank) -> (usize, Vec<usize>) {
            let mut m = vec![probs[0].iter().map(|&p| (p >= 0.5) as u8).collect::<Vec<u8>>()];
            let removed = keep_best_3d(&mut m, probs, 8, 8, rank);
            (removed, m[0].iter().enumerate().filter(|(_, &v)| v == 1).map(|(i, _)| i).collect())
        }
        assert_eq!(kept(&probs, ComponentRank::Voxels), (4, big.to_vec()));
        assert_eq!(kept(&probs, ComponentRank::Mass), (6, small.to_vec()));
        assert_eq!(kept(&probs, ComponentRank::Peak), (6, small.to_vec()));
        // Equal peaks: the larger component wins.
        small.iter().for_each(|&i| probs[0][i] = 0.55);
        assert_eq!(kept(&probs, ComponentRank::Peak), (4, big.to_vec()));
        // Mass: 6 x 0.55 = 3.3 beats 4 x 0.8 = 3.2.
        small.iter().for_each(|&i| probs[0][i] = 0.8);
        assert_eq!(kept(&probs, ComponentRank::Mass), (4, big.to_vec()));
    }

    #[test]
    fn growing_adds_weak_voxels_connected_to_the_outline_only() {
        // Two 4x4 slices. Slice 0: an outline pixel (0.9) and a weak neighbour (0.35); a weak
        // pixel far from it (0.35, not connected through weak pixels). Slice 1: a weak pixel
        // diagonally below the outline (connected across slices) and a weaker one (0.1).
        let mut probs = vec![vec![0.0f32; 16]; 2];
        probs[0][5] = 0.9;
        probs[0][6] = 0.35;
        probs[0][15] = 0.35;
        probs[1][0] = 0.35;
        probs[1][10] = 0.1;
        let outline =
            |probs: &[Vec<f32>]| -> Vec<Vec<u8>> { probs.iter().map(|p| p.iter().map(|&v| (v >= 0.5) as u8).collect()).collect() };
        let mut masks = outline(&probs);
        assert_eq!(grow_into(&mut masks, &probs, 4, 4, 0.3), 2);
        assert_eq!((masks[0][5], masks[0][6], masks[1][0]), (1, 1, 1));
        assert_eq!((masks[0][15], masks[1][10]), (0, 0), "not connected, or too weak");
        // Chains: 6 grew, so a weak voxel touching only 6 grows (slice 1, 11), and the far weak
        // pixel, which touches 11 across the slices, now joins through it.
        probs[1][11] = 0.4;
        let mut masks = outline(&probs);
        assert_eq!(grow_into(&mut masks, &probs, 4, 4, 0.3), 4);
        assert_eq!((masks[1][11], masks[0][15]), (1, 1));
        // Nothing to grow from: nothing added.
        let mut empty = vec![vec![0u8; 16]; 2];
        assert_eq!(grow_into(&mut empty, &probs, 4, 4, 0.3), 0);
    }

    #[test]
    fn components_above_the_fraction_survive() {
        // Three separate blobs in one 8x8 slice: 6, 4 and 1 pixels.
        let blobs = [vec![0, 1, 2, 8, 9, 10], vec![5, 6, 13, 14], vec![63]];
        let fresh = || {
            let mut m = vec![vec![0u8; 64]];
            blobs.iter().flatten().for_each(|&i| m[0][i] = 1);
            m
        };
        let mut masks = fresh();
        assert_eq!(keep_large_3d(&mut masks, 8, 8, 0.5), 1);
        assert!(blobs[0].iter().chain(&blobs[1]).all(|&i| masks[0][i] == 1));
        assert_eq!(masks[0][63], 0);
        let mut masks = fresh();
        assert_eq!(keep_large_3d(&mut masks, 8, 8, 0.7), 5);
        assert_eq!(masks[0].iter().map(|&v| v as usize).sum::<usize>(), 6);
        let mut masks = fresh();
        assert_eq!(keep_large_3d(&mut masks, 8, 8, 0.0), 0);
        let mut empty = vec![vec![0u8; 64]; 2];
        assert_eq!(keep_large_3d(&mut empty, 8, 8, 0.5), 0);
    }
}
