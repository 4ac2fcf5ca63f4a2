//! Mask clean-up: drop connected components under N pixels per slice; keep only the largest
//! 3D component of a patient, or those of at least a fraction of its size (26-connected across
//! neighbouring slices).

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

/// Keep only the largest 3D connected component over a patient's slices (all the same size,
/// in slice order). Returns the voxels removed.
pub fn keep_largest_3d(masks: &mut [Vec<u8>], w: usize, h: usize) -> usize {
    let (label, sizes) = label_3d(masks, w, h);
    let Some((best, _)) = sizes.iter().enumerate().skip(1).max_by_key(|(_, &s)| s) else {
        return 0;
    };
    remove_labels(masks, w * h, &label, |l| l != best)
}

/// Keep the 3D connected components with at least `fraction` of the largest one's voxels; the
/// rest go. Unlike [`keep_largest_3d`], a true tumour survives next to a false component of
/// similar size. Returns the voxels removed.
pub fn keep_large_3d(masks: &mut [Vec<u8>], w: usize, h: usize, fraction: f32) -> usize {
    let (label, sizes) = label_3d(masks, w, h);
    let largest = sizes.iter().copied().max().unwrap_or(0);
    let floor = fraction.clamp(0.0, 1.0) as f64 * largest as f64;
    remove_labels(masks, w * h, &label, |l| (sizes[l] as f64) < floor)
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
            let (z, r) = ((i / plane) as i64, i % plane);
            let (x, y) = ((r % w) as i64, (r / w) as i64);
            for dz in -1..=1 {
                for dy in -1..=1 {
                    for dx in -1..=1 {
                        let (nx, ny, nz) = (x + dx, y + dy, z + dz);
                        if nx < 0 || ny < 0 || nz < 0 || nx as usize >= w || ny as usize >= h || nz as usize >= masks.len() {
                            continue;
                        }
                        let j = nz as usize * plane + ny as usize * w + nx as usize;
                        if at(j) != 0 && label[j] == 0 {
                            label[j] = id;
                            stack.push(j);
                        }
                    }
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
        assert_eq!(keep_largest_3d(&mut masks, 3, 3), 0);
        let mut masks = vec![vec![0u8; 16]; 2];
        masks[0][0] = 1;
        masks[1][10] = 1;
        masks[1][11] = 1;
        assert_eq!(keep_largest_3d(&mut masks, 4, 4), 1);
        assert_eq!(masks[0][0], 0);
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
