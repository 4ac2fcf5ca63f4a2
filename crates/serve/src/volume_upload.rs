//! Volumes sent to `/v1/predict/volume`: one NIfTI volume (a `.nii` / `.nii.gz` file, or a
//! BraTS-style case's files) or one DICOM series (its `.dcm` files), read as `tumorscan
//! predict` reads them from disk.
//!
//! A NIfTI request's files take their roles from their names, as `predict` does in a folder:
//! `<case>_<flair|t1|t1ce|t1gd|t2|seg>.nii[.gz]` (BraTS 2021) or
//! `<case>-<t2f|t1n|t1c|t2w|seg>` (BraTS 2023) are the case's sequences and segmentation (T2 is
//! not read beside FLAIR; a lone T1, T1ce or T2 is read as FLAIR, with a note), and
//! `<name>_mask.nii[.gz]` is the ground truth of `<name>.nii[.gz]`. One volume per request:
//! files of another case, or two files of one role, are refused. Sizes come from the NIfTI
//! headers before anything is decompressed, slice count included (every slice costs a network
//! pass however small it is); a DICOM series (at most `--max-files` files) is sized from each
//! file's Rows and Columns before its pixel data is decoded (a compressed frame can hold far
//! more pixels than its bytes).

use crate::{bad, too_large, unprocessable, ApiError, Limits, Upload};
use tumorscan_data::sequences::{attach_truth, combine, role_from_name, Role, Sequence};
use tumorscan_data::volume::Volume;
use tumorscan_data::{dicom, nifti};

/// What the files of a request are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// 2D slice images (TIFF, PNG, JPEG).
    Slices,
    /// NIfTI volumes (plain or gzipped).
    Nifti,
    /// DICOM files of one series.
    Dicom,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Slices => "a 2D slice image",
            Kind::Nifti => "a NIfTI volume",
            Kind::Dicom => "a DICOM file",
        }
    }
}

/// The kind of a file, by its name and first bytes (a gzip file is taken for a `.nii.gz`).
pub(crate) fn kind_of(name: &str, bytes: &[u8]) -> Kind {
    let lower = name.to_ascii_lowercase();
    if lower.ends_with(".nii")
        || lower.ends_with(".nii.gz")
        || bytes.get(344..347) == Some(b"n+1".as_slice())
        || bytes.starts_with(&[0x1f, 0x8b])
    {
        Kind::Nifti
    } else if lower.ends_with(".dcm") || bytes.get(128..132) == Some(b"DICM".as_slice()) {
        Kind::Dicom
    } else {
        Kind::Slices
    }
}

/// A request's files without the ones a scan folder holds beside its images (dcm2niix's `.json`
/// sidecars, a `DICOMDIR`, text, hidden files), which `predict` passes over in a folder too;
/// returns the notes that say what was skipped. 400 when nothing else is left.
pub(crate) fn without_sidecars(uploads: Vec<Upload>) -> Result<(Vec<Upload>, Vec<String>), ApiError> {
    const SIDECARS: [&str; 9] = [".json", ".txt", ".csv", ".md", ".xml", ".html", ".bval", ".bvec", ".db"];
    let (sidecars, images): (Vec<Upload>, Vec<Upload>) = uploads.into_iter().partition(|u| {
        let lower = u.name.to_ascii_lowercase();
        lower == "dicomdir" || lower.starts_with('.') || SIDECARS.iter().any(|x| lower.ends_with(x))
    });
    if images.is_empty() {
        return Err(bad(
            "no image or volume among the files (only sidecars such as .json, .txt or DICOMDIR)",
        ));
    }
    let notes = sidecars
        .iter()
        .map(|u| format!("skipped {}: not an image (a sidecar file)", u.name))
        .collect();
    Ok((images, notes))
}

/// The one kind all of a request's files are; a mix is refused (400).
pub(crate) fn kind_of_request(uploads: &[Upload]) -> Result<Kind, ApiError> {
    let kind = |u: &Upload| kind_of(&u.name, &u.bytes);
    let first = uploads.first().map_or(Kind::Slices, kind);
    match uploads.iter().find(|u| kind(u) != first) {
        Some(odd) => Err(bad(format!(
            "{} is {} but {} is {}: send one kind of input per request (slice images, one NIfTI volume, or one DICOM series)",
            odd.name,
            kind(odd).name(),
            uploads[0].name,
            first.name()
        ))),
        None => Ok(first),
    }
}

/// One volume to read: its image file(s) by role, and its ground truth.
pub(crate) struct VolumeUpload {
    /// What the volume is called: the case of BraTS-style names, else the image's file stem.
    pub id: String,
    source: Source,
}

