//! Volumes sent to `/v1/predict/volume`: one NIfTI volume (a `.nii` / `.nii.gz` file, or a
//! BraTS-style case's files) or one DICOM series (its `.dcm` files), read as `tumorscan
//! predict` reads them from disk.
//!
//! A NIfTI request's files take their roles from their names, as `predict` does in a folder:
//! `<case>_<flair|t1|t1ce|t2|seg>.nii[.gz]` (BraTS 2021) or `<case>-<t2f|t1n|t1c|t2w|seg>`
//! (BraTS 2023) are the case's sequences and segmentation (T2 is not read), and
//! `<name>_mask.nii[.gz]` is the ground truth of `<name>.nii[.gz]`. One volume per request:
//! files of another case, or two files of one role, are refused. Sizes come from the NIfTI
//! headers before anything is decompressed; a DICOM series (uncompressed transfer syntaxes
//! only, so its pixels are no larger than its bytes) is checked once its headers are parsed.

use crate::{bad, too_large, ApiError, Limits, Upload};
use axum::http::StatusCode;
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

/// The kind of one file, by its name and first bytes (a gzip file is taken for a `.nii.gz`).
pub(crate) fn kind_of(u: &Upload) -> Kind {
    let lower = u.name.to_ascii_lowercase();
    if lower.ends_with(".nii")
        || lower.ends_with(".nii.gz")
        || u.bytes.get(344..347) == Some(b"n+1".as_slice())
        || u.bytes.starts_with(&[0x1f, 0x8b])
    {
        Kind::Nifti
    } else if lower.ends_with(".dcm") || u.bytes.get(128..132) == Some(b"DICM".as_slice()) {
        Kind::Dicom
    } else {
        Kind::Slices
    }
}

/// The one kind all of a request's files are; a mix is refused (400).
pub(crate) fn kind_of_request(uploads: &[Upload]) -> Result<Kind, ApiError> {
    let first = uploads.first().map_or(Kind::Slices, kind_of);
    match uploads.iter().find(|u| kind_of(u) != first) {
        Some(odd) => Err(bad(format!(
            "{} is {} but {} is {}: send one kind of input per request (slice images, one NIfTI volume, or one DICOM series)",
            odd.name,
            kind_of(odd).name(),
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
    let (mut image, mut pre, mut post, mut truth) = (None, None, None, None);
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
            Some((_, Role::T2)) => notes.push(format!(
                "{}: T2 is not used (the networks read pre-contrast, FLAIR and post-contrast)",
                u.name
            )),
            None => put(&mut image, stem, u, "image volume")?,
        }
    }
    // A lone T1 or T1ce is read as FLAIR, as `predict` reads it.
    let image = match (image, pre.take(), post.take()) {
        (Some(i), p, q) => {
            (pre, post) = (p, q);
            i
        }
        (None, Some(only), None) | (None, None, Some(only)) => {
            notes.push(format!(
                "{}: its name says it is not FLAIR, but no FLAIR was sent; read as FLAIR",
                only.1.name
            ));
            only
        }
        (None, Some(_), Some(_)) => {
            return Err(bad(
                "no FLAIR volume among the pre- and post-contrast volumes: send the case's FLAIR too",
            ))
        }
        (None, None, None) => {
            return Err(bad(match &truth {
                Some((_, t)) => format!("{}: only a ground truth was sent; send its image volume too", t.name),
                None => "no image volume was sent (only T2, which the networks do not read)".into(),
            }))
        }
    };
    let (id, image) = image;
    for (key, u) in [&pre, &post, &truth].into_iter().flatten() {
        if !key.eq_ignore_ascii_case(&id) {
            return Err(bad(format!(
                "{} belongs to {key} by its name, not to {id} ({}): send one volume (one case's files) per request",
                u.name, image.name
            )));
        }
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

/// Refuse a NIfTI request too large to read, from its headers alone: 422 for a slice plane
/// over `max_image_pixels` (the largest plane of the volume, before its orientation is known),
/// 413 for more voxels in all than `max_request_pixels`. A DICOM series is checked in [`read`].
pub(crate) fn check_sizes(limits: &Limits, v: &VolumeUpload) -> Result<(), ApiError> {
    let Source::Nifti {
        image, pre, post, truth, ..
    } = &v.source
    else {
        return Ok(());
    };
    let mut total = 0u64;
    for u in std::iter::once(image).chain(pre).chain(post).chain(truth) {
        let [nx, ny, nz, nc] = nifti::declared_dims(&u.bytes).map_err(|e| unprocessable(format!("{}: {e}", u.name)))?;
        let [nx, ny, nz] = [nx, ny, nz].map(|d| d as u64);
        check_plane(limits, &u.name, (nx * ny).max(nx * nz).max(ny * nz))?;
        total += nx * ny * nz * nc as u64;
    }
    check_total(limits, total)
}

fn check_plane(limits: &Limits, name: &str, pixels: u64) -> Result<(), ApiError> {
    if pixels > limits.max_image_pixels {
        return Err(unprocessable(format!(
            "{name}: its slices hold up to {pixels} pixels, over the limit of {} per image (--max-image-pixels)",
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

fn unprocessable(msg: String) -> ApiError {
    ApiError(StatusCode::UNPROCESSABLE_ENTITY, msg)
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
            for u in &uploads {
                let raw = dicom::read_one_bytes(&u.name, &u.bytes).map_err(|e| unprocessable(format!("{}: {e}", u.name)))?;
                let pixels = raw.rows as u64 * raw.cols as u64;
                check_plane(limits, &u.name, pixels)?;
                total += pixels;
                raws.push(raw);
            }
            check_total(limits, total)?;
            dicom::assemble(std::path::Path::new("upload"), raws).map_err(unprocessable)?
        }
    };
    volume.id = v.id;
    Ok(volume)
}

#[cfg(test)]
mod tests {
    use super::*;

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
        // A lone T1 is read as FLAIR.
        let v = plan_nifti(vec![up("c1_t1.nii.gz")]).unwrap();
        assert_eq!(roles(&v)[0], Some("c1_t1.nii.gz"));
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
        assert!(refused(&["a_t2.nii.gz"]).contains("only T2"));
        assert!(refused(&["a_t1.nii.gz", "a_t1ce.nii.gz"]).contains("no FLAIR"));
    }

    #[test]
    fn a_request_holds_one_kind_of_file() {
        let tif = Upload {
            name: "x_1.tif".into(),
            bytes: b"II*\0".to_vec(),
        };
        assert_eq!(kind_of_request(&[up("a.nii.gz")]).unwrap(), Kind::Nifti);
        assert_eq!(kind_of(&up("scan")), Kind::Nifti, "gzip bytes without a .nii.gz name");
        let dcm = Upload {
            name: "IM0001".into(),
            bytes: [vec![0; 128], b"DICM".to_vec()].concat(),
        };
        assert_eq!(kind_of(&dcm), Kind::Dicom);
        assert!(kind_of_request(&[tif, up("a.nii.gz")]).is_err());
    }
}
