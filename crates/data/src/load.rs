//! Decoding a whole dataset once, in parallel, checking it, and caching it on disk.
//!
//! The cache is one binary file named by the SHA-256 of every image and mask file's bytes
//! (and their relative paths), so an edited or added file gives a new key and a stale cache is
//! never used. Loading from the cache skips all image decoding.

use crate::clinical::{read_clinical, Clinical};
use crate::error::{DataError, Result};
use crate::image_io::{decode_mask, decode_slice, read_bytes, ChannelPolicy};
use crate::layout::{institution_of, scan, DatasetLayout};
use rayon::prelude::*;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// One decoded slice with its mask.
#[derive(Debug, Clone, PartialEq)]
pub struct Slice {
    /// Patient folder name.
    pub patient: String,
    /// Slice number.
    pub number: u32,
    /// Image file.
    pub image_path: PathBuf,
    /// Mask file.
    pub mask_path: PathBuf,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// RGB bytes, HWC.
    pub image: Vec<u8>,
    /// Mask, 0/1 per pixel.
    pub mask: Vec<u8>,
}

impl Slice {
    /// Number of tumour pixels in the ground truth.
    pub fn tumor_pixels(&self) -> u64 {
        self.mask.iter().map(|&v| v as u64).sum()
    }
    /// Whether the ground truth shows tumour.
    pub fn has_tumor(&self) -> bool {
        self.mask.contains(&1)
    }
}

/// Which sequence a patient lacks (replaced by FLAIR in the distributed data).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum MissingSequence {
    /// All three channels equal FLAIR.
    PreAndPostContrast,
    /// The post-contrast channel equals FLAIR.
    PostContrast,
    /// The pre-contrast channel equals FLAIR.
    PreContrast,
}

/// One patient's slices, in slice order.
#[derive(Debug, Clone, PartialEq)]
pub struct Patient {
    /// Folder name.
    pub id: String,
    /// Institution code.
    pub institution: String,
    /// Slices sorted by number.
    pub slices: Vec<Slice>,
}

impl Patient {
    /// Detect a channel that duplicates FLAIR (channel 1) on every slice.
    pub fn missing_sequence(&self) -> Option<MissingSequence> {
        let all = |f: &dyn Fn(&[u8]) -> bool| self.slices.iter().all(|s| s.image.chunks_exact(3).all(f));
        let any_signal = self.slices.iter().any(|s| s.image.iter().any(|&v| v != 0));
        if !any_signal {
            return None;
        }
        let pre = all(&|p| p[0] == p[1]);
        let post = all(&|p| p[2] == p[1]);
        match (pre, post) {
            (true, true) => Some(MissingSequence::PreAndPostContrast),
            (false, true) => Some(MissingSequence::PostContrast),
            (true, false) => Some(MissingSequence::PreContrast),
            _ => None,
        }
    }
    /// Sum of tumour pixels over all slices.
    pub fn tumor_pixels(&self) -> u64 {
        self.slices.iter().map(Slice::tumor_pixels).sum()
    }
    /// Slice numbers missing between the first and the last (`1, 2, 4` lacks 3): neighbours
    /// across a gap are not adjacent, though slice context would treat them so.
    pub fn missing_numbers(&self) -> Vec<u32> {
        self.slices.windows(2).flat_map(|w| w[0].number + 1..w[1].number).collect()
    }
}

/// A decoded, checked dataset.
#[derive(Debug, Clone)]
pub struct LoadedDataset {
    /// Root folder.
    pub root: PathBuf,
    /// Patients sorted by id.
    pub patients: Vec<Patient>,
    /// `data.csv`, when present.
    pub clinical: Option<Clinical>,
    /// Content key of the image and mask files (hex SHA-256).
    pub content_key: String,
    /// Whether this load was served from the cache.
    pub from_cache: bool,
    /// Whether its decoded slices are in the cache now (served from it, or written by this
    /// load).
    pub cached: bool,
}

impl LoadedDataset {
    /// All slices of all patients.
    pub fn slices(&self) -> impl Iterator<Item = &Slice> {
        self.patients.iter().flat_map(|p| p.slices.iter())
    }
    /// Find a patient by id.
    pub fn patient(&self, id: &str) -> Option<&Patient> {
        self.patients.iter().find(|p| p.id == id)
    }
}

