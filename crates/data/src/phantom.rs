//! Synthetic brain phantoms for tests and demos: an ellipse "brain" with a brighter disc
//! "tumour" on some slices, in the LGG layout (in memory, or written as PNG files).

use crate::layout::institution_of;
use crate::load::{LoadedDataset, Patient, Slice};
use std::path::Path;

/// One phantom slice of `size x size`: tumour disc of `radius` pixels (0 for none) at `(cx, cy)`.
pub fn phantom_slice(patient: &str, number: u32, size: u32, tumor: Option<(f32, f32, f32)>) -> Slice {
    let (w, h) = (size, size);
    let mut image = vec![0u8; (w * h * 3) as usize];
    let mut mask = vec![0u8; (w * h) as usize];
    for y in 0..h {
        for x in 0..w {
            let (fx, fy) = (x as f32 / w as f32 - 0.5, y as f32 / h as f32 - 0.5);
            let i = (y * w + x) as usize;
            if fx * fx / 0.16 + fy * fy / 0.2 < 1.0 {
                let base = 90 + ((x * 7 + y * 13 + number * 3) % 20) as u8;
                image[i * 3] = base;
                image[i * 3 + 1] = base;
                image[i * 3 + 2] = base.saturating_sub(10);
            }
            if let Some((cx, cy, r)) = tumor {
                let (dx, dy) = (x as f32 - cx * w as f32, y as f32 - cy * h as f32);
                if dx * dx + dy * dy <= r * r {
                    mask[i] = 1;
                    image[i * 3 + 1] = 230; // bright on FLAIR
                    image[i * 3] = image[i * 3].saturating_add(20);
                }
            }
        }
    }
    Slice {
        patient: patient.into(),
        number,
        image_path: Default::default(),
        mask_path: Default::default(),
        width: w,
        height: h,
        image,
        mask,
    }
}

/// `patients` phantom patients of `slices` slices each; tumours on the middle slices.
pub fn phantom_dataset(patients: usize, slices: u32, size: u32) -> LoadedDataset {
    let insts = ["AA", "BB", "CC"];
    let patients = (0..patients)
        .map(|p| {
            let id = format!("TCGA_{}_{:04}_20000101", insts[p % insts.len()], p);
            let slices = (1..=slices)
                .map(|n| {
                    let mid = (slices as f32 + 1.0) / 2.0;
                    let d = (n as f32 - mid).abs();
                    let tumor = (d < slices as f32 / 4.0).then_some((0.4 + 0.05 * (p % 3) as f32, 0.45, size as f32 * (0.15 - 0.03 * d)));
                    phantom_slice(&id, n, size, tumor)
                })
                .collect();
            Patient {
                institution: institution_of(&id),
                id,
                slices,
            }
        })
        .collect();
    LoadedDataset {
        root: Default::default(),
        patients,
        clinical: None,
        content_key: "phantom".into(),
        from_cache: false,
    }
}

/// Write a dataset in the Kaggle layout as PNG files (`<root>/<patient>/<patient>_<n>.png`).
pub fn write_dataset(ds: &LoadedDataset, root: &Path) -> std::io::Result<()> {
    for p in &ds.patients {
        let dir = root.join(&p.id);
        std::fs::create_dir_all(&dir)?;
        for s in &p.slices {
            let img = image::RgbImage::from_raw(s.width, s.height, s.image.clone()).ok_or_else(|| std::io::Error::other("size"))?;
            img.save(dir.join(format!("{}_{}.png", p.id, s.number)))
                .map_err(std::io::Error::other)?;
            let m = image::GrayImage::from_raw(s.width, s.height, s.mask.iter().map(|&v| v * 255).collect())
                .ok_or_else(|| std::io::Error::other("size"))?;
            m.save(dir.join(format!("{}_{}_mask.png", p.id, s.number)))
                .map_err(std::io::Error::other)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_phantoms_load_back_identically() {
        let ds = phantom_dataset(2, 5, 32);
        let dir = tempfile::tempdir().unwrap();
        write_dataset(&ds, dir.path()).unwrap();
        let back = crate::load_dataset(dir.path(), &Default::default()).unwrap();
        assert_eq!(back.patients.len(), 2);
        for (a, b) in ds.patients.iter().zip(&back.patients) {
            for (x, y) in a.slices.iter().zip(&b.slices) {
                assert_eq!((&x.image, &x.mask), (&y.image, &y.mask));
            }
        }
        assert!(back.slices().any(|s| s.has_tumor()) && back.slices().any(|s| !s.has_tumor()));
    }
}
