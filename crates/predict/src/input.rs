//! Gathering prediction inputs into volumes.
//!
//! - A slice file (.tif/.tiff/.png/.jpg/.jpeg) or a folder (every non-`_mask` image below it).
//!   Slices are grouped into volumes by their folder, which is the unit of intensity
//!   normalisation (per patient, as in training). A volume of a single slice is normalised on
//!   that slice alone: the documented fallback when no neighbours are given.
//! - `_mask` files are ground truth, never input; when one sits beside a slice it is kept for
//!   comparison in the report.
//! - NIfTI volumes (.nii, .nii.gz): every axial slice; see [`crate::input::nifti_volume`].
//! - DICOM series: the `.dcm` files of one folder; see [`crate::input::dicom`].
//! - Sequences stored apart (`predict FLAIR --pre T1 --post T1C`): one volume each, combined
//!   into the three channels by [`collect_sequences`]; NIfTI files named as a BraTS case's
//!   (`<case>_flair`, `_t1`, `_t1ce`, `_t2`, `_seg`) are combined by case on their own, the
//!   segmentation as ground truth.
//!
//! Files that cannot be read are returned as failures (with the reason) while the rest go on.

use rayon::prelude::*;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use tumorscan_data::image_io::{read_mask, read_slice, ChannelPolicy};
use tumorscan_data::layout::parse_slice_stem;
use tumorscan_data::volume::order_slices;

/// Extensions taken as 2D slices.
pub const SLICE_EXTENSIONS: [&str; 5] = ["tif", "tiff", "png", "jpg", "jpeg"];

/// DICOM series input (moved to `tumorscan_data::dicom`; re-exported here).
pub use tumorscan_data::dicom;
/// NIfTI input and mask output (moved to `tumorscan_data::nifti`; re-exported here).
pub use tumorscan_data::nifti;
pub use tumorscan_data::volume::{InputSlice, NiftiGeometry, Volume};

/// An input that failed, with the reason.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Failure {
    /// Path.
    pub path: String,
    /// Why.
    pub error: String,
}

fn ext_of(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().to_ascii_lowercase())
        .map(|n| {
            if n.ends_with(".nii.gz") {
                "nii.gz".into()
            } else {
                n.rsplit_once('.').map(|(_, e)| e.to_string()).unwrap_or_default()
            }
        })
        .unwrap_or_default()
}

/// A ground-truth mask by its name (`<slice>_mask.png`, or a `_mask.nii.gz` volume such as
/// `predict` writes), never input.
fn is_mask(p: &Path) -> bool {
    p.file_name()
        .map(|n| {
            let n = n.to_string_lossy();
            let stem = if ext_of(p).starts_with("nii") {
                tumorscan_data::nifti::stem_of(&n)
            } else {
                p.file_stem().map(|s| s.to_string_lossy().to_string()).unwrap_or_default()
            };
            stem.to_ascii_lowercase().ends_with("_mask")
        })
        .unwrap_or(false)
}

/// What [`walk`] did with a folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Walked {
    /// Read (its files added, its subfolders walked).
    Read,
    /// The output folder of this run.
    Excluded,
    /// Already read under another path: a symbolic link loop, or a second link to it.
    Seen,
    /// The output of an earlier `tumorscan predict`.
    PredictOutput,
    /// Could not be read (a failure was recorded).
    Unreadable,
}

/// State of one folder walk over all inputs.
struct Walk<'a> {
    /// This run's output folder (canonical), never read back.
    skip: Option<&'a Path>,
    /// Canonical paths of the folders read so far: a folder is read once, so symbolic link
    /// loops (`p/me -> .`) end and a folder linked twice is not counted twice.
    visited: std::collections::HashSet<PathBuf>,
    files: Vec<PathBuf>,
    failures: Vec<Failure>,
    notes: Vec<String>,
}

/// Whether `dir` holds what `tumorscan predict` writes (its marker file, or, from versions
/// before the marker, `summary.json` beside a `predictions.csv` with predict's columns): its
/// overlays and masks are PNGs that would otherwise be read back as MRI slices.
pub fn is_predict_output(dir: &Path) -> bool {
    use std::io::Read;
    if dir.join(crate::output::OUT_MARKER).is_file() {
        return true;
    }
    if !dir.join("summary.json").is_file() {
        return false;
    }
    let Ok(f) = std::fs::File::open(dir.join("predictions.csv")) else {
        return false;
    };
    let mut head = Vec::new();
    if f.take(64).read_to_end(&mut head).is_err() {
        return false;
    }
    // Empty: an empty shard of a version that wrote no header.
    head.is_empty() || head.starts_with(crate::output::PREDICTION_COLUMNS[..3].join(",").as_bytes())
}

