//! How a NIfTI volume's voxel axes are shown as axial slices, from its header's orientation.
//!
//! NIfTI's world is RAS+ (x to the patient's right, y anterior, z superior); its header maps
//! voxels (i, j, k) to it by the sform where set, else the qform. Each voxel axis is matched
//! to the world axis it runs nearest to, and slices are shown as the training data (TCIA's
//! DICOM slices) are: rows from anterior at the top to posterior, columns from the patient's
//! right to their left (radiological), one slice per step of the voxel axis nearest
//! superior-inferior, in voxel order. So a volume stored posterior-to-anterior, left-to-right,
//! or as sagittal or coronal slices is shown and predicted as the same axial slices, and its
//! mask is written back voxel for voxel on the input's grid. Nothing is resampled: an oblique
//! volume is shown along the voxel axes nearest the patient's, as a viewer's "voxel" view does.
//!
//! A header without an orientation (sform and qform codes 0, as ANALYZE-era files) is taken
//! as stored i to the left, j anterior, k superior, which is how earlier versions read every
//! file.

use ::nifti::NiftiHeader;

/// Obliquity (degrees) past which a volume's axes are said to be far from the patient's.
const OBLIQUE_NOTE_DEG: f64 = 30.0;
/// In-plane pixel aspect ratio past which a note says the pixels are far from square.
const ASPECT_NOTE: f64 = 1.5;
/// Smallest width and height of axial slices made from a volume stored in another plane;
/// a volume that would make smaller ones is predicted as stored.
const MIN_RESLICED_SIDE: usize = 32;

/// Millimetres per unit of a header's voxel sizes and positions: its `xyzt_units` says metres,
/// millimetres or micrometres; unset (0, as many writers leave it) is taken as millimetres.
pub(crate) fn mm_per_unit(xyzt_units: u8) -> f64 {
    match xyzt_units & 0x07 {
        1 => 1000.0,
        3 => 0.001,
        _ => 1.0,
    }
}

/// The voxel-to-world transform a NIfTI header gives (rows of the 3x4 affine, in mm): its sform
/// where set and usable, else its qform where set and usable, else `None` (voxel sizes only).
/// Usable: finite, and its three columns span space (no NaN, no zero or parallel axes).
pub(crate) fn world_transform(h: &NiftiHeader) -> Option<[f64; 12]> {
    let mm = mm_per_unit(h.xyzt_units);
    let scaled = |m: [f64; 12]| m.map(|v| v * mm);
    if h.sform_code > 0 {
        let r: Vec<f64> = [h.srow_x, h.srow_y, h.srow_z].concat().iter().map(|&v| f64::from(v)).collect();
        if let Some(m) = r.try_into().ok().filter(usable) {
            return Some(scaled(m));
        }
    }
    if h.qform_code <= 0 {
        return None;
    }
    // NIfTI-1's quaternion: a rotation (b, c, d; a from unit length), a handedness qfac in
    // pixdim[0], the voxel sizes (one where not positive, as the reference library does) and an
    // offset.
    let (b, c, d) = (f64::from(h.quatern_b), f64::from(h.quatern_c), f64::from(h.quatern_d));
    let a = (1.0 - (b * b + c * c + d * d)).max(0.0).sqrt();
    let qfac = if h.pixdim[0] < 0.0 { -1.0 } else { 1.0 };
    let size = |v: f32| if v > 0.0 { f64::from(v) } else { 1.0 };
    let (dx, dy, dz) = (size(h.pixdim[1]), size(h.pixdim[2]), qfac * size(h.pixdim[3]));
    let r = [
        [a * a + b * b - c * c - d * d, 2.0 * (b * c - a * d), 2.0 * (b * d + a * c)],
        [2.0 * (b * c + a * d), a * a + c * c - b * b - d * d, 2.0 * (c * d - a * b)],
        [2.0 * (b * d - a * c), 2.0 * (c * d + a * b), a * a + d * d - b * b - c * c],
    ];
    let offset = [h.quatern_x, h.quatern_y, h.quatern_z].map(f64::from);
    let mut m = [0.0; 12];
    for i in 0..3 {
        m[4 * i..4 * i + 4].copy_from_slice(&[r[i][0] * dx, r[i][1] * dy, r[i][2] * dz, offset[i]]);
    }
    Some(scaled(m)).filter(usable)
}