enum Source {
    Nifti {
        image: Upload,
        pre: Option<Upload>,
        post: Option<Upload>,
        truth: Option<Upload>,
        /// Notes for every slice (a T2 left out, a sequence read as FLAIR).
        notes: Vec<String>,
    },
    Dicom(Vec<Upload>),
}

impl VolumeUpload {
    /// Whether the volume is NIfTI (so that its mask can be sent back as NIfTI).
    pub fn is_nifti(&self) -> bool {
        matches!(self.source, Source::Nifti { .. })
    }
}

/// Sort a request's NIfTI or DICOM files into one volume (400 when they are not one volume).
pub(crate) fn plan(kind: Kind, uploads: Vec<Upload>) -> Result<VolumeUpload, ApiError> {
    match kind {
        Kind::Dicom => Ok(VolumeUpload {
            id: "dicom-series".into(),
            source: Source::Dicom(uploads),
        }),
        _ => plan_nifti(uploads),
    }
}

/// A slot for the one file of a role; a second one is refused.
fn put(slot: &mut Option<(String, Upload)>, key: String, u: Upload, what: &str) -> Result<(), ApiError> {
    if let Some((_, first)) = slot {
        return Err(bad(format!(
            "two {what} files, {} and {}: send one volume (one case's files) per request",
            first.name, u.name
        )));
    }
    *slot = Some((key, u));
    Ok(())
}

fn plan_nifti(uploads: Vec<Upload>) -> Result<VolumeUpload, ApiError> {
    let (mut image, mut pre, mut post, mut t2, mut truth) = (None, None, None, None, None);
    let mut notes = Vec::new();
    for u in uploads {
        let stem = nifti::stem_of(&u.name);
        let lower = stem.to_ascii_lowercase();
        if let Some(of) = lower.strip_suffix("_mask") {
            let key = stem[..of.len()].to_string();
            put(&mut truth, key, u, "ground-truth")?;
            continue;
        }
        match role_from_name(&u.name) {
            Some((case, Role::Sequence(Sequence::Flair))) => put(&mut image, case, u, "FLAIR")?,
            Some((case, Role::Sequence(Sequence::PreContrast))) => put(&mut pre, case, u, "pre-contrast (T1)")?,
            Some((case, Role::Sequence(Sequence::PostContrast))) => put(&mut post, case, u, "post-contrast (T1ce)")?,
            Some((case, Role::Truth)) => put(&mut truth, case, u, "segmentation")?,
            Some((case, Role::T2)) => put(&mut t2, case, u, "T2")?,
            None => put(&mut image, stem, u, "image volume")?,
        }
    }
    // Without FLAIR, a lone T1, T1ce or T2 is read as FLAIR, as `predict` reads it.
    let image = match (image, pre.is_some() as u8 + post.is_some() as u8 + t2.is_some() as u8) {
        (Some(i), _) => i,
        (None, 1) => {
            let only = pre.take().or(post.take()).or(t2.take()).expect("one of three");
            notes.push(format!(
                "{}: its name says it is not FLAIR, but no FLAIR was sent; read as FLAIR",
                only.1.name
            ));
            only
        }
        (None, 0) => {
            return Err(bad(match &truth {
                Some((_, t)) => format!("{}: only a ground truth was sent; send its image volume too", t.name),
                None => "no image volume was sent".into(),
            }))
        }
        (None, _) => return Err(bad("no FLAIR volume among the other sequences: send the case's FLAIR too")),
    };
    let (id, image) = image;
    let image_stem = nifti::stem_of(&image.name);
    for (key, u) in [&pre, &post, &t2].into_iter().flatten() {
        if !key.eq_ignore_ascii_case(&id) {
            return Err(bad(format!(
                "{} belongs to {key} by its name, not to {id} ({}): send one volume (one case's files) per request",
                u.name, image.name
            )));
        }
    }
    // A mask names its case (`<case>_seg`) or its image file (`<file stem>_mask`).
    if let Some((key, u)) = &truth {
        if !key.eq_ignore_ascii_case(&id) && !key.eq_ignore_ascii_case(&image_stem) {
            return Err(bad(format!(
                "{} belongs to {key} by its name, not to {image_stem} ({}): send one volume (one case's files) per request",
                u.name, image.name
            )));
        }
    }
    if let Some((_, u)) = &t2 {
        notes.push(format!(
            "{}: T2 is not used (the networks read pre-contrast, FLAIR and post-contrast)",
            u.name
        ));
    }
    Ok(VolumeUpload {
        id,
        source: Source::Nifti {
            image,
            pre: pre.map(|p| p.1),
            post: post.map(|p| p.1),
            truth: truth.map(|t| t.1),
            notes,
        },
    })
}