impl Walk<'_> {
    fn unreadable(&mut self, dir: &Path, e: std::io::Error) -> Walked {
        self.failures.push(Failure {
            path: dir.display().to_string(),
            error: format!("cannot read folder: {e}"),
        });
        Walked::Unreadable
    }

    fn walk(&mut self, dir: &Path) -> Walked {
        let canon = match dir.canonicalize() {
            Ok(c) => c,
            Err(e) => return self.unreadable(dir, e),
        };
        // Never read our own output folder back as input (predicting a folder into a subfolder).
        if self.skip == Some(canon.as_path()) {
            return Walked::Excluded;
        }
        if self.visited.contains(&canon) {
            return Walked::Seen;
        }
        if is_predict_output(dir) {
            return Walked::PredictOutput;
        }
        self.visited.insert(canon);
        let entries = match std::fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) => return self.unreadable(dir, e),
        };
        let mut paths: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| !p.file_name().map(|n| n.to_string_lossy().starts_with('.')).unwrap_or(true))
            .collect();
        paths.sort();
        for p in paths {
            if p.is_dir() {
                match self.walk(&p) {
                    Walked::Seen => self.notes.push(format!(
                        "skipped {}: folder {} already read (a symbolic link loop, or a second path to it)",
                        p.display(),
                        p.canonicalize().map(|c| c.display().to_string()).unwrap_or_default()
                    )),
                    Walked::PredictOutput => self.notes.push(format!(
                        "skipped {}: the output of an earlier `tumorscan predict`, not MRI input",
                        p.display()
                    )),
                    Walked::Read | Walked::Excluded | Walked::Unreadable => {}
                }
            } else {
                let ext = ext_of(&p);
                let volume = ext == "nii" || ext == "nii.gz";
                if volume && is_mask(&p) {
                    // A slice's _mask.png is its truth beside it; a lone _mask.nii.gz is not.
                    self.notes.push(format!(
                        "skipped {}: a ground-truth mask by its name, not MRI input (give it with --truth to score its volume)",
                        p.display()
                    ));
                } else if (SLICE_EXTENSIONS.contains(&ext.as_str()) && !is_mask(&p)) || volume || ext == "dcm" {
                    self.files.push(p);
                }
            }
        }
        Walked::Read
    }
}

/// The inputs of a run, read into volumes.
#[derive(Debug, Default)]
pub struct Inputs {
    /// Volumes read, with unique ids and unique output stems.
    pub volumes: Vec<Volume>,
    /// Inputs that failed, with the reason.
    pub failures: Vec<Failure>,
    /// What was skipped on purpose and why (symbolic link loops, files reached twice, earlier
    /// predict outputs), for the user's information.
    pub notes: Vec<String>,
}