/// Whether an affine's entries are finite and its columns span space (a determinant not
/// negligible against the columns' lengths).
fn usable(m: &[f64; 12]) -> bool {
    let col = |v: usize| [m[v], m[4 + v], m[8 + v]];
    let norm = |c: [f64; 3]| (c[0] * c[0] + c[1] * c[1] + c[2] * c[2]).sqrt();
    let [a, b, c] = [col(0), col(1), col(2)];
    let det = a[0] * (b[1] * c[2] - b[2] * c[1]) - b[0] * (a[1] * c[2] - a[2] * c[1]) + c[0] * (a[1] * b[2] - a[2] * b[1]);
    m.iter().all(|v| v.is_finite()) && det.abs() > 1e-6 * norm(a) * norm(b) * norm(c)
}

/// Which voxel axis runs along shown columns, rows and slices, and which way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// Voxel axis (0 = i, 1 = j, 2 = k) of columns, rows and slices.
    axes: [usize; 3],
    /// Whether columns / rows count down their voxel axis.
    reversed: [bool; 2],
    /// Voxel dimensions (i, j, k).
    dims: [usize; 3],
}

impl Layout {
    /// The layout of a header without orientation: i along columns, j up the rows (anterior at
    /// the top), k the slices.
    pub fn unoriented((nx, ny, nz): (usize, usize, usize)) -> Self {
        Self {
            axes: [0, 1, 2],
            reversed: [false, true],
            dims: [nx, ny, nz],
        }
    }

    /// The layout `header`'s orientation gives a volume of `dims` voxels, with what the user
    /// should be told about it (another plane, strong obliquity, a degenerate orientation).
    pub fn of_header(header: &NiftiHeader, dims: (usize, usize, usize)) -> (Self, Vec<String>) {
        let unoriented = Self::unoriented(dims);
        let Some(m) = world_transform(header) else {
            let set = header.sform_code > 0 || header.qform_code > 0;
            let note = "its orientation (sform and qform) is unusable (not finite, or axes that are zero or parallel), so it is read as a file without one (i to the left, j anterior, k superior)";
            return (unoriented, set.then(|| note.to_string()).into_iter().collect());
        };
        // Unit direction of each voxel axis in the world: n[w][v].
        let norm = |v: usize| (0..3).map(|w| m[4 * w + v].powi(2)).sum::<f64>().sqrt();
        let norms = [norm(0), norm(1), norm(2)];
        let n = |w: usize, v: usize| m[4 * w + v] / norms[v];
        // Greedily pair world and voxel axes, closest first.
        let mut voxel_of_world = [usize::MAX; 3];
        for _ in 0..3 {
            let mut best = (0, 0, -1.0);
            for w in (0..3).filter(|&w| voxel_of_world[w] == usize::MAX) {
                for v in (0..3).filter(|v| !voxel_of_world.contains(v)) {
                    if n(w, v).abs() > best.2 {
                        best = (w, v, n(w, v).abs());
                    }
                }
            }
            voxel_of_world[best.0] = best.1;
        }
        let layout = Self {
            axes: voxel_of_world,
            // Column 0 is the patient's right (+x), row 0 the most anterior (+y).
            reversed: [n(0, voxel_of_world[0]) > 0.0, n(1, voxel_of_world[1]) > 0.0],
            dims: [dims.0, dims.1, dims.2],
        };
        let mut notes = Vec::new();
        if voxel_of_world[2] != 2 {
            let plane = if voxel_of_world[0] == 2 { "sagittal" } else { "coronal" };
            let (w, h, _) = layout.shown();
            if w.min(h) < MIN_RESLICED_SIDE {
                // A few sagittal slices (or one) make axial slices a few pixels wide: useless.
                return (
                    unoriented,
                    vec![format!(
                        "stored as {plane} slices that would make axial slices of only {w}x{h} pixels: predicted slice by slice as stored; the model was trained on axial slices, so its masks here are not reliable"
                    )],
                );
            }
            notes.push(format!(
                "stored as {plane} slices: shown and predicted as axial slices along voxel axis {} (its mask is written on the input's grid)",
                ["i", "j", "k"][voxel_of_world[2]]
            ));
        }
        let worst = (0..3).map(|w| n(w, voxel_of_world[w]).abs()).fold(1.0, f64::min);
        let degrees = worst.clamp(0.0, 1.0).acos().to_degrees();
        if degrees > OBLIQUE_NOTE_DEG {
            notes.push(format!(
                "oblique: its voxel axes lie up to {degrees:.0} degrees from the patient's, and its slices are shown along the nearest ones without resampling"
            ));
        }
        let spacing = |v: usize| f64::from(header.pixdim[v + 1]) * mm_per_unit(header.xyzt_units);
        let (across, down) = (spacing(layout.axes[0]), spacing(layout.axes[1]));
        if across > 0.0 && down > 0.0 && (across / down).max(down / across) > ASPECT_NOTE {
            notes.push(format!(
                "its pixels are {across:.2} x {down:.2} mm, far from square; the model was trained on square pixels"
            ));
        }
        (layout, notes)
    }

