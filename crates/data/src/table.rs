//! The slice table (`dataset index`) and the dataset summary (`dataset summary`).

use crate::load::{LoadedDataset, MissingSequence};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;

/// One row of the slice table.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SliceRow {
    /// Patient folder name.
    pub patient: String,
    /// Slice number.
    pub slice: u32,
    /// Image path.
    pub image_path: String,
    /// Mask path.
    pub mask_path: String,
    /// 1 when the mask shows tumour.
    pub has_tumor: u8,
    /// Tumour pixels in the mask.
    pub tumor_pixels: u64,
}

/// The slice table of a loaded dataset, in patient then slice order.
pub fn slice_rows(ds: &LoadedDataset) -> Vec<SliceRow> {
    ds.slices()
        .map(|s| SliceRow {
            patient: s.patient.clone(),
            slice: s.number,
            image_path: s.image_path.display().to_string(),
            mask_path: s.mask_path.display().to_string(),
            has_tumor: s.has_tumor() as u8,
            tumor_pixels: s.tumor_pixels(),
        })
        .collect()
}

/// Write rows as CSV (atomically: temp file then rename).
pub fn write_csv<T: Serialize>(path: &Path, rows: &[T]) -> std::io::Result<()> {
    let mut w = csv::Writer::from_writer(Vec::new());
    for r in rows {
        w.serialize(r).map_err(std::io::Error::other)?;
    }
    let bytes = w.into_inner().map_err(|e| std::io::Error::other(e.to_string()))?;
    write_atomic(path, &bytes)
}

/// Write a file via a temporary name in the same folder and rename, so readers never see a
/// half-written file. A symbolic link is written through (the link stays); anything else that
/// is not a regular file (a device, a pipe, a folder, a link to nothing) is refused, since the
/// rename would replace it with a plain file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let target;
    let path = match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => {
            target = std::fs::canonicalize(path)
                .map_err(|e| std::io::Error::new(e.kind(), format!("{} is a symbolic link to nothing ({e})", path.display())))?;
            not_special(&target)?;
            target.as_path()
        }
        Ok(_) => {
            not_special(path)?;
            path
        }
        Err(_) => path,
    };
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp{}", std::process::id()));
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    // The file replaced keeps its permissions (a private 600 file stays private).
    if let Ok(old) = std::fs::metadata(path) {
        f.set_permissions(old.permissions())?;
    }
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path)
}

/// Refuse to replace an existing path that is not a regular file.
fn not_special(path: &Path) -> std::io::Result<()> {
    match std::fs::metadata(path) {
        Ok(m) if !m.is_file() => Err(std::io::Error::other(format!(
            "{} exists and is not a regular file (a folder, device or pipe); refusing to replace it",
            path.display()
        ))),
        _ => Ok(()),
    }
}

/// Per-institution counts.
#[derive(Debug, Clone, Serialize, PartialEq, Default)]
pub struct InstitutionCount {
    /// Patients.
    pub patients: usize,
    /// Slices.
    pub slices: usize,
    /// Slices with tumour.
    pub tumor_slices: usize,
}

/// Distribution of tumour size (pixels per tumour slice).
#[derive(Debug, Clone, Serialize, PartialEq, Default)]
pub struct SizeDistribution {
    /// Smallest.
    pub min: u64,
    /// 25th percentile.
    pub p25: u64,
    /// Median.
    pub median: u64,
    /// 75th percentile.
    pub p75: u64,
    /// Largest.
    pub max: u64,
    /// Mean.
    pub mean: f64,
    /// Counts in bins `[lo, hi)` of tumour pixels.
    pub histogram: Vec<(String, usize)>,
}

/// What `dataset summary` prints.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Summary {
    /// Dataset root.
    pub root: String,
    /// Patients.
    pub patients: usize,
    /// Slices.
    pub slices: usize,
    /// Slices whose mask shows tumour.
    pub tumor_slices: usize,
    /// Patients with at least one tumour slice.
    pub tumor_patients: usize,
    /// Slice sizes seen (`WxH` -> count).
    pub slice_sizes: BTreeMap<String, usize>,
    /// Per institution code.
    pub institutions: BTreeMap<String, InstitutionCount>,
    /// Patients with a sequence replaced by FLAIR.
    pub missing_sequence: BTreeMap<String, MissingSequence>,
    /// Tumour pixels per tumour slice.
    pub tumor_size: SizeDistribution,
    /// Whether `data.csv` was found, and its row count.
    pub clinical_rows: Option<usize>,
    /// Content key of the image files.
    pub content_key: String,
}