/// Read every input into volumes, skipping the folder `exclude` (the output folder), folders
/// reached twice (symbolic link loops) and earlier predict outputs when walking folders; a
/// file reached by two paths is read once.
pub fn collect_inputs(inputs: &[PathBuf], exclude: Option<&Path>) -> Inputs {
    let skip = exclude.and_then(|e| e.canonicalize().ok());
    let mut w = Walk {
        skip: skip.as_deref(),
        visited: Default::default(),
        files: Vec::new(),
        failures: Vec::new(),
        notes: Vec::new(),
    };
    for inp in inputs {
        match std::fs::metadata(inp) {
            Err(e) => w.failures.push(Failure {
                path: inp.display().to_string(),
                error: format!("cannot read: {e}"),
            }),
            Ok(m) if m.is_dir() => {
                let before = w.files.len();
                let error = match w.walk(inp) {
                    Walked::Read if w.files.len() == before => {
                        Some("folder holds no slice images (.tif/.png/.jpg, not _mask), NIfTI volumes or DICOM (.dcm) files")
                    }
                    Walked::Excluded => Some("is the --out folder of this run, not input"),
                    Walked::PredictOutput => {
                        Some("is the output of an earlier `tumorscan predict`, not MRI input; name one of its subfolders to read it anyway")
                    }
                    Walked::Seen => {
                        w.notes
                            .push(format!("{} was already read as part of an earlier input", inp.display()));
                        None
                    }
                    Walked::Read | Walked::Unreadable => None,
                };
                if let Some(error) = error {
                    w.failures.push(Failure {
                        path: inp.display().to_string(),
                        error: error.into(),
                    });
                }
            }
            Ok(_) => {
                let ext = ext_of(inp);
                if is_mask(inp) {
                    w.failures.push(Failure {
                        path: inp.display().to_string(),
                        error: "is a ground-truth mask (_mask), not an input slice".into(),
                    });
                } else if SLICE_EXTENSIONS.contains(&ext.as_str()) || ext == "nii" || ext == "nii.gz" || ext == "dcm" {
                    w.files.push(inp.clone());
                } else {
                    w.failures.push(Failure {
                        path: inp.display().to_string(),
                        error: format!("unsupported file type '.{ext}': expected .tif, .tiff, .png, .jpg, .nii, .nii.gz or .dcm"),
                    });
                }
            }
        }
    }
    let Walk {
        files,
        mut failures,
        mut notes,
        ..
    } = w;
    let files = dedupe_files(files, &mut notes);
    let (dicom_files, files): (Vec<PathBuf>, Vec<PathBuf>) = files.into_iter().partition(|p| ext_of(p) == "dcm");
    let (volume_files, slice_files): (Vec<PathBuf>, Vec<PathBuf>) = files.into_iter().partition(|p| ext_of(p).starts_with("nii"));
    // DICOM: one series per folder.
    let mut series: BTreeMap<PathBuf, Vec<PathBuf>> = BTreeMap::new();
    for f in dicom_files {
        series
            .entry(f.parent().map(Path::to_path_buf).unwrap_or_default())
            .or_default()
            .push(f);
    }
    let mut volumes = Vec::new();
    read_nifti_files(volume_files, &mut volumes, &mut failures, &mut notes);
    // Folders of only non-image DICOM files: a note beside other volumes, a failure when they are
    // all there is (nothing would be predicted).
    let mut no_images = Vec::new();
    for (dir, files) in series {
        match dicom::read_series(&dir, &files) {
            Ok(dicom::SeriesRead::Volume(v)) => volumes.push(*v),
            // A study's segmentation or report series beside its image series.
            Ok(dicom::SeriesRead::NoImages(skipped)) => no_images.push((dir, skipped)),
            Err(e) => failures.push(Failure {
                path: dir.display().to_string(),
                error: e,
            }),
        }
    }
    let masks = MasksByFolder::list(&slice_files);
    let decoded: Vec<(PathBuf, Result<Decoded, String>)> = slice_files
        .par_iter()
        .map(|p| {
            let r = read_slice(p, ChannelPolicy::Lenient).map_err(|e| e.to_string()).map(|img| {
                let stem = p.file_stem().map(|s| s.to_string_lossy().to_string()).unwrap_or_default();
                let number = parse_slice_stem(&stem).map(|(_, n, _)| n).unwrap_or(0);
                // A mask that cannot serve as ground truth is said, not silently dropped.
                let beside = masks.beside(p).map(|m| m.map(|m| (if img.turned { None } else { Some(read_mask(&m)) }, m)));
                let (truth, unused) = match beside {
                    None => (None, None),
                    Some(Err(two)) => (None, Some(two)),
                    // Drawn on the photo as shown or as stored: no way to tell.
                    Some(Ok((None, path))) => (
                        None,
                        Some(format!(
                            "{}: its slice is turned by its EXIF orientation, and whether the mask was drawn on it turned is unknown; not used as ground truth",
                            path.display()
                        )),
                    ),
                    Some(Ok((Some(Ok(m)), _))) if (m.width, m.height) == (img.width, img.height) => (Some(m.data), None),
                    Some(Ok((Some(Ok(m)), path))) => (
                        None,
                        Some(format!(
                            "{}: {}x{}, its slice {}x{}; not used as ground truth",
                            path.display(),
                            m.width,
                            m.height,
                            img.width,
                            img.height
                        )),
                    ),
                    Some(Ok((Some(Err(e)), _))) => (None, Some(format!("{e}; not used as ground truth"))),
                };
                (InputSlice::from_image(p.display().to_string(), stem, number, img, truth), unused)
            });
            (p.clone(), r)
        })
        .collect();
    let mut groups: BTreeMap<PathBuf, Vec<InputSlice>> = BTreeMap::new();
    let mut unread: BTreeMap<PathBuf, usize> = BTreeMap::new();
    for (p, r) in decoded {
        if r.is_err() {
            *unread.entry(p.parent().map(Path::to_path_buf).unwrap_or_default()).or_default() += 1;
        }
        match r {
            Ok((s, unused)) => {
                notes.extend(unused);
                groups
                    .entry(p.parent().map(Path::to_path_buf).unwrap_or_default())
                    .or_default()
                    .push(s)
            }
            Err(e) => failures.push(Failure {
                path: p.display().to_string(),
                error: e,
            }),
        }
    }
    for (dir, mut slices) in groups {
        order_slices(&mut slices);
        let with_truth = slices.iter().filter(|s| s.truth.is_some()).count();
        let failed = unread.get(&dir).copied().unwrap_or(0);
        if with_truth > 0 && failed > 0 {
            // Its Dice would leave the unread slices' tumour out of the count, silently.
            slices.iter_mut().for_each(|s| s.truth = None);
            notes.push(format!(
                "{}: {failed} slice(s) could not be read, so the volume is not scored against ground truth",
                dir.display()
            ));
        } else if with_truth > 0 && with_truth < slices.len() {
            notes.push(format!(
                "{}: {with_truth} of {} slices have a usable _mask file, so the volume is not scored against ground truth",
                dir.display(),
                slices.len()
            ));
        }
        let id = dir
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_else(|| ".".into());
        volumes.push(Volume {
            id,
            source: dir,
            slices,
            nifti: None,
            dicom: None,
            slice_thickness_mm: None,
            notes: Vec::new(),
        });
    }
    if volumes.is_empty() && failures.is_empty() {
        failures.extend(no_images.into_iter().map(|(dir, skipped)| Failure {
            path: dir.display().to_string(),
            error: format!("no DICOM images ({})", skipped.join("; ")),
        }));
    } else {
        notes.extend(no_images.into_iter().flat_map(|(_, skipped)| skipped));
    }
    unique_names(&mut volumes);
    // What concerns a whole volume (another plane, an oblique one) is said once, not per slice.
    for v in &volumes {
        notes.extend(v.notes.iter().map(|n| format!("{}: {n}", v.source.display())));
    }
    Inputs { volumes, failures, notes }
}

