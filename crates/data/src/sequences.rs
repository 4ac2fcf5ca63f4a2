//! Sequences stored apart: one volume each for FLAIR, pre-contrast and post-contrast (how
//! `dcm2niix` or a BraTS-style folder stores a patient), combined into the three channels the
//! networks were trained on (pre-contrast, FLAIR, post-contrast).
//!
//! The volumes must already share one voxel grid (co-registered, as the LGG dataset's are):
//! the same slice count and sizes; for NIfTI the same voxel size, position and orientation
//! (each file's sform, else its qform); for DICOM slices at the same ImagePositionPatient with
//! the same pixel spacing; slice images with the same slice numbers. Nothing is resampled. A sequence that is not given gets FLAIR in its place, as in the ten LGG
//! patients that lack one (the networks were trained to expect that).
//!
//! A ground-truth mask stored apart (a NIfTI label map) joins its volume the same way
//! ([`attach_truth`]), so that the prediction is scored against it.

use crate::nifti_axes::{mm_per_unit, world_transform};
use crate::volume::Volume;

/// Which sequence a channel holds; the channel index is the networks' input order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sequence {
    /// T1 before contrast (channel 0).
    PreContrast,
    /// FLAIR (channel 1).
    Flair,
    /// T1 after contrast (channel 2).
    PostContrast,
}

impl Sequence {
    fn channel(self) -> usize {
        match self {
            Sequence::PreContrast => 0,
            Sequence::Flair => 1,
            Sequence::PostContrast => 2,
        }
    }

    /// What people call it.
    pub fn name(self) -> &'static str {
        match self {
            Sequence::PreContrast => "pre-contrast",
            Sequence::Flair => "FLAIR",
            Sequence::PostContrast => "post-contrast",
        }
    }
}

/// What a NIfTI file holds, by its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// One of the three sequences the networks read.
    Sequence(Sequence),
    /// T2-weighted: not read by the networks.
    T2,
    /// A segmentation (label map): ground truth, not an image.
    Truth,
}

/// The case and role a NIfTI file's name gives by the BraTS conventions, case-insensitively:
/// `<case>_<flair|t1|t1ce|t2|seg>.nii[.gz]` (BraTS 2021) or `<case>-<t2f|t1n|t1c|t2w|seg>.nii[.gz]`
/// (BraTS 2023); `None` for other names (a file called just `flair.nii.gz` included).
pub fn role_from_name(file_name: &str) -> Option<(String, Role)> {
    let stem = crate::nifti::stem_of(file_name);
    if stem.len() == file_name.len() {
        return None;
    }
    let cut = stem.rfind(['_', '-'])?;
    let (case, suffix) = (&stem[..cut], stem[cut + 1..].to_ascii_lowercase());
    let role = match suffix.as_str() {
        "flair" | "t2f" => Role::Sequence(Sequence::Flair),
        "t1" | "t1n" => Role::Sequence(Sequence::PreContrast),
        "t1ce" | "t1c" | "t1gd" => Role::Sequence(Sequence::PostContrast),
        "t2" | "t2w" => Role::T2,
        "seg" => Role::Truth,
        _ => return None,
    };
    (!case.is_empty()).then(|| (case.to_string(), role))
}

/// Largest difference in voxel size (mm) or affine entry (mm) still taken as the same grid:
/// float32 headers written by different tools round differently.
const GRID_TOLERANCE: f32 = 1e-2;

/// Largest distance (mm, per coordinate) between two slices' positions still taken as one place.
const POSITION_TOLERANCE_MM: f64 = 0.1;

/// A volume that holds one sequence: its three channels are equal (a 3D NIfTI, a DICOM
/// series, or grey slice images).
fn is_single_sequence(v: &Volume) -> bool {
    v.slices.iter().all(|s| s.rgb.chunks_exact(3).all(|p| p[0] == p[1] && p[1] == p[2]))
}