/// Summarise a loaded dataset.
pub fn summarize(ds: &LoadedDataset) -> Summary {
    let mut institutions: BTreeMap<String, InstitutionCount> = BTreeMap::new();
    let mut sizes = BTreeMap::new();
    let mut missing = BTreeMap::new();
    let mut tumor_sizes = Vec::new();
    for p in &ds.patients {
        let e = institutions.entry(p.institution.clone()).or_default();
        e.patients += 1;
        e.slices += p.slices.len();
        for s in &p.slices {
            *sizes.entry(format!("{}x{}", s.width, s.height)).or_insert(0) += 1;
            if s.has_tumor() {
                e.tumor_slices += 1;
                tumor_sizes.push(s.tumor_pixels());
            }
        }
        if let Some(m) = p.missing_sequence() {
            missing.insert(p.id.clone(), m);
        }
    }
    tumor_sizes.sort_unstable();
    let q = |f: f64| {
        tumor_sizes
            .get(((tumor_sizes.len().saturating_sub(1)) as f64 * f).round() as usize)
            .copied()
            .unwrap_or(0)
    };
    let edges = [1u64, 100, 500, 1000, 2000, 5000, u64::MAX];
    let histogram = edges
        .windows(2)
        .map(|w| {
            let label = if w[1] == u64::MAX {
                format!(">={}", w[0])
            } else {
                format!("{}-{}", w[0], w[1] - 1)
            };
            (label, tumor_sizes.iter().filter(|&&v| v >= w[0] && v < w[1]).count())
        })
        .collect();
    let tumor_size = SizeDistribution {
        min: q(0.0),
        p25: q(0.25),
        median: q(0.5),
        p75: q(0.75),
        max: q(1.0),
        mean: if tumor_sizes.is_empty() {
            0.0
        } else {
            tumor_sizes.iter().sum::<u64>() as f64 / tumor_sizes.len() as f64
        },
        histogram,
    };
    Summary {
        root: ds.root.display().to_string(),
        patients: ds.patients.len(),
        slices: ds.slices().count(),
        tumor_slices: ds.slices().filter(|s| s.has_tumor()).count(),
        tumor_patients: ds.patients.iter().filter(|p| p.slices.iter().any(|s| s.has_tumor())).count(),
        slice_sizes: sizes,
        institutions,
        missing_sequence: missing,
        tumor_size,
        clinical_rows: ds.clinical.as_ref().map(|c| c.rows.len()),
        content_key: ds.content_key.clone(),
    }
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "dataset      {}", self.root)?;
        writeln!(f, "patients     {}", self.patients)?;
        writeln!(f, "slices       {}", self.slices)?;
        let pct = 100.0 * self.tumor_slices as f64 / self.slices.max(1) as f64;
        writeln!(
            f,
            "with tumour  {} ({pct:.1}% of slices; {} patients)",
            self.tumor_slices, self.tumor_patients
        )?;
        let sizes: Vec<String> = self.slice_sizes.iter().map(|(k, v)| format!("{k}: {v}")).collect();
        writeln!(f, "slice sizes  {}", sizes.join(", "))?;
        writeln!(f, "institutions")?;
        for (k, v) in &self.institutions {
            writeln!(
                f,
                "  {k:<4} {:>3} patients {:>5} slices {:>4} with tumour",
                v.patients, v.slices, v.tumor_slices
            )?;
        }
        writeln!(f, "missing sequence (replaced by FLAIR): {}", self.missing_sequence.len())?;
        for (k, v) in &self.missing_sequence {
            writeln!(f, "  {k}  {v:?}")?;
        }
        let t = &self.tumor_size;
        writeln!(
            f,
            "tumour size (pixels per tumour slice): min {} p25 {} median {} p75 {} max {} mean {:.0}",
            t.min, t.p25, t.median, t.p75, t.max, t.mean
        )?;
        for (label, n) in &t.histogram {
            writeln!(
                f,
                "  {label:>10} {n:>5} {}",
                "#".repeat((*n as f64 / self.tumor_slices.max(1) as f64 * 50.0).round() as usize)
            )?;
        }
        match self.clinical_rows {
            Some(n) => writeln!(f, "data.csv     {n} rows")?,
            None => writeln!(f, "data.csv     not found")?,
        }
        write!(f, "content key  {}", &self.content_key[..16.min(self.content_key.len())])
    }
}

#[cfg(test)]
mod tests {
    use super::write_atomic;

    /// `--force` once replaced /dev/full, a pipe and a user's symlink with plain files.
    #[cfg(unix)]
    #[test]
    fn atomic_writes_go_through_links_and_never_replace_special_files() {
        let d = tempfile::tempdir().unwrap();
        let real = d.path().join("real.csv");
        std::fs::write(&real, "old").unwrap();
        let link = d.path().join("link.csv");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        write_atomic(&link, b"new").unwrap();
        assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
        assert_eq!(std::fs::read_to_string(&real).unwrap(), "new");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o600)).unwrap();
        write_atomic(&link, b"newer").unwrap();
        assert_eq!(std::fs::metadata(&real).unwrap().permissions().mode() & 0o777, 0o600);

        let dangling = d.path().join("dangling.csv");
        std::os::unix::fs::symlink(d.path().join("nowhere.csv"), &dangling).unwrap();
        let err = write_atomic(&dangling, b"x").unwrap_err().to_string();
        assert!(err.contains("link to nothing"), "{err}");
        assert!(std::fs::symlink_metadata(&dangling).unwrap().file_type().is_symlink());

        let folder = d.path().join("folder");
        std::fs::create_dir(&folder).unwrap();
        let err = write_atomic(&folder, b"x").unwrap_err().to_string();
        assert!(err.contains("not a regular file"), "{err}");
        assert!(folder.is_dir());
        // A pipe stands for the devices (a test must not risk /dev/null).
        let pipe = d.path().join("pipe");
        if std::process::Command::new("mkfifo").arg(&pipe).status().is_ok_and(|s| s.success()) {
            let err = write_atomic(&pipe, b"x").unwrap_err().to_string();
            assert!(err.contains("not a regular file"), "{err}");
        }
    }
}