/// Read NIfTI files into volumes. Files named by the BraTS conventions
/// ([`tumorscan_data::sequences::role_from_name`]) are grouped by folder and case: a case with a
/// FLAIR volume and other sequences or a segmentation becomes one volume named after the case
/// (sequences combined, the segmentation its ground truth, T2 left out with a note). Other
/// files are volumes of their own; a segmentation without its FLAIR is refused (not an image),
/// and a T1 or T2 without one is read as FLAIR, with a note.
fn read_nifti_files(files: Vec<PathBuf>, volumes: &mut Vec<Volume>, failures: &mut Vec<Failure>, notes: &mut Vec<String>) {
    use tumorscan_data::sequences::{role_from_name, Role, Sequence};
    let mut cases: BTreeMap<(PathBuf, String), Vec<(Role, PathBuf)>> = BTreeMap::new();
    let mut alone = Vec::new();
    for f in files {
        match f.file_name().and_then(|n| role_from_name(&n.to_string_lossy())) {
            // Grouped as the names are matched: regardless of letter case.
            Some((case, role)) => cases
                .entry((f.parent().map(Path::to_path_buf).unwrap_or_default(), case.to_ascii_lowercase()))
                .or_default()
                .push((role, f)),
            None => alone.push(f),
        }
    }
    let flair = Role::Sequence(Sequence::Flair);
    for ((dir, case), members) in cases {
        if members.len() > 1 && members.iter().any(|(r, _)| *r == flair) {
            match read_case(&members) {
                Ok((v, t2)) => {
                    volumes.push(v);
                    if let Some(t2) = t2 {
                        notes.push(format!(
                            "{}: T2 is not used (the networks read pre-contrast, FLAIR and post-contrast)",
                            t2.display()
                        ));
                    }
                }
                Err(e) => failures.push(Failure {
                    path: format!("case {case} in {}", dir.display()),
                    error: e,
                }),
            }
            continue;
        }
        for (role, f) in members {
            match role {
                Role::Truth => failures.push(Failure {
                    path: f.display().to_string(),
                    error: format!("is a segmentation by its name, not an image; it scores case {case} when that case's FLAIR is beside it, or give it with --truth"),
                }),
                Role::Sequence(Sequence::Flair) => alone.push(f),
                _ => {
                    notes.push(format!(
                        "{}: its name says it is not FLAIR, but no FLAIR of case {case} is beside it; read as FLAIR",
                        f.display()
                    ));
                    alone.push(f);
                }
            }
        }
    }
    for f in alone {
        match nifti_volume(&f) {
            Ok(v) => volumes.push(v),
            Err(e) => failures.push(Failure {
                path: f.display().to_string(),
                error: e,
            }),
        }
    }
}

