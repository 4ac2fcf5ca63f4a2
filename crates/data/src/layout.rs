//! Finding patients and slices in a `kaggle_3m`-style folder, without decoding anything.
//!
//! Layout: `<root>/<patient>/<patient>_<n>.<ext>` with `<patient>_<n>_mask.<ext>` beside it,
//! `<ext>` one of tif/tiff/png, and an optional `<root>/data.csv`. A single patient folder may
//! also be given as the root.

use crate::error::{DataError, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// File extensions accepted for slices and masks.
pub const IMAGE_EXTENSIONS: [&str; 3] = ["tif", "tiff", "png"];

/// One slice: its image and its ground-truth mask.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SliceFiles {
    /// Slice number `n` (1-based, acquisition order).
    pub number: u32,
    /// Image path.
    pub image: PathBuf,
    /// Mask path.
    pub mask: PathBuf,
}

/// One patient folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatientFiles {
    /// Folder name, e.g. `TCGA_CS_4941_19960909`.
    pub id: String,
    /// Folder path.
    pub dir: PathBuf,
    /// Slices sorted numerically.
    pub slices: Vec<SliceFiles>,
}

impl PatientFiles {
    /// Institution code from the folder name (`TCGA_CS_4941_...` -> `CS`), or `?`.
    pub fn institution(&self) -> String {
        institution_of(&self.id)
    }
}

/// Institution code of a patient id (`TCGA_<inst>_<case>_<date>`).
pub fn institution_of(id: &str) -> String {
    let parts: Vec<&str> = id.split('_').collect();
    if parts.len() >= 3 && parts[0] == "TCGA" {
        parts[1].to_string()
    } else {
        "?".to_string()
    }
}

/// The files of a dataset, found by [`scan`].
#[derive(Debug, Clone)]
pub struct DatasetLayout {
    /// Root folder given by the user.
    pub root: PathBuf,
    /// Patients sorted by id.
    pub patients: Vec<PatientFiles>,
    /// `data.csv` when present.
    pub clinical_csv: Option<PathBuf>,
}

impl DatasetLayout {
    /// Number of slices over all patients.
    pub fn slice_count(&self) -> usize {
        self.patients.iter().map(|p| p.slices.len()).sum()
    }
}

fn is_image(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .map(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
        .unwrap_or(false)
}

/// Split `<stem>` into (`prefix`, n, is_mask) for `<prefix>_<n>` / `<prefix>_<n>_mask`.
pub fn parse_slice_stem(stem: &str) -> Option<(&str, u32, bool)> {
    let (base, is_mask) = match stem.strip_suffix("_mask") {
        Some(b) => (b, true),
        None => (stem, false),
    };
    let (prefix, n) = base.rsplit_once('_')?;
    Some((prefix, n.parse().ok()?, is_mask))
}

/// Names in the order people number them: runs of digits compare by value (`slice2` before
/// `slice10`, `07` level with `7` until the end), everything else byte by byte; names equal
/// that way fall back to plain order, so the order is total.
pub fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    let (mut x, mut y) = (a.as_bytes(), b.as_bytes());
    loop {
        match (x.first(), y.first()) {
            (None, None) => return a.cmp(b),
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(c), Some(d)) if c.is_ascii_digit() && d.is_ascii_digit() => {
                let run = |s: &[u8]| s.iter().take_while(|c| c.is_ascii_digit()).count();
                let (nx, ny) = (run(x), run(y));
                // The digits without leading zeros: longer is larger, equal lengths compare as text.
                fn value(digits: &[u8]) -> &[u8] {
                    let start = digits.iter().position(|&c| c != b'0').unwrap_or(digits.len());
                    &digits[start..]
                }
                let (vx, vy) = (value(&x[..nx]), value(&y[..ny]));
                let by_value = vx.len().cmp(&vy.len()).then_with(|| vx.cmp(vy));
                if by_value != Ordering::Equal {
                    return by_value;
                }
                (x, y) = (&x[nx..], &y[ny..]);
            }
            (Some(c), Some(d)) => {
                if c != d {
                    return c.cmp(d);
                }
                (x, y) = (&x[1..], &y[1..]);
            }
        }
    }
}