/// Why `other` is not on `flair`'s voxel grid, if it is not.
fn grid_mismatch(flair: &Volume, other: &Volume) -> Option<String> {
    if flair.slices.len() != other.slices.len() {
        return Some(format!("{} slices, FLAIR has {}", other.slices.len(), flair.slices.len()));
    }
    for (k, (a, b)) in flair.slices.iter().zip(&other.slices).enumerate() {
        if (a.width, a.height) != (b.width, b.height) {
            return Some(format!(
                "slice {k} is {}x{}, FLAIR's is {}x{}",
                b.width, b.height, a.width, a.height
            ));
        }
        let apart = |p: &(f64, f64), q: &(f64, f64)| (p.0 - q.0).abs().max((p.1 - q.1).abs()) > f64::from(GRID_TOLERANCE);
        if let (Some(p), Some(q)) = (a.spacing_mm, b.spacing_mm) {
            if apart(&p, &q) {
                return Some(format!("its slice {k} has {q:?} mm pixels, FLAIR's {p:?} mm"));
            }
        }
        if let (Some(p), Some(q)) = (a.orientation, b.orientation) {
            if p.iter().zip(&q).any(|(x, y)| (x - y).abs() > 1e-3) {
                return Some(format!("its slice {k} is oriented {q:?}, FLAIR's {p:?}"));
            }
        }
        match (a.position_mm, b.position_mm) {
            // Series ordered by InstanceNumber can run in opposite directions: where both
            // record where each slice lies, the slices must lie at the same places.
            (Some(p), Some(q)) if p.iter().zip(&q).any(|(x, y)| (x - y).abs() > POSITION_TOLERANCE_MM) => {
                return Some(format!("its slice {k} lies at {q:?} mm, FLAIR's at {p:?} mm"));
            }
            (Some(_), Some(_)) => {}
            // Otherwise slices pair by their numbers (file names of slice images, z of a NIfTI,
            // DICOM InstanceNumber).
            _ if a.number != b.number => {
                return Some(format!(
                    "its slice {k} is numbered {}, FLAIR's {}: slices pair by number",
                    b.number, a.number
                ));
            }
            _ => {}
        }
    }
    if let Some(w) = flair
        .slices
        .windows(2)
        .find(|w| w[0].number == w[1].number && w[0].position_mm.is_none())
    {
        return Some(format!(
            "FLAIR's slices {} and {} share the number {}, so slices cannot be paired (name slice images <name>_<number>)",
            w[0].label, w[1].label, w[0].number
        ));
    }
    match (&flair.nifti, &other.nifti) {
        (Some(f), Some(o)) => header_mismatch(&f.header, &o.header, "FLAIR's").or_else(|| {
            // One header without orientation: its voxels would be shown another way.
            (f.layout != o.layout)
                .then(|| "its voxels are stored in another order (one header has no orientation, sform and qform codes 0)".into())
        }),
        (None, None) => None,
        _ => Some(
            "a different format (one is NIfTI, the other is not; their rows may run in opposite directions): convert both to one format"
                .into(),
        ),
    }
}

/// Why NIfTI header `ho` does not describe `hf`'s voxel grid, if not: voxel sizes, and each
/// header's own voxel-to-world transform (sform, else qform); `whose` names `hf` in the reason.
fn header_mismatch(hf: &::nifti::NiftiHeader, ho: &::nifti::NiftiHeader, whose: &str) -> Option<String> {
    let tolerance = f64::from(GRID_TOLERANCE);
    let close = |a: &[f64], b: &[f64]| a.iter().zip(b).all(|(x, y)| (x - y).abs() <= tolerance);
    // In mm, whatever unit each header uses.
    let sizes = |h: &::nifti::NiftiHeader| {
        h.pixdim[1..4]
            .iter()
            .map(|&v| f64::from(v) * mm_per_unit(h.xyzt_units))
            .collect::<Vec<_>>()
    };
    if !close(&sizes(hf), &sizes(ho)) {
        return Some(format!("voxel size {:?} mm, {whose} is {:?} mm", sizes(ho), sizes(hf)));
    }
    match (world_transform(hf), world_transform(ho)) {
        (Some(a), Some(b)) if !close(&a, &b) => Some("a different position or orientation in the scanner (its sform / qform)".into()),
        _ => None,
    }
}