/// One BraTS-style case: its FLAIR combined with its other sequences, scored against its
/// segmentation when there is one, and named after the case as its FLAIR file spells it; also
/// returns the T2 volume left out.
fn read_case(members: &[(tumorscan_data::sequences::Role, PathBuf)]) -> Result<(Volume, Option<PathBuf>), String> {
    use tumorscan_data::sequences::{combine, role_from_name, Role, Sequence};
    let of = |role: Role| -> Result<Option<&PathBuf>, String> {
        let mut found = members.iter().filter(|(r, _)| *r == role).map(|(_, p)| p);
        match (found.next(), found.next()) {
            (Some(a), Some(b)) => Err(format!("two volumes of one kind: {} and {}", a.display(), b.display())),
            (a, _) => Ok(a),
        }
    };
    let read = |p: &PathBuf| nifti_volume(p).map_err(|e| format!("{}: {e}", p.display()));
    let flair_path = of(Role::Sequence(Sequence::Flair))?.ok_or("no FLAIR")?;
    let case = flair_path
        .file_name()
        .and_then(|n| role_from_name(&n.to_string_lossy()))
        .map(|(case, _)| case)
        .unwrap_or_default();
    let flair = read(flair_path)?;
    let mut others = Vec::new();
    for seq in [Sequence::PreContrast, Sequence::PostContrast] {
        if let Some(p) = of(Role::Sequence(seq))? {
            others.push((seq, read(p)?));
        }
    }
    let mut volume = combine(flair, &others)?;
    if let Some(seg) = of(Role::Truth)? {
        read_truth(&mut volume, seg)?;
    }
    volume.id = case;
    Ok((volume, of(Role::T2)?.cloned()))
}

/// A decoded slice, and why a `_mask` file beside it could not serve as its ground truth.
type Decoded = (InputSlice, Option<String>);

/// Sorted files, each once: a file reached by two paths (a link to it, or given twice) is
/// read once, under the first path in sorted order; the others are noted.
fn dedupe_files(mut files: Vec<PathBuf>, notes: &mut Vec<String>) -> Vec<PathBuf> {
    files.sort();
    files.dedup();
    let mut first: std::collections::HashMap<PathBuf, usize> = Default::default();
    let mut kept = Vec::with_capacity(files.len());
    for f in files {
        // Unresolvable (a dangling link): kept, so reading it reports the problem.
        let Ok(canon) = f.canonicalize() else {
            kept.push(f);
            continue;
        };
        match first.get(&canon) {
            Some(&i) => notes.push(format!("skipped {}: the same file as {}", f.display(), kept[i].display())),
            None => {
                first.insert(canon, kept.len());
                kept.push(f);
            }
        }
    }
    kept
}

/// The `_mask` files of the slices' folders, each folder listed once (not once per slice),
/// by lower-case name.
struct MasksByFolder(HashMap<PathBuf, HashMap<String, Vec<PathBuf>>>);

impl MasksByFolder {
    fn list(slices: &[PathBuf]) -> Self {
        let mut folders = HashMap::new();
        for dir in slices.iter().map(|p| folder_of(p)) {
            folders.entry(dir.to_path_buf()).or_insert_with(|| {
                let mut names: HashMap<String, Vec<PathBuf>> = HashMap::new();
                for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                    names
                        .entry(e.file_name().to_string_lossy().to_ascii_lowercase())
                        .or_default()
                        .push(e.path());
                }
                names
            });
        }
        Self(folders)
    }

    /// The ground-truth mask beside slice `p` (`<stem>_mask.<ext>` in any slice format and
    /// letter case), or why none can serve: two of them.
    fn beside(&self, p: &Path) -> Option<std::result::Result<PathBuf, String>> {
        let stem = p.file_stem()?.to_string_lossy().to_ascii_lowercase();
        let names = self.0.get(folder_of(p))?;
        // Any slice format: a JPEG slice's mask is usually a PNG.
        let mut found: Vec<&PathBuf> = SLICE_EXTENSIONS
            .iter()
            .filter_map(|e| names.get(&format!("{stem}_mask.{e}")))
            .flatten()
            .collect();
        found.sort();
        match found.as_slice() {
            [] => None,
            [one] => Some(Ok(one.to_path_buf())),
            many => Some(Err(format!(
                "{}: {} masks for one slice; none used as ground truth",
                many.iter().map(|f| f.display().to_string()).collect::<Vec<_>>().join(" and "),
                many.len()
            ))),
        }
    }
}