/// Refuse a NIfTI request too large to read, from its headers alone: 422 for slices over
/// `max_image_pixels`, 413 for more slices than `max_files` or more voxels in all than
/// `max_request_pixels`. A DICOM series is checked in [`read`].
pub(crate) fn check_sizes(limits: &Limits, v: &VolumeUpload) -> Result<(), ApiError> {
    let Source::Nifti {
        image, pre, post, truth, ..
    } = &v.source
    else {
        return Ok(());
    };
    let mut total = 0u64;
    for u in std::iter::once(image).chain(pre).chain(post).chain(truth) {
        let [width, height, slices, channels] = nifti::declared_dims(&u.bytes).map_err(|e| unprocessable(format!("{}: {e}", u.name)))?;
        if slices > limits.max_files {
            return Err(too_large(format!(
                "{}: {slices} slices, over the limit of {} per request (--max-files)",
                u.name, limits.max_files
            )));
        }
        let plane = (width * height) as u64;
        check_plane(limits, &u.name, plane)?;
        total += plane * (slices * channels) as u64;
    }
    check_total(limits, total)
}

fn check_plane(limits: &Limits, name: &str, pixels: u64) -> Result<(), ApiError> {
    if pixels > limits.max_image_pixels {
        return Err(unprocessable(format!(
            "{name}: its slices hold {pixels} pixels each, over the limit of {} per image (--max-image-pixels)",
            limits.max_image_pixels
        )));
    }
    Ok(())
}

fn check_total(limits: &Limits, total: u64) -> Result<(), ApiError> {
    if total > limits.max_request_pixels {
        return Err(too_large(format!(
            "the volumes hold {total} voxels in all, over the limit of {} per request (--max-request-pixels)",
            limits.max_request_pixels
        )));
    }
    Ok(())
}

