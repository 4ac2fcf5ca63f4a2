//! Patient-level cross-validation folds, stratified by institution and tumour burden.
//!
//! Patients are grouped into strata (institution x tercile of total tumour pixels), shuffled
//! within each stratum with the seed, and dealt out one by one, stratum after stratum, to one
//! of the folds that currently have the fewest patients (chosen with the seed). No patient is
//! ever in two folds (folders of one case, [`case_of`], count as one patient), fold sizes
//! differ by at most one, and the same seed always gives the same folds. A stratum is spread
//! only as evenly as the running fold sizes allow: on the 80 development patients (seed 42)
//! fold 1 holds 8 of the 26 high-burden patients and folds 2-4 hold 4 each.

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
    /// Institution code (informational, like the columns below: a hand-made file with only
    /// `patient,fold` is read).
    #[serde(default)]
    pub institution: String,
    /// Tumour-burden tercile (0 low, 1 mid, 2 high).
    #[serde(default)]
    pub burden: u8,
    /// Slices with tumour.
    #[serde(default)]
    pub tumor_slices: usize,
    /// Total tumour pixels.
    #[serde(default)]
    pub tumor_pixels: u64,
}

/// The case a patient folder belongs to: `TCGA_CS_4942` for `TCGA_CS_4942_19970222` (and for a
/// copy or a second scan of it, `TCGA_CS_4942_19970222 (copy)`); other names are their own case.
pub fn case_of(id: &str) -> &str {
    let mut ends = id.match_indices('_').map(|(i, _)| i);
    let tcga = id.get(..5).is_some_and(|p| p.eq_ignore_ascii_case("TCGA_"));
    match (tcga, ends.nth(2)) {
        (true, Some(end)) => &id[..end],
        _ => id,
    }
}

/// The case of a patient folder, by the name its slice files give (a copy renamed
/// `copy_of_7602` still holds `TCGA_HT_7602_19951103_<n>.png`), else its folder name; in
/// capitals, as names differ in case.
pub fn case_key(p: &crate::Patient) -> String {
    let named = p.slices.first().and_then(|s| {
        let stem = s.image_path.file_stem()?.to_string_lossy().to_string();
        crate::layout::parse_slice_stem(&stem).map(|(prefix, _, _)| prefix.to_string())
    });
    case_of(named.as_deref().unwrap_or(&p.id)).to_ascii_uppercase()
}

/// Patient folders that share a case ([`case_key`]), each group in the dataset's order: split
/// keeps each group in one fold.
pub fn shared_cases(ds: &LoadedDataset) -> Vec<(String, Vec<String>)> {
    let mut cases: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for p in &ds.patients {
        cases.entry(case_key(p)).or_default().push(p.id.clone());
    }
    cases
        .into_iter()
        .filter(|(_, ids)| ids.len() > 1)
        .map(|(case, ids)| (case.to_string(), ids))
        .collect()
}