fn read_dir_sorted(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| DataError::io(dir, e))? {
        let entry = entry.map_err(|e| DataError::io(dir, e))?;
        let name = entry.file_name();
        if name.to_string_lossy().starts_with('.') {
            continue;
        }
        out.push(entry.path());
    }
    out.sort();
    Ok(out)
}

fn scan_patient(dir: &Path, problems: &mut Vec<DataError>) -> Result<Option<PatientFiles>> {
    let id = dir.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
    let mut images: BTreeMap<u32, PathBuf> = BTreeMap::new();
    let mut masks: BTreeMap<u32, PathBuf> = BTreeMap::new();
    // The patient most files are named for: a slice of another patient dropped into this
    // folder (or a mask named for another patient) would otherwise be read as this patient's.
    let entries = read_dir_sorted(dir)?;
    let mut prefixes: BTreeMap<String, usize> = BTreeMap::new();
    for path in entries.iter().filter(|p| is_image(p)) {
        let stem = path.file_stem().map(|s| s.to_string_lossy().to_string()).unwrap_or_default();
        if let Some((prefix, _, _)) = parse_slice_stem(&stem) {
            *prefixes.entry(prefix.to_ascii_lowercase()).or_default() += 1;
        }
    }
    let named_for = prefixes.iter().max_by_key(|(_, &n)| n).map(|(p, _)| p.clone());
    for path in entries {
        if !is_image(&path) {
            continue;
        }
        // A dangling symlink still has a name; reading it later would fail, so report it here.
        if std::fs::metadata(&path).is_err() {
            let err = std::fs::metadata(&path).err().map(|e| DataError::io(&path, e));
            problems.extend(err);
            continue;
        }
        let stem = path.file_stem().map(|s| s.to_string_lossy().to_string()).unwrap_or_default();
        if let (Some((prefix, _, _)), Some(usual)) = (parse_slice_stem(&stem), &named_for) {
            if !usual.eq_ignore_ascii_case(prefix) {
                problems.push(DataError::layout(
                    &path,
                    format!(
                        "is named for patient {prefix}, but the folder's other files are named for {usual}: \
                         one folder per patient"
                    ),
                ));
                continue;
            }
        }
        match parse_slice_stem(&stem) {
            Some((_, n, is_mask)) => {
                let (kind, files) = if is_mask {
                    ("mask of slice", &mut masks)
                } else {
                    ("slice", &mut images)
                };
                if let Some(prev) = files.insert(n, path.clone()) {
                    problems.push(DataError::layout(
                        &path,
                        format!("{kind} {n} appears twice (also {})", prev.display()),
                    ));
                }
            }
            None => problems.push(DataError::layout(&path, "file name is not <patient>_<n> or <patient>_<n>_mask")),
        }
    }
    if images.is_empty() && masks.is_empty() {
        return Ok(None);
    }
    let mut slices = Vec::new();
    for (n, image) in images {
        match masks.remove(&n) {
            Some(mask) => slices.push(SliceFiles { number: n, image, mask }),
            None => problems.push(DataError::layout(&image, "image has no mask (<name>_mask.<ext>) beside it")),
        }
    }
    for (_, mask) in masks {
        problems.push(DataError::layout(&mask, "mask has no image beside it"));
    }
    Ok(Some(PatientFiles {
        id,
        dir: dir.to_path_buf(),
        slices,
    }))
}