/// Options for [`load_dataset`].
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// Folder for the binary cache; `None` disables caching.
    pub cache_dir: Option<PathBuf>,
}

impl LoadOptions {
    /// Cache in the user's cache folder (`$XDG_CACHE_HOME/tumorscan` or `~/.cache/tumorscan`).
    pub fn with_default_cache() -> Self {
        Self {
            cache_dir: default_cache_dir(),
        }
    }
}

/// The default cache folder, if a home folder is known. Never inside the dataset.
pub fn default_cache_dir() -> Option<PathBuf> {
    // An empty variable is unset (as the XDG spec says), not the current folder.
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(dir) = var("TUMORSCAN_CACHE") {
        return Some(dir);
    }
    var("XDG_CACHE_HOME")
        .or_else(|| var("HOME").map(|h| h.join(".cache")))
        .map(|d| d.join("tumorscan"))
}

const MAGIC: &[u8; 8] = b"TSCACHE1";

/// Scan, read, check and decode a dataset (or load it from the cache).
pub fn load_dataset(root: &Path, opts: &LoadOptions) -> Result<LoadedDataset> {
    let layout = scan(root)?;
    let clinical = match &layout.clinical_csv {
        Some(p) => Some(read_clinical(p)?),
        None => None,
    };
    // Read all bytes in parallel: needed for the content key, and for decoding on a cold load.
    let files: Vec<(usize, usize, &Path, &Path)> = layout
        .patients
        .iter()
        .enumerate()
        .flat_map(|(pi, p)| {
            p.slices
                .iter()
                .enumerate()
                .map(move |(si, s)| (pi, si, s.image.as_path(), s.mask.as_path()))
        })
        .collect();
    let bytes: Vec<Result<(Vec<u8>, Vec<u8>)>> = files.par_iter().map(|(_, _, i, m)| Ok((read_bytes(i)?, read_bytes(m)?))).collect();
    let (bytes, errors): (Vec<_>, Vec<_>) = bytes.into_iter().partition(|r| r.is_ok());
    if let Some(e) = DataError::from_many(errors.into_iter().filter_map(|r| r.err()).collect()) {
        return Err(e);
    }
    let bytes: Vec<(Vec<u8>, Vec<u8>)> = bytes.into_iter().filter_map(|r| r.ok()).collect();
    let key = content_key(&layout, &files, &bytes);

    if let Some(dir) = &opts.cache_dir {
        let path = dir.join(format!("{key}.tscache"));
        if let Ok(patients) = read_cache(&path, &layout) {
            // Its time stamp says when it was last used, for eviction (best effort: the file's
            // owner can set it on a read-only file too).
            let _ = std::fs::File::open(&path).and_then(|f| f.set_modified(std::time::SystemTime::now()));
            return Ok(LoadedDataset {
                root: root.to_path_buf(),
                patients,
                clinical,
                content_key: key,
                from_cache: true,
                cached: true,
            });
        }
    }

    let decoded: Vec<Result<Slice>> = files
        .par_iter()
        .zip(bytes.par_iter())
        .map(|((pi, si, ipath, mpath), (ib, mb))| {
            let img = decode_slice(ipath, ib, ChannelPolicy::Strict)?;
            let mask = decode_mask(mpath, mb)?;
            if (img.width, img.height) != (mask.width, mask.height) {
                return Err(DataError::invalid(
                    mpath,
                    format!(
                        "mask is {}x{} but its image is {}x{}",
                        mask.width, mask.height, img.width, img.height
                    ),
                ));
            }
            let pf = &layout.patients[*pi];
            Ok(Slice {
                patient: pf.id.clone(),
                number: pf.slices[*si].number,
                image_path: ipath.to_path_buf(),
                mask_path: mpath.to_path_buf(),
                width: img.width,
                height: img.height,
                image: img.data,
                mask: mask.data,
            })
        })
        .collect();
    let mut errors = Vec::new();
    let mut patients: Vec<Patient> = layout
        .patients
        .iter()
        .map(|p| Patient {
            id: p.id.clone(),
            institution: institution_of(&p.id),
            slices: Vec::new(),
        })
        .collect();
    for (r, (pi, _, _, _)) in decoded.into_iter().zip(&files) {
        match r {
            Ok(s) => patients[*pi].slices.push(s),
            Err(e) => errors.push(e),
        }
    }
    for p in &patients {
        // Blame the slices off the patient's usual size, not whichever differs from the first.
        let mut sizes: BTreeMap<(u32, u32), usize> = BTreeMap::new();
        for s in &p.slices {
            *sizes.entry((s.width, s.height)).or_default() += 1;
        }
        if let Some((&(w, h), &n)) = sizes.iter().max_by_key(|(_, &n)| n) {
            for odd in p.slices.iter().filter(|s| (s.width, s.height) != (w, h)) {
                errors.push(DataError::invalid(
                    &odd.image_path,
                    format!(
                        "slice is {}x{} but {n} of the patient's {} slices are {w}x{h}",
                        odd.width,
                        odd.height,
                        p.slices.len()
                    ),
                ));
            }
        }
    }
    if let Some(e) = DataError::from_many(errors) {
        return Err(e);
    }
    // A cache that cannot be written only costs speed next time; never fail the load.
    let cached = opts.cache_dir.as_ref().is_some_and(|dir| write_cache(dir, &key, &patients).is_ok());
    Ok(LoadedDataset {
        root: root.to_path_buf(),
        patients,
        clinical,
        content_key: key,
        from_cache: false,
        cached,
    })
}

