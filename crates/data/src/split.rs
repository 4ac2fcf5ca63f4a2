//! Patient-level cross-validation folds, stratified by institution and tumour burden.
//!
//! Patients are grouped into strata (institution x tercile of total tumour pixels), shuffled
//! within each stratum with the seed, and dealt out one by one to the fold that currently has
//! the fewest patients (ties to the lowest fold). No patient is ever in two folds, fold sizes
//! differ by at most one, and the same seed always gives the same folds.

use crate::load::LoadedDataset;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// One row of `folds.csv`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FoldRow {
    /// Patient folder name.
    pub patient: String,
    /// Fold index, 0-based.
    pub fold: usize,
    /// Institution code.
    pub institution: String,
    /// Tumour-burden tercile (0 low, 1 mid, 2 high).
    pub burden: u8,
    /// Slices with tumour.
    pub tumor_slices: usize,
    /// Total tumour pixels.
    pub tumor_pixels: u64,
}

/// Split `ds` into `folds` patient-disjoint folds.
pub fn split_patients(ds: &LoadedDataset, folds: usize, seed: u64) -> Vec<FoldRow> {
    let folds = folds.max(1);
    let mut burdens: Vec<u64> = ds.patients.iter().map(|p| p.tumor_pixels()).collect();
    burdens.sort_unstable();
    let cut = |f: f64| {
        burdens
            .get(((burdens.len().saturating_sub(1)) as f64 * f).round() as usize)
            .copied()
            .unwrap_or(0)
    };
    let (t1, t2) = (cut(1.0 / 3.0), cut(2.0 / 3.0));
    let mut strata: BTreeMap<(String, u8), Vec<FoldRow>> = BTreeMap::new();
    for p in &ds.patients {
        let px = p.tumor_pixels();
        let burden = if px <= t1 {
            0
        } else if px <= t2 {
            1
        } else {
            2
        };
        strata.entry((p.institution.clone(), burden)).or_default().push(FoldRow {
            patient: p.id.clone(),
            fold: 0,
            institution: p.institution.clone(),
            burden,
            tumor_slices: p.slices.iter().filter(|s| s.has_tumor()).count(),
            tumor_pixels: px,
        });
    }
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut sizes = vec![0usize; folds];
    let mut out = Vec::new();
    for (_, mut rows) in strata {
        rows.shuffle(&mut rng);
        for mut r in rows {
            let min = *sizes.iter().min().unwrap_or(&0);
            // Rotate the starting fold with the seed so small strata do not always land in fold 0.
            let candidates: Vec<usize> = (0..folds).filter(|&f| sizes[f] == min).collect();
            let f = candidates[rand::Rng::random_range(&mut rng, 0..candidates.len())];
            sizes[f] += 1;
            r.fold = f;
            out.push(r);
        }
    }
    out.sort_by(|a, b| a.patient.cmp(&b.patient));
    out
}

/// Read a `folds.csv` written by `dataset split`.
pub fn read_folds(path: &Path) -> crate::Result<Vec<FoldRow>> {
    let bytes = crate::image_io::read_bytes(path)?;
    let mut rdr = csv::Reader::from_reader(&bytes[..]);
    let rows: Result<Vec<FoldRow>, _> = rdr.deserialize().collect();
    let rows = rows.map_err(|e| crate::DataError::invalid(path, format!("malformed folds CSV: {e}")))?;
    let mut seen = std::collections::HashSet::new();
    for r in &rows {
        if !seen.insert(&r.patient) {
            return Err(crate::DataError::invalid(path, format!("patient {} is listed twice", r.patient)));
        }
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::{Patient, Slice};

    fn dataset(n: usize) -> LoadedDataset {
        let insts = ["CS", "DU", "FG", "HT"];
        let patients = (0..n)
            .map(|i| {
                let id = format!("TCGA_{}_{i:04}_20000101", insts[i % 4]);
                let slices = (0..3)
                    .map(|k| Slice {
                        patient: id.clone(),
                        number: k + 1,
                        image_path: Default::default(),
                        mask_path: Default::default(),
                        width: 4,
                        height: 4,
                        image: vec![0; 48],
                        mask: (0..16).map(|j| (j < (i * 7 % 13) && k == 1) as u8).collect(),
                    })
                    .collect();
                Patient {
                    id,
                    institution: insts[i % 4].into(),
                    slices,
                }
            })
            .collect();
        LoadedDataset {
            root: Default::default(),
            patients,
            clinical: None,
            content_key: String::new(),
            from_cache: false,
        }
    }

    #[test]
    fn disjoint_balanced_stratified_deterministic() {
        let ds = dataset(80);
        let a = split_patients(&ds, 5, 42);
        assert_eq!(a, split_patients(&ds, 5, 42));
        assert_ne!(a, split_patients(&ds, 5, 43));
        assert_eq!(a.len(), 80);
        let mut ids: Vec<_> = a.iter().map(|r| &r.patient).collect();
        ids.dedup();
        assert_eq!(ids.len(), 80, "no patient in two folds");
        for f in 0..5 {
            assert_eq!(a.iter().filter(|r| r.fold == f).count(), 16);
            // Each institution (20 patients) spreads 4 per fold; each burden tercile too, +-1.
            for inst in ["CS", "DU", "FG", "HT"] {
                let n = a.iter().filter(|r| r.fold == f && r.institution == inst).count();
                assert!((3..=5).contains(&n), "fold {f} {inst}: {n}");
            }
            for b in 0..3 {
                let total = a.iter().filter(|r| r.burden == b).count();
                let n = a.iter().filter(|r| r.fold == f && r.burden == b).count();
                assert!((n as f64 - total as f64 / 5.0).abs() <= 2.0, "fold {f} burden {b}: {n} of {total}");
            }
        }
    }
}