/// Find every patient and slice under `root`. Reports all layout problems at once.
pub fn scan(root: &Path) -> Result<DatasetLayout> {
    let meta = std::fs::metadata(root).map_err(|e| DataError::io(root, e))?;
    if !meta.is_dir() {
        return Err(DataError::layout(
            root,
            "is not a folder; expected a kaggle_3m-style dataset folder",
        ));
    }
    let mut problems = Vec::new();
    let mut patients = Vec::new();
    // Two names for one folder (a link beside its target) would be two patients that are one,
    // and could land in different folds.
    let mut folders: BTreeMap<PathBuf, (PathBuf, bool)> = BTreeMap::new();
    for path in read_dir_sorted(root)? {
        let is_link = std::fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink());
        // A link to nothing named like a folder may be a patient's; a README.md link is not.
        if is_link && std::fs::metadata(&path).is_err() {
            if path.extension().is_none() || is_image(&path) {
                problems.push(DataError::layout(&path, "is a symbolic link to nothing"));
            }
            continue;
        }
        if path.is_dir() {
            if let Ok(real) = std::fs::canonicalize(&path) {
                if let Some((other, other_link)) = folders.get(&real).cloned() {
                    // Name the link, never the real folder (someone may delete what is named).
                    let (link, target) = if is_link || !other_link { (&path, &other) } else { (&other, &path) };
                    problems.push(DataError::layout(
                        link,
                        format!("is a link to {}, which is read already: each patient once", target.display()),
                    ));
                    if !is_link && other_link {
                        // The real folder is read in the link's place.
                        patients.retain(|p: &PatientFiles| p.dir != other);
                        folders.insert(real, (path.clone(), false));
                    } else {
                        continue;
                    }
                } else {
                    folders.insert(real, (path.clone(), is_link));
                }
            }
            if let Some(p) = scan_patient(&path, &mut problems)? {
                patients.push(p);
            }
        }
    }
    // Without patient folders, the root itself may be one patient's folder. With them, images
    // lying in the root (a grid.png someone saved there) are not slices.
    if patients.is_empty() {
        if let Some(p) = scan_patient(root, &mut problems)? {
            patients.push(p);
        }
    }
    patients.retain(|p| !p.slices.is_empty());
    if let Some(err) = DataError::from_many(problems) {
        return Err(err);
    }
    if patients.is_empty() {
        let hint = nested_dataset(root)
            .map(|p| format!("; the dataset seems to be in {}: give that folder", p.display()))
            .unwrap_or_default();
        return Err(DataError::layout(
            root,
            format!("no slices found: expected <patient>/<patient>_<n>.tif (or .png) with <patient>_<n>_mask.tif beside it{hint}"),
        ));
    }
    let csv = root.join("data.csv");
    if std::fs::symlink_metadata(&csv).is_ok() && std::fs::metadata(&csv).is_err() {
        return Err(DataError::layout(&csv, "is a symbolic link to nothing"));
    }
    let clinical_csv = csv.exists().then_some(csv);
    Ok(DatasetLayout {
        root: root.to_path_buf(),
        patients,
        clinical_csv,
    })
}

/// Whether `path` (which need not exist yet) is `root` or lies inside it, links resolved: an
/// output written there would become part of the dataset, which then no longer reads.
pub fn is_within(path: &Path, root: &Path) -> bool {
    use std::path::Component;
    let Ok(root) = std::fs::canonicalize(root) else { return false };
    // The longest leading part of `path` that exists, resolved, then the rest as written, with
    // `..` taken back a level (`nothere/../data/r` is `data/r`).
    let parts: Vec<Component> = path.components().collect();
    for k in (0..=parts.len()).rev() {
        let head: PathBuf = if k == 0 { PathBuf::from(".") } else { parts[..k].iter().collect() };
        if let Ok(mut full) = std::fs::canonicalize(&head) {
            for c in &parts[k..] {
                match c {
                    Component::ParentDir => {
                        full.pop();
                    }
                    Component::CurDir => {}
                    other => full.push(other),
                }
            }
            return full.starts_with(&root);
        }
    }
    false
}

