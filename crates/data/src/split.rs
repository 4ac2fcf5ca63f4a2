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
    // read_bytes calls an empty file "not a readable image"; say what was expected instead.
    if std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.len() == 0) {
        return Err(crate::DataError::invalid(
            path,
            "empty folds CSV (0 bytes); write one with `tumorscan dataset split`",
        ));
    }
    let bytes = crate::image_io::read_bytes(path)?;
    let mut rdr = csv::Reader::from_reader(&bytes[..]);
    let rows: Result<Vec<FoldRow>, _> = rdr.deserialize().collect();
    let rows = rows.map_err(|e| crate::DataError::invalid(path, format!("malformed folds CSV: {e}")))?;
    if rows.is_empty() {
        return Err(crate::DataError::invalid(
            path,
            "folds CSV lists no patients; write one with `tumorscan dataset split`",
        ));
    }
    let mut seen = std::collections::HashSet::new();
    for r in &rows {
        if !seen.insert(&r.patient) {
            return Err(crate::DataError::invalid(path, format!("patient {} is listed twice", r.patient)));
        }
    }
    Ok(rows)
}

/// Patients of `ds` that `rows` puts in no fold, in the dataset's order: a run or an evaluation
/// would leave them out without a word.
pub fn unlisted<'a>(rows: &[FoldRow], ds: &'a LoadedDataset) -> Vec<&'a str> {
    let listed: std::collections::HashSet<&str> = rows.iter().map(|r| r.patient.as_str()).collect();
    ds.patients
        .iter()
        .map(|p| p.id.as_str())
        .filter(|id| !listed.contains(id))
        .collect()
}

/// The first few of `names`, then how many there are in all: "a, b, c and 2 more (5)".
pub fn name_some<S: AsRef<str>>(names: &[S]) -> String {
    const SHOWN: usize = 5;
    let head: Vec<&str> = names.iter().take(SHOWN).map(AsRef::as_ref).collect();
    match names.len() {
        n if n <= SHOWN => head.join(", "),
        n => format!("{} and {} more ({n} in all)", head.join(", "), n - SHOWN),
    }
}

/// Refuse a `folds` file that leaves out patients of `ds`, naming them: every patient of a
/// dataset must be in a fold, or training or evaluation would silently use fewer patients.
pub fn check_lists_all(rows: &[FoldRow], folds: &Path, ds: &LoadedDataset) -> crate::Result<()> {
    let missing = unlisted(rows, ds);
    if missing.is_empty() {
        return Ok(());
    }
    Err(crate::DataError::invalid(
        folds,
        format!(
            "puts {} patient(s) of {} in no fold: {}; every patient of --data must be in a fold \
             (rerun `tumorscan dataset split`, or use a --data folder without them)",
            missing.len(),
            ds.root.display(),
            name_some(&missing)
        ),
    ))
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
    fn a_folds_file_must_list_every_dataset_patient() {
        let ds = dataset(8);
        let mut rows = split_patients(&ds, 2, 1);
        let path = Path::new("folds.csv");
        assert!(check_lists_all(&rows, path, &ds).is_ok());
        // More listed than present is not this check's business (a copied subset of patients).
        let fewer = LoadedDataset {
            patients: ds.patients[..3].to_vec(),
            ..dataset(0)
        };
        assert!(check_lists_all(&rows, path, &fewer).is_ok());
        let left_out: Vec<String> = rows.drain(..7).map(|r| r.patient).collect();
        let err = check_lists_all(&rows, path, &ds).unwrap_err().to_string();
        assert!(err.contains("7 patient(s)") && err.contains("and 2 more (7 in all)"), "{err}");
        let mut missing = unlisted(&rows, &ds);
        assert!(err.contains(missing[0]) && !err.contains(missing[6]), "{err}");
        missing.sort_unstable();
        assert_eq!(missing, left_out);
        assert_eq!(name_some(&["a", "b"]), "a, b");
    }

    #[test]
    fn empty_and_header_only_folds_files_say_so() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.csv");
        std::fs::write(&empty, b"").unwrap();
        let err = read_folds(&empty).unwrap_err().to_string();
        assert!(err.contains("empty folds CSV") && !err.contains("image"), "{err}");
        let header = dir.path().join("header.csv");
        std::fs::write(&header, b"patient,fold,institution,burden,tumor_slices,tumor_pixels\n").unwrap();
        assert!(read_folds(&header).unwrap_err().to_string().contains("lists no patients"));
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