fn content_key(layout: &DatasetLayout, files: &[(usize, usize, &Path, &Path)], bytes: &[(Vec<u8>, Vec<u8>)]) -> String {
    let digests: Vec<[u8; 32]> = bytes
        .par_iter()
        .map(|(i, m)| {
            let mut h = Sha256::new();
            h.update(i);
            h.update(m);
            h.finalize().into()
        })
        .collect();
    let mut h = Sha256::new();
    h.update(MAGIC);
    for ((_, _, i, m), d) in files.iter().zip(&digests) {
        for p in [i, m] {
            let rel = p.strip_prefix(&layout.root).unwrap_or(p);
            h.update(rel.to_string_lossy().as_bytes());
            h.update([0]);
        }
        h.update(d);
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Dataset versions kept in the cache: the most recently used ones (each is about 570 MB for
/// the 80 development patients).
pub const MAX_CACHED_VERSIONS: usize = 4;
/// Age past which a cache file's temporary copy is a killed writer's leftover (a write takes
/// seconds and keeps it fresh).
const STALE_TEMP: std::time::Duration = std::time::Duration::from_secs(600);

/// Whether `name` is one of tumorscan's cache files: `<64 hex digits>.tscache`, or its
/// temporary copy `<...>.tscache.tmp<pid>` (`Some(true)`).
fn cache_file_kind(name: &str) -> Option<bool> {
    let (key, rest) = name.split_once(".tscache")?;
    if key.len() != 64 || !key.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    match rest.strip_prefix(".tmp") {
        None if rest.is_empty() => Some(false),
        Some(pid) if !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()) => Some(true),
        _ => None,
    }
}

/// Remove what a cache folder no longer needs: temporary copies that killed writers left, and
/// the least recently used versions past [`MAX_CACHED_VERSIONS`], `keep` (the version just
/// written) never among them. Only tumorscan's own file names are touched; a time stamp in the
/// future counts as now (a clock that jumped back must not pin old versions).
fn tidy_cache(dir: &Path, keep: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let now = std::time::SystemTime::now();
    let mut versions = Vec::new();
    for e in entries.flatten() {
        let Some(temp) = cache_file_kind(&e.file_name().to_string_lossy()) else {
            continue;
        };
        // Through a link, its target's time: the one a hit refreshes.
        let Ok(modified) = std::fs::metadata(e.path()).and_then(|m| m.modified()) else {
            continue;
        };
        let modified = modified.min(now);
        if temp {
            if now.duration_since(modified).unwrap_or_default() > STALE_TEMP {
                let _ = std::fs::remove_file(e.path());
            }
        } else if e.path() != keep {
            versions.push((modified, e.path()));
        }
    }
    versions.sort_by_key(|v| std::cmp::Reverse(v.0));
    for (_, path) in versions.into_iter().skip(MAX_CACHED_VERSIONS - 1) {
        let _ = std::fs::remove_file(path);
    }
}

fn write_cache(dir: &Path, key: &str, patients: &[Patient]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!("{key}.tscache.tmp{}", std::process::id()));
    let path = dir.join(format!("{key}.tscache"));
    let written = write_cache_file(&tmp, patients).and_then(|()| std::fs::rename(&tmp, &path));
    if written.is_err() {
        // A full disk or a folder in the way: no 570 MB copy left behind.
        let _ = std::fs::remove_file(&tmp);
    }
    tidy_cache(dir, &path);
    written
}

fn write_cache_file(tmp: &Path, patients: &[Patient]) -> std::io::Result<()> {
    let mut w = std::io::BufWriter::new(std::fs::File::create(tmp)?);
    w.write_all(MAGIC)?;
    w.write_all(&(patients.len() as u32).to_le_bytes())?;
    for p in patients {
        w.write_all(&(p.slices.len() as u32).to_le_bytes())?;
        for s in &p.slices {
            w.write_all(&s.width.to_le_bytes())?;
            w.write_all(&s.height.to_le_bytes())?;
            w.write_all(&s.image)?;
            // Masks are 0/1: pack 8 pixels per byte.
            let packed: Vec<u8> = s
                .mask
                .chunks(8)
                .map(|c| c.iter().enumerate().fold(0u8, |a, (i, &v)| a | (v << i)))
                .collect();
            w.write_all(&packed)?;
        }
    }
    w.flush()?;
    w.get_ref().sync_all()
}

fn read_cache(path: &Path, layout: &DatasetLayout) -> std::io::Result<Vec<Patient>> {
    let mut r = std::io::BufReader::new(std::fs::File::open(path)?);
    let bad = || std::io::Error::new(std::io::ErrorKind::InvalidData, "cache does not match dataset");
    let mut magic = [0u8; 8];
    r.read_exact(&mut magic)?;
    let mut u32b = [0u8; 4];
    let mut read_u32 = |r: &mut dyn Read| -> std::io::Result<u32> {
        r.read_exact(&mut u32b)?;
        Ok(u32::from_le_bytes(u32b))
    };
    if &magic != MAGIC || read_u32(&mut r)? as usize != layout.patients.len() {
        return Err(bad());
    }
    let mut patients = Vec::with_capacity(layout.patients.len());
    for pf in &layout.patients {
        if read_u32(&mut r)? as usize != pf.slices.len() {
            return Err(bad());
        }
        let mut slices = Vec::with_capacity(pf.slices.len());
        for sf in &pf.slices {
            let (w, h) = (read_u32(&mut r)?, read_u32(&mut r)?);
            let n = (w as usize) * (h as usize);
            if n == 0 || w > crate::image_io::MAX_SIDE || h > crate::image_io::MAX_SIDE {
                return Err(bad());
            }
            let mut image = vec![0u8; n * 3];
            r.read_exact(&mut image)?;
            let mut packed = vec![0u8; n.div_ceil(8)];
            r.read_exact(&mut packed)?;
            let mask = (0..n).map(|i| (packed[i / 8] >> (i % 8)) & 1).collect();
            slices.push(Slice {
                patient: pf.id.clone(),
                number: sf.number,
                image_path: sf.image.clone(),
                mask_path: sf.mask.clone(),
                width: w,
                height: h,
                image,
                mask,
            });
        }
        patients.push(Patient {
            id: pf.id.clone(),
            institution: institution_of(&pf.id),
            slices,
        });
    }
    Ok(patients)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Write a tiny synthetic dataset: `patients` folders of `slices` 16x16 PNG slices, a disc of
    /// tumour on odd slices.
    pub fn synthetic(root: &Path, patients: &[&str], slices: u32) {
        for p in patients {
            let dir = root.join(p);
            std::fs::create_dir_all(&dir).unwrap();
            for n in 1..=slices {
                let img = image::RgbImage::from_fn(16, 16, |x, y| image::Rgb([(x * 8) as u8, (y * 8) as u8, (x + y) as u8]));
                img.save(dir.join(format!("{p}_{n}.png"))).unwrap();
                let mask = image::GrayImage::from_fn(16, 16, |x, y| {
                    let d = (x as i32 - 8).pow(2) + (y as i32 - 8).pow(2);
                    image::Luma([if n % 2 == 1 && d < 9 { 255 } else { 0 }])
                });
                mask.save(dir.join(format!("{p}_{n}_mask.png"))).unwrap();
            }
        }
    }

    #[test]
    fn loads_then_hits_the_cache_then_misses_after_an_edit() {
        let dir = tempfile::tempdir().unwrap();
        let cache = tempfile::tempdir().unwrap();
        synthetic(dir.path(), &["TCGA_AA_0001_20000101", "TCGA_BB_0002_20000101"], 3);
        let opts = LoadOptions {
            cache_dir: Some(cache.path().to_path_buf()),
        };
        let a = load_dataset(dir.path(), &opts).unwrap();
        assert!(!a.from_cache);
        assert_eq!(a.slices().count(), 6);
        assert_eq!(a.slices().filter(|s| s.has_tumor()).count(), 4);
        let b = load_dataset(dir.path(), &opts).unwrap();
        assert!(b.from_cache);
        assert_eq!(a.patients, b.patients);
        let m = dir.path().join("TCGA_AA_0001_20000101/TCGA_AA_0001_20000101_2_mask.png");
        image::GrayImage::from_pixel(16, 16, image::Luma([255])).save(&m).unwrap();
        let c = load_dataset(dir.path(), &opts).unwrap();
        assert!(!c.from_cache);
        assert_ne!(a.content_key, c.content_key);
    }

    /// Caches were never evicted (570 MB per dataset version) and a killed writer's temporary
    /// copy stayed for good.
    #[test]
    fn the_cache_keeps_the_versions_last_used_and_drops_leftovers() {
        let dir = tempfile::tempdir().unwrap();
        let cache = tempfile::tempdir().unwrap();
        synthetic(dir.path(), &["TCGA_AA_0001_20000101"], 2);
        let ago = |secs: u64| std::time::SystemTime::now() - std::time::Duration::from_secs(secs);
        let old_file = |name: &str, secs: u64| {
            let path = cache.path().join(name);
            std::fs::write(&path, b"x").unwrap();
            std::fs::File::options()
                .append(true)
                .open(&path)
                .unwrap()
                .set_modified(ago(secs))
                .unwrap();
            path
        };
        let key = |k: usize| format!("{k}").repeat(64);
        let versions: Vec<_> = (0..MAX_CACHED_VERSIONS)
            .map(|k| old_file(&format!("{}.tscache", key(k)), 100 + k as u64))
            .collect();
        let leftover = old_file(&format!("{}.tscache.tmp4242", key(0)), 3600);
        let writing = old_file(&format!("{}.tscache.tmp4243", key(1)), 5);
        // The user's own files, even with names like the cache's, are never touched.
        let mine = ["notes.txt", "my-backup.tscache", "results.tscache.tmp2024"].map(|n| old_file(n, 1_000_000));
        let opts = LoadOptions {
            cache_dir: Some(cache.path().to_path_buf()),
        };
        let a = load_dataset(dir.path(), &opts).unwrap();
        assert!(!a.from_cache);
        // The oldest version goes; the three newer ones and the new one stay.
        assert!(!versions[MAX_CACHED_VERSIONS - 1].exists());
        assert!(versions[..MAX_CACHED_VERSIONS - 1].iter().all(|v| v.exists()));
        assert!(!leftover.exists() && writing.exists() && mine.iter().all(|m| m.exists()));
        assert!(a.cached);
        // A hit counts as a use: it refreshes the time stamp that eviction goes by.
        let ours = cache.path().join(format!("{}.tscache", a.content_key));
        std::fs::File::options()
            .append(true)
            .open(&ours)
            .unwrap()
            .set_modified(ago(1000))
            .unwrap();
        assert!(load_dataset(dir.path(), &opts).unwrap().from_cache);
        let used = std::fs::metadata(&ours).unwrap().modified().unwrap();
        assert!(used > ago(60), "a hit refreshes the time stamp");
    }

    /// With time stamps in the future (a clock set back), the version just written was evicted
    /// at once, every run; a failed write left its temporary copy and still said "cached".
    #[test]
    fn the_version_just_written_stays_and_a_failed_write_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let cache = tempfile::tempdir().unwrap();
        synthetic(dir.path(), &["TCGA_AA_0001_20000101"], 2);
        let later = std::time::SystemTime::now() + std::time::Duration::from_secs(86_400);
        for k in 0..MAX_CACHED_VERSIONS {
            let path = cache.path().join(format!("{}.tscache", format!("{k}").repeat(64)));
            std::fs::write(&path, b"x").unwrap();
            std::fs::File::options()
                .append(true)
                .open(&path)
                .unwrap()
                .set_modified(later)
                .unwrap();
        }
        let opts = LoadOptions {
            cache_dir: Some(cache.path().to_path_buf()),
        };
        let a = load_dataset(dir.path(), &opts).unwrap();
        assert!(a.cached && load_dataset(dir.path(), &opts).unwrap().from_cache);
        let count = || std::fs::read_dir(cache.path()).unwrap().count();
        assert_eq!(count(), MAX_CACHED_VERSIONS);
        // A folder where the cache file would go: the write fails, and says so.
        let ours = cache.path().join(format!("{}.tscache", a.content_key));
        std::fs::remove_file(&ours).unwrap();
        std::fs::create_dir(&ours).unwrap();
        let b = load_dataset(dir.path(), &opts).unwrap();
        assert!(!b.from_cache && !b.cached);
        let names: Vec<String> = std::fs::read_dir(cache.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .collect();
        assert!(!names.iter().any(|n| n.contains(".tmp")), "{names:?}");
    }

    #[test]
    fn size_mismatch_names_the_mask() {
        let dir = tempfile::tempdir().unwrap();
        synthetic(dir.path(), &["TCGA_AA_0001_20000101"], 2);
        let m = dir.path().join("TCGA_AA_0001_20000101/TCGA_AA_0001_20000101_2_mask.png");
        image::GrayImage::new(8, 8).save(&m).unwrap();
        let err = load_dataset(dir.path(), &LoadOptions::default()).unwrap_err().to_string();
        assert!(err.contains("_2_mask.png") && err.contains("8x8"), "{err}");
    }

    /// The error blamed a good slice when the first slice was the odd one, and named one only.
    #[test]
    fn slices_off_the_usual_size_are_the_ones_named() {
        let dir = tempfile::tempdir().unwrap();
        let p = "TCGA_AA_0001_20000101";
        synthetic(dir.path(), &[p], 4);
        for n in [1, 3] {
            let f = dir.path().join(format!("{p}/{p}_{n}"));
            image::RgbImage::new(8, 8).save(f.with_extension("png")).unwrap();
            image::GrayImage::new(8, 8)
                .save(dir.path().join(format!("{p}/{p}_{n}_mask.png")))
                .unwrap();
        }
        let err = load_dataset(dir.path(), &LoadOptions::default()).unwrap_err().to_string();
        assert!(err.contains(&format!("{p}_1.png")) && err.contains(&format!("{p}_3.png")), "{err}");
        assert!(!err.contains(&format!("{p}_2.png")) && err.contains("are 16x16"), "{err}");
    }

    #[test]
    fn missing_sequence_is_detected() {
        let s = |px: [u8; 3]| Slice {
            patient: "p".into(),
            number: 1,
            image_path: PathBuf::new(),
            mask_path: PathBuf::new(),
            width: 1,
            height: 1,
            image: px.to_vec(),
            mask: vec![0],
        };
        let p = |px| Patient {
            id: "p".into(),
            institution: "?".into(),
            slices: vec![s(px)],
        };
        assert_eq!(p([5, 5, 5]).missing_sequence(), Some(MissingSequence::PreAndPostContrast));
        assert_eq!(p([4, 5, 5]).missing_sequence(), Some(MissingSequence::PostContrast));
        assert_eq!(p([4, 5, 6]).missing_sequence(), None);
    }
}