/// Give a NIfTI volume the ground truth of a mask volume on its voxel grid
/// ([`crate::nifti::read_mask`]), so that its prediction is scored against it.
pub fn attach_truth(
    volume: &mut Volume,
    mask: &crate::volume::NiftiGeometry,
    masks: Vec<Vec<u8>>,
    source: &std::path::Path,
) -> Result<(), String> {
    let refuse = |why: String| {
        format!(
            "ground truth {} is not on {}'s voxel grid ({why})",
            source.display(),
            volume.source.display()
        )
    };
    let Some(geometry) = &volume.nifti else {
        return Err(format!(
            "ground truth {} is NIfTI, so it needs a NIfTI input ({} is not)",
            source.display(),
            volume.source.display()
        ));
    };
    if geometry.dims != mask.dims {
        return Err(refuse(format!("{:?} voxels, the input has {:?}", mask.dims, geometry.dims)));
    }
    if let Some(why) = header_mismatch(&geometry.header, &mask.header, "the input's") {
        return Err(refuse(why));
    }
    // A header without orientation beside one with it is shown another way: lay the truth's
    // voxels out as the input's.
    let masks = if mask.layout == geometry.layout {
        masks
    } else {
        geometry.layout.slices(&mask.layout.voxels(&masks))
    };
    for (slice, truth) in volume.slices.iter_mut().zip(masks) {
        slice.truth = Some(truth);
    }
    Ok(())
}