/// Whether `path` would land inside the dataset at `root`: in it, or in one of its patient
/// folders where those are links to folders elsewhere (a report written there is written into
/// the linked data).
pub fn is_within_dataset(path: &Path, root: &Path) -> bool {
    is_within(path, root)
        || read_dir_sorted(root)
            .unwrap_or_default()
            .iter()
            .filter(|p| p.is_dir())
            .any(|p| is_within(path, p))
}

/// A `kaggle_3m` folder one or two levels below `root` (the Kaggle archive unpacks as
/// `lgg-mri-segmentation/kaggle_3m/`), for the hint when `root` itself holds no slices.
fn nested_dataset(root: &Path) -> Option<PathBuf> {
    let below = |dir: &Path| -> Vec<PathBuf> {
        read_dir_sorted(dir)
            .unwrap_or_default()
            .into_iter()
            .filter(|p| p.is_dir())
            .collect()
    };
    let level1 = below(root);
    let level2 = level1.iter().flat_map(|d| below(d));
    level1
        .iter()
        .cloned()
        .chain(level2)
        .find(|d| d.file_name().is_some_and(|n| n.eq_ignore_ascii_case("kaggle_3m")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn natural_order_counts_digit_runs_by_value() {
        let mut names = vec!["slice10", "slice2", "slice1", "Slice3", "slice02", "a", "slice1b", "slice"];
        names.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(names, ["Slice3", "a", "slice", "slice1", "slice1b", "slice02", "slice2", "slice10"]);
        // Digit runs longer than any integer type.
        assert!(natural_cmp("x99999999999999999999999", "x100000000000000000000000").is_lt());
        assert!(natural_cmp("p_9_mask", "p_10_mask").is_lt());
    }

    #[test]
    fn stems_parse_numerically() {
        assert_eq!(
            parse_slice_stem("TCGA_CS_4941_19960909_10"),
            Some(("TCGA_CS_4941_19960909", 10, false))
        );
        assert_eq!(
            parse_slice_stem("TCGA_CS_4941_19960909_2_mask"),
            Some(("TCGA_CS_4941_19960909", 2, true))
        );
        assert_eq!(parse_slice_stem("README"), None);
        assert_eq!(institution_of("TCGA_HT_7877_19980917"), "HT");
    }

    #[test]
    fn slices_sort_by_number_and_missing_masks_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("TCGA_XX_0001_20000101");
        std::fs::create_dir(&p).unwrap();
        for n in [1, 2, 10] {
            std::fs::write(p.join(format!("TCGA_XX_0001_20000101_{n}.png")), b"x").unwrap();
            std::fs::write(p.join(format!("TCGA_XX_0001_20000101_{n}_mask.png")), b"x").unwrap();
        }
        let layout = scan(dir.path()).unwrap();
        let numbers: Vec<u32> = layout.patients[0].slices.iter().map(|s| s.number).collect();
        assert_eq!(numbers, vec![1, 2, 10]);
        std::fs::write(p.join("TCGA_XX_0001_20000101_3.png"), b"x").unwrap();
        let err = scan(dir.path()).unwrap_err().to_string();
        assert!(err.contains("_3.png") && err.contains("no mask"), "{err}");
    }

    /// A second mask for a slice, a slice named for another patient, a link to nothing and a
    /// second name for one folder were all read without a word.
    #[cfg(unix)]
    #[test]
    fn odd_files_and_links_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let id = "TCGA_XX_0001_20000101";
        let p = dir.path().join(id);
        std::fs::create_dir(&p).unwrap();
        for n in [1, 2] {
            std::fs::write(p.join(format!("{id}_{n}.png")), b"x").unwrap();
            std::fs::write(p.join(format!("{id}_{n}_mask.png")), b"x").unwrap();
        }
        assert!(scan(dir.path()).is_ok());
        let refused = |what: &str, file: &Path, expect: &str| {
            let err = scan(dir.path()).unwrap_err().to_string();
            assert!(err.contains(expect), "{what}: {err}");
            std::fs::remove_file(file).unwrap();
        };
        let second_mask = p.join(format!("{id}_2_mask.tif"));
        std::fs::write(&second_mask, b"x").unwrap();
        refused("two masks", &second_mask, "mask of slice 2 appears twice");
        let foreign = p.join("TCGA_YY_0002_20000101_3.png");
        std::fs::write(&foreign, b"x").unwrap();
        refused("another patient's slice", &foreign, "named for patient TCGA_YY_0002_20000101");
        // Sorting first, the stray file is still the one named (the majority names the patient).
        let first = p.join("TCGA_AA_0000_20000101_3.png");
        std::fs::write(&first, b"x").unwrap();
        let err = scan(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("TCGA_AA_0000_20000101_3.png: is named for patient") && !err.contains("problem(s)"),
            "{err}"
        );
        std::fs::remove_file(&first).unwrap();
        let dangling = dir.path().join("TCGA_ZZ_0003_20000101");
        std::os::unix::fs::symlink(dir.path().join("gone"), &dangling).unwrap();
        refused("link to nothing", &dangling, "symbolic link to nothing");
        let twice = dir.path().join("TCGA_XX_0001_again");
        std::os::unix::fs::symlink(&p, &twice).unwrap();
        refused("one folder twice", &twice, "is a link to");
        // The link is named whichever sorts first; the real folder is read.
        let alias = dir.path().join("AAA_alias");
        std::os::unix::fs::symlink(&p, &alias).unwrap();
        let err = scan(dir.path()).unwrap_err().to_string();
        assert!(err.contains("AAA_alias: is a link to") && err.contains(id), "{err}");
        std::fs::remove_file(&alias).unwrap();
        // A link to nothing that is no folder's name (a README) is not a patient.
        std::os::unix::fs::symlink(dir.path().join("gone.md"), dir.path().join("README.md")).unwrap();
        assert!(scan(dir.path()).is_ok());
    }

    /// The Kaggle archive unpacks one level above the dataset.
    #[test]
    fn a_root_above_the_dataset_gets_a_hint() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("lgg-mri-segmentation/kaggle_3m/TCGA_XX_0001_20000101");
        std::fs::create_dir_all(&p).unwrap();
        std::fs::write(p.join("TCGA_XX_0001_20000101_1.png"), b"x").unwrap();
        std::fs::write(p.join("TCGA_XX_0001_20000101_1_mask.png"), b"x").unwrap();
        let err = scan(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("seems to be in") && err.contains("lgg-mri-segmentation/kaggle_3m"),
            "{err}"
        );
    }

    #[test]
    fn outputs_inside_the_dataset_are_recognised() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        assert!(is_within(&data, &data));
        assert!(is_within(&data.join("runs/new/deeper"), &data));
        assert!(is_within(&data.join("../data/x"), &data));
        assert!(!is_within(&dir.path().join("runs"), &data));
        assert!(!is_within(&dir.path().join("data2/x"), &data));
        assert!(is_within(&dir.path().join("nothere/../data/r2"), &data));
        // A patient folder that is a link to data elsewhere counts as the dataset's.
        #[cfg(unix)]
        {
            let elsewhere = dir.path().join("elsewhere/TCGA_XX_0001_20000101");
            std::fs::create_dir_all(&elsewhere).unwrap();
            std::os::unix::fs::symlink(&elsewhere, data.join("TCGA_XX_0001_20000101")).unwrap();
            let out = data.join("TCGA_XX_0001_20000101/report");
            assert!(!is_within(&out, &data) && is_within_dataset(&out, &data));
            assert!(!is_within_dataset(&dir.path().join("elsewhere2"), &data));
        }
    }

    #[test]
    fn empty_folder_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        assert!(scan(dir.path()).unwrap_err().to_string().contains("no slices found"));
        assert!(scan(&dir.path().join("nope")).is_err());
    }
}