    /// Width, height and number of the shown slices.
    pub fn shown(&self) -> (usize, usize, usize) {
        let [c, r, s] = self.axes;
        (self.dims[c], self.dims[r], self.dims[s])
    }

    /// Voxel axis (0 = i, 1 = j, 2 = k) along shown columns, rows and slices: where a shown
    /// size or spacing comes from in the header.
    pub fn axes(&self) -> [usize; 3] {
        self.axes
    }

    /// Index in the voxel data (i fastest) of column `x`, row `row` of shown slice `z`.
    pub fn voxel(&self, z: usize, row: usize, x: usize) -> usize {
        let (w, h, _) = self.shown();
        let mut v = [0; 3];
        v[self.axes[0]] = if self.reversed[0] { w - 1 - x } else { x };
        v[self.axes[1]] = if self.reversed[1] { h - 1 - row } else { row };
        v[self.axes[2]] = z;
        v[0] + self.dims[0] * (v[1] + self.dims[1] * v[2])
    }

    /// Shown slices (row-major) of one value per voxel.
    pub fn slices<T: Copy>(&self, voxels: &[T]) -> Vec<Vec<T>> {
        let (w, h, n) = self.shown();
        (0..n)
            .map(|z| {
                (0..h)
                    .flat_map(|row| (0..w).map(move |x| (row, x)))
                    .map(|(row, x)| voxels[self.voxel(z, row, x)])
                    .collect()
            })
            .collect()
    }