/// Split `ds` into `folds` patient-disjoint folds. Folders of one case ([`case_of`]) are dealt
/// as one patient, so two scans (or copies) of a patient never sit in two folds.
pub fn split_patients(ds: &LoadedDataset, folds: usize, seed: u64) -> Vec<FoldRow> {
    let folds = folds.max(1);
    // Cases in the order of their first folder (the dataset's, sorted by id).
    let mut cases: Vec<(String, Vec<&crate::Patient>)> = Vec::new();
    for p in &ds.patients {
        let key = case_key(p);
        match cases.iter_mut().find(|(c, _)| *c == key) {
            Some((_, members)) => members.push(p),
            None => cases.push((key, vec![p])),
        }
    }
    let case_pixels = |members: &[&crate::Patient]| members.iter().map(|p| p.tumor_pixels()).sum::<u64>();
    let mut burdens: Vec<u64> = cases.iter().map(|(_, m)| case_pixels(m)).collect();
    burdens.sort_unstable();
    let cut = |f: f64| {
        burdens
            .get(((burdens.len().saturating_sub(1)) as f64 * f).round() as usize)
            .copied()
            .unwrap_or(0)
    };
    let (t1, t2) = (cut(1.0 / 3.0), cut(2.0 / 3.0));
    let mut strata: BTreeMap<(String, u8), Vec<Vec<FoldRow>>> = BTreeMap::new();
    for (_, members) in &cases {
        let px = case_pixels(members);
        let burden = if px <= t1 {
            0
        } else if px <= t2 {
            1
        } else {
            2
        };
        let rows = members
            .iter()
            .map(|p| FoldRow {
                patient: p.id.clone(),
                fold: 0,
                institution: p.institution.clone(),
                burden,
                tumor_slices: p.slices.iter().filter(|s| s.has_tumor()).count(),
                tumor_pixels: p.tumor_pixels(),
            })
            .collect();
        strata.entry((members[0].institution.clone(), burden)).or_default().push(rows);
    }
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut sizes = vec![0usize; folds];
    let mut out = Vec::new();
    for (_, mut stratum) in strata {
        stratum.shuffle(&mut rng);
        for case in stratum {
            let min = *sizes.iter().min().unwrap_or(&0);
            // Rotate the starting fold with the seed so small strata do not always land in fold 0.
            let candidates: Vec<usize> = (0..folds).filter(|&f| sizes[f] == min).collect();
            let f = candidates[rand::Rng::random_range(&mut rng, 0..candidates.len())];
            sizes[f] += 1;
            out.extend(case.into_iter().map(|r| FoldRow { fold: f, ..r }));
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
    // Spaces around a name or number (hand-edited files) are not part of it.
    let mut rdr = csv::ReaderBuilder::new().trim(csv::Trim::All).from_reader(&bytes[..]);
    let header = rdr
        .headers()
        .map_err(|e| crate::DataError::invalid(path, format!("malformed folds CSV: {e}")))?;
    if !(header.iter().any(|h| h == "patient") && header.iter().any(|h| h == "fold")) {
        return Err(crate::DataError::invalid(
            path,
            format!(
                "the first line must be the header line `patient,fold` (found `{}`); `tumorscan dataset split` writes one",
                header.iter().collect::<Vec<_>>().join(",")
            ),
        ));
    }
    let rows: Result<Vec<FoldRow>, _> = rdr.deserialize().collect();
    let rows = rows.map_err(|e| {
        crate::DataError::invalid(
            path,
            format!(
                "malformed folds CSV: {e} (expected a header line `patient,fold`, then one line per patient with its fold: 0, 1, 2, ...)"
            ),
        )
    })?;
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
    check_cases_together(&rows, path)?;
    Ok(rows)
}

/// A note when the fold numbers of `rows` are not 0, 1, ..., k-1 (as `dataset split` writes
/// them): a mistyped fold (99 among 0-4) would otherwise be trained on without a word, since
/// every fold other than the validation and test folds is training data.
pub fn fold_numbering_note(rows: &[FoldRow], path: &Path) -> Option<String> {
    let numbers: std::collections::BTreeSet<usize> = rows.iter().map(|r| r.fold).collect();
    if numbers.iter().copied().eq(0..numbers.len()) {
        return None;
    }
    let per_fold = |f: usize| rows.iter().filter(|r| r.fold == f).count();
    let listed: Vec<String> = numbers
        .iter()
        .map(|&f| match per_fold(f) {
            1 => format!("{f} (1 patient)"),
            n => format!("{f} ({n} patients)"),
        })
        .collect();
    Some(format!(
        "{} numbers its folds {}, not 0 to {}: check for a mistyped fold (every fold but the validation and test folds is trained on)",
        path.display(),
        listed.join(", "),
        numbers.len() - 1
    ))
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
    // The same case under folder names that do not show it (by the names of its files).
    let listed: Vec<(FoldRow, String)> = rows
        .iter()
        .filter_map(|r| Some((r.clone(), case_key(ds.patient(&r.patient)?))))
        .collect();
    let (listed_rows, listed_cases): (Vec<FoldRow>, Vec<String>) = listed.into_iter().unzip();
    cases_together(&listed_rows, &listed_cases, folds)?;
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

/// Refuse a `folds` file that puts folders of one case ([`case_of`]) in different folds: the
/// same patient would be trained on and tested on.
pub fn check_cases_together(rows: &[FoldRow], folds: &Path) -> crate::Result<()> {
    let cases: Vec<String> = rows.iter().map(|r| case_of(&r.patient).to_ascii_uppercase()).collect();
    cases_together(rows, &cases, folds)
}

/// [`check_cases_together`] with each row's case given (`cases[i]` is `rows[i]`'s).
fn cases_together(rows: &[FoldRow], cases: &[String], folds: &Path) -> crate::Result<()> {
    let mut fold_of: BTreeMap<&str, &FoldRow> = BTreeMap::new();
    for (r, case) in rows.iter().zip(cases) {
        match fold_of.get(case.as_str()) {
            Some(other) if other.fold != r.fold => {
                return Err(crate::DataError::invalid(
                    folds,
                    format!(
                        "puts {} in fold {} and {} in fold {}: both are case {}, one patient; \
                         rerun `tumorscan dataset split`, which keeps a case in one fold",
                        other.patient, other.fold, r.patient, r.fold, case
                    ),
                ))
            }
            Some(_) => {}
            None => {
                fold_of.insert(case, r);
            }
        }
    }
    Ok(())
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
            cached: false,
        }
    }

    /// A copy (or a second scan) of a patient was split from it: the same patient trained on
    /// and tested on.
    #[test]
    fn folders_of_one_case_share_a_fold() {
        assert_eq!(case_of("TCGA_CS_4942_19970222 (copy)"), "TCGA_CS_4942");
        assert_eq!(case_of("TCGA_CS_4942"), "TCGA_CS_4942");
        assert_eq!(case_of("patient_7"), "patient_7");
        let mut ds = dataset(8);
        let mut copy = ds.patients[3].clone();
        copy.id = format!("{}_link", copy.id);
        ds.patients.insert(4, copy);
        assert_eq!(shared_cases(&ds).len(), 1);
        for seed in 0..10 {
            let rows = split_patients(&ds, 4, seed);
            let fold = |id: &str| rows.iter().find(|r| r.patient == id).unwrap().fold;
            assert_eq!(fold(&ds.patients[3].id), fold(&ds.patients[4].id), "seed {seed}");
            let mut sizes = [0; 4];
            rows.iter().for_each(|r| sizes[r.fold] += 1);
            assert!(sizes.iter().all(|&n| n == 2 || n == 3), "seed {seed}: {sizes:?}");
        }
        let mut rows = split_patients(&ds, 2, 1);
        assert!(check_cases_together(&rows, Path::new("f.csv")).is_ok());
        let moved = rows.iter_mut().find(|r| r.patient.ends_with("_link")).unwrap();
        moved.fold = 1 - moved.fold;
        let err = check_cases_together(&rows, Path::new("f.csv")).unwrap_err().to_string();
        assert!(err.contains("one patient"), "{err}");
        // A copy renamed past recognition is known by its files' names, in any case.
        let mut renamed = ds.patients[2].clone();
        let files_name = renamed.id.to_ascii_lowercase();
        renamed.id = "copy_of_it".into();
        for s in &mut renamed.slices {
            s.image_path = format!("x/{files_name}_{}.png", s.number).into();
        }
        let mut ds = dataset(8);
        ds.patients.push(renamed);
        let rows = split_patients(&ds, 4, 3);
        let fold = |id: &str| rows.iter().find(|r| r.patient == id).unwrap().fold;
        assert_eq!(fold("copy_of_it"), fold(&ds.patients[2].id));
        let mut parted = rows.clone();
        parted.iter_mut().find(|r| r.patient == "copy_of_it").unwrap().fold = (fold("copy_of_it") + 1) % 4;
        assert!(check_cases_together(&parted, Path::new("f.csv")).is_ok(), "not visible by name");
        let err = check_lists_all(&parted, Path::new("f.csv"), &ds).unwrap_err().to_string();
        assert!(err.contains("copy_of_it") && err.contains("one patient"), "{err}");
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

    /// Hand-edited files: spaces around a name were kept (the patient then "not in the data",
    /// with the space invisible); a missing header or a negative fold gave the parser's words
    /// alone.
    #[test]
    fn hand_edited_folds_files_are_read_or_explained() {
        let dir = tempfile::tempdir().unwrap();
        let spaced = dir.path().join("spaced.csv");
        std::fs::write(&spaced, b"patient , fold\nTCGA_A_1 , 2\n  TCGA_B_2,0\n").unwrap();
        let rows = read_folds(&spaced).unwrap();
        assert_eq!((rows[0].patient.as_str(), rows[0].fold), ("TCGA_A_1", 2));
        assert_eq!(rows[1].patient, "TCGA_B_2");
        for (name, text) in [("noheader.csv", "TCGA_A_1,2\n"), ("negative.csv", "patient,fold\nTCGA_A_1,-1\n")] {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            let err = read_folds(&path).unwrap_err().to_string();
            assert!(err.contains("header line `patient,fold`"), "{name}: {err}");
        }
    }

    /// Folds numbered 0..k-1 need no word; a stray number is named with its patient count.
    #[test]
    fn fold_numbers_out_of_sequence_are_noted() {
        let row = |p: &str, fold| FoldRow {
            patient: p.into(),
            fold,
            institution: String::new(),
            burden: 0,
            tumor_slices: 0,
            tumor_pixels: 0,
        };
        let path = Path::new("folds.csv");
        assert_eq!(fold_numbering_note(&[row("a", 0), row("b", 1), row("c", 1)], path), None);
        let note = fold_numbering_note(&[row("a", 0), row("b", 1), row("c", 99)], path).expect("a note");
        assert!(note.contains("0 (1 patient), 1 (1 patient), 99 (1 patient), not 0 to 2"), "{note}");
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