/// Combine separately stored sequences into one three-channel volume on FLAIR's slices: each
/// given sequence fills its channel, a missing one gets FLAIR. The result keeps FLAIR's names,
/// slices, ground truth and NIfTI geometry, so its outputs are written as FLAIR's would be.
/// Errors name the volume that does not fit: one that already holds three sequences, or one
/// on another voxel grid.
pub fn combine(flair: Volume, others: &[(Sequence, Volume)]) -> Result<Volume, String> {
    let describe = |s: Sequence, v: &Volume| format!("{} volume {}", s.name(), v.source.display());
    for (seq, v) in std::iter::once((Sequence::Flair, &flair)).chain(others.iter().map(|(s, v)| (*s, v))) {
        if !is_single_sequence(v) {
            return Err(format!(
                "{} already holds three different channels (a 4D NIfTI, RGB slices or a BraTS-style case folder); give the volume of that sequence alone",
                describe(seq, v)
            ));
        }
    }
    for (i, (seq, v)) in others.iter().enumerate() {
        if *seq == Sequence::Flair || others[..i].iter().any(|(s, _)| s == seq) {
            return Err(format!("{} is given twice", seq.name()));
        }
        if let Some(why) = grid_mismatch(&flair, v) {
            return Err(format!(
                "{} is not on FLAIR's voxel grid ({why}); register it to {} first (nothing is resampled)",
                describe(*seq, v),
                flair.source.display()
            ));
        }
    }
    if others.is_empty() {
        return Ok(flair);
    }
    let mut out = flair;
    let given: Vec<&str> = others.iter().map(|(s, _)| s.name()).collect();
    let missing: Vec<&str> = [Sequence::PreContrast, Sequence::PostContrast]
        .iter()
        .filter(|s| !others.iter().any(|(o, _)| o == *s))
        .map(|s| s.name())
        .collect();
    for (k, slice) in out.slices.iter_mut().enumerate() {
        for (seq, v) in others {
            let src = &v.slices[k].rgb;
            let c = seq.channel();
            for (p, q) in slice.rgb.chunks_exact_mut(3).zip(src.chunks_exact(3)) {
                p[c] = q[0];
            }
        }
        slice.notes.retain(|n| !n.contains("FLAIR in all three channels"));
        if !missing.is_empty() {
            slice.notes.push(format!(
                "FLAIR with {}; FLAIR in place of {}",
                given.join(" and "),
                missing.join(" and ")
            ));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::volume::InputSlice;

    fn grey(id: &str, values: &[u8], w: u32, h: u32) -> Volume {
        let slices = values
            .iter()
            .enumerate()
            .map(|(k, &v)| InputSlice {
                label: format!("{id}#{k}"),
                stem: format!("{id}_z{k:03}"),
                number: k as u32,
                width: w,
                height: h,
                rgb: vec![v; (w * h * 3) as usize],
                spacing_mm: None,
                position_mm: None,
                orientation: None,
                truth: None,
                notes: vec!["single-channel volume used as FLAIR in all three channels".into()],
            })
            .collect();
        Volume {
            id: id.into(),
            source: id.into(),
            slices,
            nifti: None,
            dicom: None,
            slice_thickness_mm: None,
            notes: Vec::new(),
        }
    }

    #[test]
    fn each_sequence_fills_its_channel_and_a_missing_one_gets_flair() {
        let both = combine(
            grey("flair", &[10, 20], 2, 2),
            &[
                (Sequence::PostContrast, grey("t1c", &[30, 40], 2, 2)),
                (Sequence::PreContrast, grey("t1", &[1, 2], 2, 2)),
            ],
        )
        .unwrap();
        assert_eq!(both.id, "flair");
        assert_eq!(&both.slices[1].rgb[..3], &[2, 20, 40]);
        assert!(both.slices[0].notes.is_empty(), "{:?}", both.slices[0].notes);

        let post_only = combine(grey("flair", &[10], 2, 2), &[(Sequence::PostContrast, grey("t1c", &[30], 2, 2))]).unwrap();
        assert_eq!(&post_only.slices[0].rgb[..3], &[10, 10, 30]);
        assert_eq!(
            post_only.slices[0].notes,
            ["FLAIR with post-contrast; FLAIR in place of pre-contrast"]
        );
    }

    #[test]
    fn volumes_off_the_grid_or_already_combined_are_refused() {
        let fewer = combine(grey("f", &[1, 2], 2, 2), &[(Sequence::PreContrast, grey("t1", &[1], 2, 2))]).unwrap_err();
        assert!(
            fewer.contains("pre-contrast volume t1") && fewer.contains("1 slices, FLAIR has 2"),
            "{fewer}"
        );
        let size = combine(grey("f", &[1], 2, 2), &[(Sequence::PreContrast, grey("t1", &[1], 3, 2))]).unwrap_err();
        assert!(
            size.contains("slice 0 is 3x2, FLAIR's is 2x2") && size.contains("register it"),
            "{size}"
        );
        let mut rgb = grey("f4d", &[1], 2, 2);
        rgb.slices[0].rgb[0] = 9;
        let e = combine(rgb, &[(Sequence::PreContrast, grey("t1", &[1], 2, 2))]).unwrap_err();
        assert!(e.contains("FLAIR volume f4d already holds three different channels"), "{e}");
        let twice = combine(
            grey("f", &[1], 2, 2),
            &[
                (Sequence::PreContrast, grey("a", &[1], 2, 2)),
                (Sequence::PreContrast, grey("b", &[1], 2, 2)),
            ],
        )
        .unwrap_err();
        assert!(twice.contains("pre-contrast is given twice"), "{twice}");
    }

    #[test]
    fn brats_names_give_case_and_role() {
        let seq = |s| Some(("BraTS2021_00012".to_string(), Role::Sequence(s)));
        assert_eq!(role_from_name("BraTS2021_00012_flair.nii.gz"), seq(Sequence::Flair));
        assert_eq!(role_from_name("BraTS2021_00012_t1.nii.gz"), seq(Sequence::PreContrast));
        assert_eq!(role_from_name("BraTS2021_00012_T1CE.nii"), seq(Sequence::PostContrast));
        assert_eq!(role_from_name("BraTS2021_00012_seg.nii.gz").map(|r| r.1), Some(Role::Truth));
        let new = role_from_name("BraTS-GLI-00000-000-t2f.nii.gz").unwrap();
        assert_eq!(new, ("BraTS-GLI-00000-000".to_string(), Role::Sequence(Sequence::Flair)));
        assert_eq!(role_from_name("BraTS-GLI-00000-000-t2w.nii.gz").map(|r| r.1), Some(Role::T2));
        for other in [
            "flair.nii.gz",
            "_flair.nii.gz",
            "case_adc.nii.gz",
            "case_flair.png",
            "case_flair.nii.gz.bak",
        ] {
            assert_eq!(role_from_name(other), None, "{other}");
        }
    }

    #[test]
    fn slices_without_positions_pair_by_number() {
        let numbered = |id: &str, numbers: [u32; 3]| {
            let mut v = grey(id, &[1, 2, 3], 2, 2);
            for (s, n) in v.slices.iter_mut().zip(numbers) {
                s.number = n;
            }
            v
        };
        assert!(combine(numbered("f", [1, 2, 10]), &[(Sequence::PreContrast, numbered("t1", [1, 2, 10]))]).is_ok());
        // Sorted as text (IM1, IM10, IM2): the same slices in another order.
        let text = combine(numbered("f", [1, 2, 10]), &[(Sequence::PreContrast, numbered("t1", [1, 10, 2]))]).unwrap_err();
        assert!(text.contains("its slice 1 is numbered 10, FLAIR's 2"), "{text}");
        let unnumbered = combine(numbered("f", [0, 0, 0]), &[(Sequence::PreContrast, numbered("t1", [0, 0, 0]))]).unwrap_err();
        assert!(unnumbered.contains("share the number 0"), "{unnumbered}");
    }

    #[test]
    fn slices_must_lie_where_flair_s_do() {
        let placed = |id: &str, z: [f64; 2]| {
            let mut v = grey(id, &[1, 2], 2, 2);
            for (s, z) in v.slices.iter_mut().zip(z) {
                s.position_mm = Some([0.0, 0.0, z]);
            }
            v
        };
        let near = combine(placed("f", [0.0, 5.0]), &[(Sequence::PreContrast, placed("t1", [0.05, 5.0]))]);
        assert!(near.is_ok());
        // The same slices numbered the other way round.
        let reversed = combine(placed("f", [0.0, 5.0]), &[(Sequence::PreContrast, placed("t1", [5.0, 0.0]))]).unwrap_err();
        assert!(
            reversed.contains("its slice 0 lies at [0.0, 0.0, 5.0] mm, FLAIR's at [0.0, 0.0, 0.0] mm"),
            "{reversed}"
        );
        // The same first pixel, rows and columns swapped (a transposed series).
        let orient = |mut v: Volume, o: [f64; 6]| {
            v.slices.iter_mut().for_each(|s| s.orientation = Some(o));
            v
        };
        let axial = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0];
        let swapped = [0.0, 1.0, 0.0, 1.0, 0.0, 0.0];
        let e = combine(
            orient(placed("f", [0.0, 5.0]), axial),
            &[(Sequence::PreContrast, orient(placed("t1", [0.0, 5.0]), swapped))],
        )
        .unwrap_err();
        assert!(e.contains("its slice 0 is oriented [0.0, 1.0"), "{e}");
        // Positions recorded on one side only: the slices pair by number.
        assert!(combine(placed("f", [0.0, 5.0]), &[(Sequence::PreContrast, grey("t1", &[1, 2], 2, 2))]).is_ok());
        let mut renumbered = grey("t1", &[1, 2], 2, 2);
        renumbered.slices.reverse();
        let e = combine(placed("f", [0.0, 5.0]), &[(Sequence::PreContrast, renumbered)]).unwrap_err();
        assert!(e.contains("its slice 0 is numbered 1, FLAIR's 0"), "{e}");
    }

    #[test]
    fn nifti_volumes_must_share_voxel_size_and_position() {
        let nifti = |id: &str, edit: &dyn Fn(&mut ::nifti::NiftiHeader)| {
            let mut v = grey(id, &[1], 2, 2);
            let mut header = ::nifti::NiftiHeader {
                pixdim: [1.0, 0.9, 0.9, 3.0, 1.0, 1.0, 1.0, 1.0],
                sform_code: 1,
                ..Default::default()
            };
            edit(&mut header);
            let (layout, _) = crate::nifti_axes::Layout::of_header(&header, (2, 2, 1));
            v.nifti = Some(crate::volume::NiftiGeometry {
                header: Box::new(header),
                dims: (2, 2, 1),
                layout,
            });
            v
        };
        let same = |h: &mut ::nifti::NiftiHeader| h.srow_x[3] += 0.001;
        assert!(combine(nifti("f", &|_| ()), &[(Sequence::PreContrast, nifti("t1", &same))]).is_ok());
        let moved = combine(
            nifti("f", &|_| ()),
            &[(Sequence::PreContrast, nifti("t1", &|h| h.srow_z[3] = 12.0))],
        )
        .unwrap_err();
        assert!(moved.contains("different position or orientation"), "{moved}");
        // A qform-only header is compared with an sform-only one through its own transform.
        let diagonal = |h: &mut ::nifti::NiftiHeader| {
            h.srow_x = [0.9, 0.0, 0.0, 0.0];
            h.srow_y = [0.0, 0.9, 0.0, 0.0];
            h.srow_z = [0.0, 0.0, 3.0, 0.0];
        };
        let qform = |d: f32| {
            move |h: &mut ::nifti::NiftiHeader| {
                h.sform_code = 0;
                h.qform_code = 1;
                h.quatern_d = d;
            }
        };
        assert!(combine(nifti("f", &diagonal), &[(Sequence::PreContrast, nifti("t1", &qform(0.0)))]).is_ok());
        let turned = combine(nifti("f", &diagonal), &[(Sequence::PreContrast, nifti("t1", &qform(1.0)))]).unwrap_err();
        assert!(turned.contains("different position or orientation"), "{turned}");
        let thick = combine(
            nifti("f", &|_| ()),
            &[(Sequence::PostContrast, nifti("t1c", &|h| h.pixdim[3] = 1.0))],
        )
        .unwrap_err();
        assert!(
            thick.contains("post-contrast volume t1c") && thick.contains("voxel size"),
            "{thick}"
        );
        // Headers in metres are compared in mm: the same grid passes, 8 mm off does not.
        let metres = |h: &mut ::nifti::NiftiHeader| {
            h.xyzt_units = 1;
            h.pixdim = [1.0, 0.0009, 0.0009, 0.003, 1.0, 1.0, 1.0, 1.0];
            h.srow_x = [0.001, 0.0, 0.0, 0.0];
            h.srow_y = [0.0, 0.001, 0.0, 0.0];
            h.srow_z = [0.0, 0.0, 0.001, 0.0];
        };
        assert!(combine(nifti("f", &|_| ()), &[(Sequence::PreContrast, nifti("t1", &metres))]).is_ok());
        let off = combine(
            nifti("f", &|_| ()),
            &[(
                Sequence::PreContrast,
                nifti("t1", &|h| {
                    metres(h);
                    h.srow_z[3] = 0.008;
                }),
            )],
        )
        .unwrap_err();
        assert!(off.contains("different position"), "{off}");
        let mixed = combine(nifti("f", &|_| ()), &[(Sequence::PreContrast, grey("t1", &[1], 2, 2))]).unwrap_err();
        assert!(mixed.contains("one is NIfTI"), "{mixed}");
    }
}