/// Read the volume (422 when a file cannot be read or the files do not fit together).
pub(crate) fn read(limits: &Limits, v: VolumeUpload) -> Result<Volume, ApiError> {
    let mut volume = match v.source {
        Source::Nifti {
            image,
            pre,
            post,
            truth,
            notes,
        } => {
            let read = |u: &Upload| nifti::read_bytes(&u.name, &u.bytes).map_err(|e| unprocessable(format!("{}: {e}", u.name)));
            let mut others = Vec::new();
            for (seq, u) in [(Sequence::PreContrast, &pre), (Sequence::PostContrast, &post)] {
                if let Some(u) = u {
                    others.push((seq, read(u)?));
                }
            }
            let mut volume = read(&image)?;
            if !others.is_empty() {
                volume = combine(volume, &others).map_err(unprocessable)?;
            }
            if let Some(t) = truth {
                let (geometry, masks) = nifti::read_mask_bytes(&t.bytes).map_err(|e| unprocessable(format!("{}: {e}", t.name)))?;
                attach_truth(&mut volume, &geometry, masks, std::path::Path::new(&t.name)).map_err(unprocessable)?;
            }
            for s in &mut volume.slices {
                s.notes.extend(notes.iter().cloned());
            }
            volume
        }
        Source::Dicom(uploads) => {
            let mut total = 0u64;
            let mut raws = Vec::with_capacity(uploads.len());
            let mut skipped = Vec::new();
            for u in &uploads {
                // Sized before its pixels are decoded: a compressed frame can hold far more
                // pixels than its bytes, a multi-frame file many slices (each costs a network
                // pass, so they count against --max-files as a NIfTI volume's do).
                let read = dicom::read_file_bytes_admitting(&u.name, &u.bytes, |size| {
                    let plane = size.rows as u64 * size.cols as u64;
                    check_plane(limits, &u.name, plane)?;
                    if raws.len() + size.frames > limits.max_files {
                        return Err(too_large(format!(
                            "{}: {} slices with those before it, over the limit of {} per request (--max-files)",
                            u.name,
                            raws.len() + size.frames,
                            limits.max_files
                        )));
                    }
                    check_total(limits, total + plane * size.frames as u64)
                })?;
                // A segmentation or report exported beside the slices is passed over, as by predict.
                let image = match read.map_err(|e| unprocessable(format!("{}: {e}", u.name)))? {
                    dicom::DicomFile::Image(image) => image,
                    dicom::DicomFile::NotImage(what) => {
                        skipped.push(dicom::DicomFile::skipped_note(&u.name, &what));
                        continue;
                    }
                };
                total += image.iter().map(|s| s.rows as u64 * s.cols as u64).sum::<u64>();
                raws.extend(image);
            }
            if raws.is_empty() {
                return Err(unprocessable(format!("no DICOM images ({})", skipped.join("; "))));
            }
            let mut volume = dicom::assemble(std::path::Path::new("upload"), raws).map_err(unprocessable)?;
            // The volume's own notes (copies passed over, names not copied) go with each slice, as
            // the files passed over do.
            let whole: Vec<String> = volume.notes.iter().chain(&skipped).cloned().collect();
            for s in &mut volume.slices {
                let new: Vec<String> = whole.iter().filter(|n| !s.notes.contains(n)).cloned().collect();
                s.notes.extend(new);
            }
            volume
        }
    };
    volume.id = v.id;
    Ok(volume)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;

    fn up(name: &str) -> Upload {
        Upload {
            name: name.into(),
            bytes: vec![0x1f, 0x8b],
        }
    }

    fn roles(v: &VolumeUpload) -> [Option<&str>; 4] {
        let Source::Nifti {
            image, pre, post, truth, ..
        } = &v.source
        else {
            panic!("not NIfTI")
        };
        fn n(u: &Option<Upload>) -> Option<&str> {
            u.as_ref().map(|u| u.name.as_str())
        }
        [Some(image.name.as_str()), n(pre), n(post), n(truth)]
    }

    #[test]
    fn nifti_files_take_their_roles_from_their_names() {
        let v = plan_nifti(
            ["c1_t1.nii.gz", "C1_FLAIR.nii.gz", "c1_t1ce.nii.gz", "c1_seg.nii.gz", "c1_t2.nii.gz"]
                .map(up)
                .into(),
        )
        .unwrap();
        assert_eq!(v.id, "C1");
        assert_eq!(
            roles(&v),
            [
                Some("C1_FLAIR.nii.gz"),
                Some("c1_t1.nii.gz"),
                Some("c1_t1ce.nii.gz"),
                Some("c1_seg.nii.gz")
            ]
        );
        let v = plan_nifti(["scan.nii", "scan_MASK.nii.gz"].map(up).into()).unwrap();
        assert_eq!(
            (v.id.as_str(), roles(&v)),
            ("scan", [Some("scan.nii"), None, None, Some("scan_MASK.nii.gz")])
        );
        // A lone T1 or T2 is read as FLAIR, and a `_mask` may name the image file's stem.
        let v = plan_nifti(vec![up("c1_t1.nii.gz")]).unwrap();
        assert_eq!(roles(&v)[0], Some("c1_t1.nii.gz"));
        let v = plan_nifti(["x_t2.nii.gz", "x_t2_mask.nii.gz"].map(up).into()).unwrap();
        assert_eq!(roles(&v), [Some("x_t2.nii.gz"), None, None, Some("x_t2_mask.nii.gz")]);
        let v = plan_nifti(["C1_flair.nii.gz", "C1_flair_mask.nii.gz"].map(up).into()).unwrap();
        assert_eq!(roles(&v)[3], Some("C1_flair_mask.nii.gz"));
    }

    #[test]
    fn anything_but_one_volume_is_refused() {
        let refused = |names: &[&str]| match plan_nifti(names.iter().map(|n| up(n)).collect()) {
            Err(ApiError(StatusCode::BAD_REQUEST, m)) => m,
            Err(ApiError(s, m)) => panic!("{s}: {m}"),
            Ok(_) => panic!("{names:?} accepted"),
        };
        assert!(refused(&["a.nii.gz", "b.nii.gz"]).contains("two image volume files"));
        assert!(refused(&["a_flair.nii.gz", "b_t1.nii.gz"]).contains("belongs to b"));
        assert!(refused(&["a.nii.gz", "b_mask.nii.gz"]).contains("belongs to b"));
        assert!(refused(&["a_seg.nii.gz"]).contains("only a ground truth"));
        assert!(refused(&["a_t1.nii.gz", "a_t1ce.nii.gz"]).contains("no FLAIR"));
        assert!(refused(&["a_flair.nii.gz", "b_t2.nii.gz"]).contains("belongs to b"));
    }

    #[test]
    fn a_request_holds_one_kind_of_file() {
        let tif = Upload {
            name: "x_1.tif".into(),
            bytes: b"II*\0".to_vec(),
        };
        assert_eq!(kind_of_request(&[up("a.nii.gz")]).unwrap(), Kind::Nifti);
        assert_eq!(kind_of("scan", &[0x1f, 0x8b]), Kind::Nifti, "gzip bytes without a .nii.gz name");
        let dcm = Upload {
            name: "IM0001".into(),
            bytes: [vec![0; 128], b"DICM".to_vec()].concat(),
        };
        assert_eq!(kind_of(&dcm.name, &dcm.bytes), Kind::Dicom);
        assert!(kind_of_request(&[tif, up("a.nii.gz")]).is_err());
    }

    #[test]
    fn sidecars_are_skipped_with_a_note() {
        let (kept, notes) = without_sidecars(["a.nii.gz", "a.json", "DICOMDIR", ".DS_Store"].map(up).into()).unwrap();
        assert_eq!(kept.len(), 1);
        assert_eq!(notes.len(), 3);
        assert!(without_sidecars(vec![up("a.json")]).is_err());
    }
}