    /// Voxel data (i fastest) from shown slices (row-major), the inverse of [`Self::slices`];
    /// voxels of missing slices are `T::default()`.
    pub fn voxels<T: Copy + Default>(&self, slices: &[Vec<T>]) -> Vec<T> {
        let (w, h, _) = self.shown();
        let mut out = vec![T::default(); self.dims.iter().product()];
        for (z, s) in slices.iter().enumerate().take(self.shown().2) {
            for row in 0..h {
                for x in 0..w {
                    out[self.voxel(z, row, x)] = s[row * w + x];
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sform(rows: [[f32; 3]; 3]) -> NiftiHeader {
        let row = |r: [f32; 3]| [r[0], r[1], r[2], 0.0];
        NiftiHeader {
            pixdim: [1.0; 8],
            sform_code: 1,
            qform_code: 0,
            srow_x: row(rows[0]),
            srow_y: row(rows[1]),
            srow_z: row(rows[2]),
            ..Default::default()
        }
    }

    /// A header without orientation (the crate's default has an identity sform).
    fn unoriented() -> NiftiHeader {
        NiftiHeader {
            sform_code: 0,
            qform_code: 0,
            ..Default::default()
        }
    }

    /// A 2x3x4 volume whose voxel value is its index.
    fn shown_as(header: &NiftiHeader) -> (Vec<Vec<usize>>, Vec<String>) {
        shown_in(header, (2, 3, 4))
    }

    /// A volume of `dims` whose voxel value is its index, as shown; checks the way back.
    fn shown_in(header: &NiftiHeader, dims: (usize, usize, usize)) -> (Vec<Vec<usize>>, Vec<String>) {
        let (layout, notes) = Layout::of_header(header, dims);
        let voxels: Vec<usize> = (0..dims.0 * dims.1 * dims.2).collect();
        let slices = layout.slices(&voxels);
        assert_eq!(layout.voxels(&slices), voxels, "shown slices map back voxel for voxel");
        (slices, notes)
    }

    #[test]
    fn stored_left_anterior_superior_reads_as_files_without_orientation() {
        let unoriented = shown_as(&unoriented());
        let las = shown_as(&sform([[-1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]));
        assert_eq!(unoriented, las);
        // Anterior (high j) at the top, i along the columns.
        assert_eq!(las.0[0], vec![4, 5, 2, 3, 0, 1]);
        assert!(las.1.is_empty());
    }

    #[test]
    fn rows_and_columns_follow_the_orientation() {
        let las = shown_as(&sform([[-1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])).0;
        // Stored posterior to anterior and right to left (DICOM's LPS order), by sform...
        let lps = shown_as(&sform([[-1.0, 0.0, 0.0], [0.0, -1.0, 0.0], [0.0, 0.0, 1.0]])).0;
        assert_eq!(lps[0], vec![0, 1, 2, 3, 4, 5]);
        // ...or by qform: 180 degrees about z.
        let qform = NiftiHeader {
            sform_code: 0,
            qform_code: 1,
            quatern_d: 1.0,
            pixdim: [1.0; 8],
            ..Default::default()
        };
        assert_eq!(shown_as(&qform).0, lps);
        // RAS: both in-plane axes run the other way from LPS.
        let ras = shown_as(&sform([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])).0;
        assert_eq!(ras[0], vec![5, 4, 3, 2, 1, 0]);
        assert_ne!(las, lps);
    }

    #[test]
    fn sagittal_and_coronal_volumes_are_shown_axially_and_said() {
        // i anterior, j superior, k to the left: 33 sagittal slices of 32 x 2.
        let sagittal = sform([[0.0, 0.0, -1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]);
        let (slices, notes) = shown_in(&sagittal, (32, 2, 33));
        // Shown: 33 columns (k), 32 rows (i, anterior first), 2 slices (j).
        assert_eq!((slices.len(), slices[0].len()), (2, 33 * 32));
        // Voxel (i, j, k) holds i + 32 * (j + 2 * k).
        assert_eq!([slices[0][0], slices[0][1], slices[0][33]], [31, 31 + 64, 30]);
        assert!(notes[0].contains("stored as sagittal slices"), "{notes:?}");
        let coronal = sform([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 1.0, 0.0]]);
        let (_, notes) = shown_in(&coronal, (32, 2, 33));
        assert!(notes[0].contains("stored as coronal slices"), "{notes:?}");
        // Four sagittal slices of 2 x 3 would make axial slices of 4 x 2 pixels: predicted as
        // stored.
        let (slices, notes) = shown_as(&sagittal);
        assert_eq!(slices, shown_as(&unoriented()).0);
        assert!(
            notes[0].contains("sagittal slices that would make axial slices of only 4x2 pixels"),
            "{notes:?}"
        );
    }

    #[test]
    fn oblique_degenerate_and_anisotropic_volumes_are_said() {
        let tilted = |deg: f32| {
            let (s, c) = deg.to_radians().sin_cos();
            sform([[-1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])
        };
        assert!(shown_as(&tilted(20.0)).1.is_empty(), "an ordinary tilt is not worth a note");
        let (slices, notes) = shown_as(&tilted(40.0));
        assert!(notes[0].contains("up to 40 degrees"), "{notes:?}");
        assert_eq!(slices, shown_as(&unoriented()).0);
        // Zero, parallel or NaN axes: unusable, said (a usable qform would have been taken).
        let parallel = sform([[1.0, 1.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 1.0]]);
        let nan = sform([[f32::NAN, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]);
        for bad in [sform([[0.0; 3]; 3]), parallel, nan.clone()] {
            let (slices, notes) = shown_as(&bad);
            assert!(notes[0].contains("unusable"), "{notes:?}");
            assert_eq!(slices, shown_as(&unoriented()).0);
        }
        let lps_qform = NiftiHeader {
            qform_code: 1,
            quatern_d: 1.0,
            ..nan
        };
        assert_eq!(
            shown_as(&lps_qform).0[0],
            vec![0, 1, 2, 3, 4, 5],
            "an unusable sform falls back to the qform"
        );
        // Sagittal slices 5 mm apart become 5 mm wide columns, in mm whatever the file's unit.
        let mut thick = sform([[0.0, 0.0, -0.005], [0.001, 0.0, 0.0], [0.0, 0.001, 0.0]]);
        thick.pixdim = [1.0, 0.001, 0.001, 0.005, 1.0, 1.0, 1.0, 1.0];
        thick.xyzt_units = 1;
        let (_, notes) = shown_in(&thick, (32, 2, 33));
        assert!(notes.iter().any(|n| n.contains("5.00 x 1.00 mm")), "{notes:?}");
    }
}