/// The folder a file is in ("." for a bare name).
fn folder_of(p: &Path) -> &Path {
    p.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."))
}

/// `name`, or the first of `name-2`, `name-3`, ... not in `used`; the result is added to `used`.
fn unique_name(name: &str, used: &mut std::collections::HashSet<String>) -> String {
    let mut candidate = name.to_string();
    let mut n = 1;
    while used.contains(&candidate) {
        n += 1;
        candidate = format!("{name}-{n}");
    }
    used.insert(candidate.clone());
    candidate
}

/// Make output names unique across the run, so no output file overwrites another: slice
/// stems (`masks/<stem>_mask.png`) and volume ids (`<id>_mask.nii.gz`, the CSV's `volume`,
/// `summary.json`) become `name`, `name-2`, ...
fn unique_names(volumes: &mut [Volume]) {
    let mut stems = std::collections::HashSet::new();
    let mut ids = std::collections::HashSet::new();
    for v in volumes.iter_mut() {
        v.id = unique_name(&v.id, &mut ids);
        for s in v.slices.iter_mut() {
            s.stem = unique_name(&s.stem, &mut stems);
        }
    }
}

/// The one volume an input holds (with the notes its reading gave), or why there is not
/// exactly one.
fn one_volume(what: &str, path: &Path, exclude: Option<&Path>) -> Result<(Volume, Vec<String>), String> {
    let Inputs {
        mut volumes,
        failures,
        notes,
    } = collect_inputs(&[path.to_path_buf()], exclude);
    if let Some(f) = failures.first() {
        return Err(format!("{what} {}: {}", f.path, f.error));
    }
    match volumes.len() {
        1 => Ok((volumes.remove(0), notes)),
        n => Err(format!(
            "{what} {} holds {n} volumes; give one NIfTI file, one DICOM series folder or one folder of slices",
            path.display()
        )),
    }
}

/// What completes one input into one patient's volume: the sequences stored apart from FLAIR,
/// and a ground-truth mask volume.
#[derive(Debug, Clone, Copy, Default)]
pub struct Companions<'a> {
    /// Pre-contrast T1 (`--pre`).
    pub pre: Option<&'a Path>,
    /// Post-contrast T1 (`--post`).
    pub post: Option<&'a Path>,
    /// Ground truth, a NIfTI mask volume (`--truth`).
    pub truth: Option<&'a Path>,
}

/// Read an input and what completes it into one volume: FLAIR and the sequences stored apart
/// from it combined into three channels (a sequence not given gets FLAIR, see
/// [`tumorscan_data::sequences::combine`]), scored against `truth` when given. Refuses a file
/// given twice, and one whose BraTS-style name says it is something else. Returns the notes
/// the reading gave.
pub fn collect_sequences(input: &Path, with: Companions, exclude: Option<&Path>) -> Result<(Volume, Vec<String>), String> {
    use tumorscan_data::sequences::{combine, role_from_name, Role, Sequence};
    let named = |role: Role| match role {
        Role::Sequence(s) => s.name(),
        Role::T2 => "T2",
        Role::Truth => "a segmentation",
    };
    let input_is = if with.pre.or(with.post).is_some() { "FLAIR input" } else { "input" };
    let given = [
        (input_is, Some(input), None),
        ("--pre", with.pre, Some(Role::Sequence(Sequence::PreContrast))),
        ("--post", with.post, Some(Role::Sequence(Sequence::PostContrast))),
        ("--truth", with.truth, Some(Role::Truth)),
    ];
    let mut seen: Vec<(PathBuf, &str)> = Vec::new();
    for (what, path, expected) in given {
        let Some(path) = path else { continue };
        let canonical = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
        if let Some((_, first)) = seen.iter().find(|(p, _)| *p == canonical) {
            return Err(format!("{} is given as both {first} and {what}", path.display()));
        }
        seen.push((canonical, what));
        // A BraTS-style name that says something else is almost surely a slip. The input is
        // FLAIR when sequences complete it, else anything a volume can be read from.
        let expected = match (expected, with.pre.or(with.post)) {
            (None, Some(_)) => Some(Role::Sequence(Sequence::Flair)),
            (e, _) => e,
        };
        let role = path.file_name().and_then(|n| role_from_name(&n.to_string_lossy()));
        if let (Some((_, role)), Some(expected)) = (role, expected) {
            if role != expected {
                return Err(format!("{what} {}: its name says {}", path.display(), named(role)));
            }
        }
    }
    let (mut volume, mut notes) = one_volume(input_is, input, exclude)?;
    let mut others = Vec::new();
    for (seq, flag, path) in [
        (Sequence::PreContrast, "--pre", with.pre),
        (Sequence::PostContrast, "--post", with.post),
    ] {
        if let Some(p) = path {
            let (v, n) = one_volume(flag, p, exclude)?;
            others.push((seq, v));
            notes.extend(n);
        }
    }
    if !others.is_empty() {
        volume = combine(volume, &others)?;
    }
    if let Some(t) = with.truth {
        if volume.slices.iter().any(|s| s.truth.is_some()) {
            notes.push(format!(
                "--truth {} replaces the ground truth that came with the input",
                t.display()
            ));
        }
        read_truth(&mut volume, t)?;
    }
    Ok((volume, notes))
}

/// Give a NIfTI volume the ground truth of the mask volume at `path` (non-zero voxels are
/// tumour), on its voxel grid; see [`tumorscan_data::sequences::attach_truth`].
pub fn read_truth(volume: &mut Volume, path: &Path) -> Result<(), String> {
    let (geometry, masks) = nifti::read_mask(path).map_err(|e| format!("ground truth {}: {e}", path.display()))?;
    tumorscan_data::sequences::attach_truth(volume, &geometry, masks, path)
}

/// Read a NIfTI-1 volume (.nii or .nii.gz) as axial slices; see [`tumorscan_data::nifti`].
pub fn nifti_volume(path: &Path) -> Result<Volume, String> {
    nifti::read(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slice_png(path: &Path) {
        image::RgbImage::from_fn(16, 16, |x, y| image::Rgb([x as u8 * 8, y as u8 * 8, 40]))
            .save(path)
            .unwrap();
    }

    fn volume(id: &str, stems: &[&str]) -> Volume {
        let img = |_| tumorscan_data::image_io::RgbImage {
            width: 1,
            height: 1,
            data: vec![0; 3],
            turned: false,
            notes: Vec::new(),
        };
        Volume {
            id: id.into(),
            source: PathBuf::from(id),
            slices: stems
                .iter()
                .map(|s| InputSlice::from_image(s.to_string(), s.to_string(), 0, img(s), None))
                .collect(),
            nifti: None,
            dicom: None,
            slice_thickness_mm: None,
            notes: Vec::new(),
        }
    }

    #[test]
    fn volume_ids_and_stems_are_made_unique() {
        // Two `flair.nii.gz` from different folders, and a real `flair-2` besides.
        let mut v = vec![
            volume("flair", &["flair_z000"]),
            volume("flair-2", &["x"]),
            volume("flair", &["flair_z000"]),
        ];
        unique_names(&mut v);
        let ids: Vec<&str> = v.iter().map(|v| v.id.as_str()).collect();
        assert_eq!(ids, ["flair", "flair-2", "flair-3"]);
        assert_eq!(v[2].slices[0].stem, "flair_z000-2");
    }

    #[cfg(unix)]
    #[test]
    fn symbolic_link_loops_end_and_each_file_counts_once() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("p");
        std::fs::create_dir(&p).unwrap();
        slice_png(&p.join("a_1.png"));
        std::os::unix::fs::symlink(".", p.join("me")).unwrap();
        std::os::unix::fs::symlink("..", p.join("up")).unwrap();
        std::os::unix::fs::symlink("../p", p.join("self")).unwrap();
        std::os::unix::fs::symlink("a_1.png", p.join("b_1.png")).unwrap();
        let got = collect_inputs(&[d.path().to_path_buf()], None);
        assert!(got.failures.is_empty(), "{:?}", got.failures);
        assert_eq!(got.volumes.len(), 1);
        assert_eq!(got.volumes[0].slices.len(), 1, "one file, read once");
        let notes = got.notes.join("\n");
        for link in ["me", "up", "self", "b_1.png"] {
            assert!(notes.contains(&p.join(link).display().to_string()), "{link} noted: {notes}");
        }
    }

    #[test]
    fn earlier_predict_outputs_are_not_read_as_input() {
        let d = tempfile::tempdir().unwrap();
        slice_png(&d.path().join("a_1.png"));
        let out = d.path().join("results");
        std::fs::create_dir_all(out.join("overlays")).unwrap();
        slice_png(&out.join("overlays/a_1.png"));
        std::fs::write(out.join("summary.json"), "{}").unwrap();
        std::fs::write(out.join("predictions.csv"), "file,volume,slice,tumor_probability\n").unwrap();
        let got = collect_inputs(&[d.path().to_path_buf()], None);
        assert_eq!(got.volumes.len(), 1);
        assert_eq!(got.volumes[0].slices.len(), 1);
        assert!(
            got.notes.iter().any(|n| n.contains("earlier `tumorscan predict`")),
            "{:?}",
            got.notes
        );
        // Named itself: refused with the reason.
        let got = collect_inputs(std::slice::from_ref(&out), None);
        assert!(got.volumes.is_empty());
        assert!(got.failures[0].error.contains("earlier `tumorscan predict`"));
        // A CSV of another kind does not make a folder an output.
        std::fs::write(out.join("predictions.csv"), "id,score\n").unwrap();
        assert!(!is_predict_output(&out));
        // A run killed before its summary.json left only masks/ and overlays/: its marker
        // still says what the folder is (it was read as a patient called "overlays").
        std::fs::remove_file(out.join("summary.json")).unwrap();
        std::fs::remove_file(out.join("predictions.csv")).unwrap();
        let created = crate::output::create_out_dir(&out).unwrap();
        assert!(is_predict_output(&out));
        assert_eq!(collect_inputs(&[d.path().to_path_buf()], None).volumes.len(), 1);
        // A run that fails before writing takes its marker away with its folders.
        created.remove_if_empty();
        assert!(!out.join(crate::output::OUT_MARKER).exists());
    }

    /// A lone `_mask.nii.gz` in a folder was predicted on as a scan; a slice that could not be
    /// read left its tumour out of its volume's Dice.
    #[test]
    fn masks_in_folders_and_partly_read_volumes_are_not_scored_as_scans() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("flair_mask.nii.gz"), b"not read").unwrap();
        let got = collect_inputs(&[d.path().to_path_buf()], None);
        assert!(got.volumes.is_empty(), "{got:?}");
        assert!(
            got.notes.iter().any(|n| n.contains("ground-truth mask by its name")),
            "{:?}",
            got.notes
        );

        let p = d.path().join("p");
        std::fs::create_dir(&p).unwrap();
        for n in 1..=3 {
            slice_png(&p.join(format!("p_{n}.png")));
            image::GrayImage::new(16, 16).save(p.join(format!("p_{n}_mask.png"))).unwrap();
        }
        let scored = collect_inputs(std::slice::from_ref(&p), None);
        assert!(scored.volumes[0].slices.iter().all(|s| s.truth.is_some()));
        // A JPEG slice's mask beside it as PNG, and masks in capitals, were not paired.
        let jpeg = d.path().join("j");
        std::fs::create_dir(&jpeg).unwrap();
        image::RgbImage::new(16, 16).save(jpeg.join("j_1.jpg")).unwrap();
        image::GrayImage::new(16, 16).save(jpeg.join("j_1_mask.png")).unwrap();
        slice_png(&jpeg.join("j_2.png"));
        image::GrayImage::new(16, 16).save(jpeg.join("j_2_MASK.png")).unwrap();
        std::fs::rename(jpeg.join("j_2_MASK.png"), jpeg.join("j_2_MASK.PNG")).unwrap();
        let got = collect_inputs(std::slice::from_ref(&jpeg), None);
        assert!(got.volumes[0].slices.iter().all(|s| s.truth.is_some()), "{got:?}");
        // Two masks for one slice: neither is guessed.
        image::GrayImage::new(16, 16).save(jpeg.join("j_1_mask.tif")).unwrap();
        let got = collect_inputs(std::slice::from_ref(&jpeg), None);
        assert!(got.volumes[0].slices[0].truth.is_none());
        assert!(got.notes.iter().any(|n| n.contains("2 masks for one slice")), "{:?}", got.notes);
        std::fs::write(p.join("p_2.png"), b"truncated").unwrap();
        let got = collect_inputs(std::slice::from_ref(&p), None);
        assert_eq!((got.volumes[0].slices.len(), got.failures.len()), (2, 1));
        assert!(got.volumes[0].slices.iter().all(|s| s.truth.is_none()));
        assert!(got.notes.iter().any(|n| n.contains("could not be read")), "{:?}", got.notes);
    }
}
