//! `tumorscan predict` and `merge` end to end with the built-in model.

mod common;
use common::*;
use std::path::Path;

#[test]
fn predict_on_the_bundled_samples() {
    let out = tempfile::tempdir().unwrap();
    let o = out.path().join("r");
    let r = tumorscan(&["predict", "samples/", "--out", p(&o), "--json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let summary: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(summary["slices"], 20);
    let mut rdr = csv::Reader::from_path(o.join("predictions.csv")).unwrap();
    let headers = rdr.headers().unwrap().clone();
    for col in [
        "file",
        "tumor_probability",
        "has_tumor",
        "tumor_pixels",
        "tumor_area_mm2",
        "bbox_x",
        "bbox_y",
        "bbox_width",
        "bbox_height",
    ] {
        assert!(headers.iter().any(|h| h == col), "missing column {col}");
    }
    let rows: Vec<csv::StringRecord> = rdr.records().map(|r| r.unwrap()).collect();
    assert_eq!(rows.len(), 20);
    for row in &rows {
        let file = row.get(0).unwrap();
        assert!(!file.contains("_mask"), "masks are not inputs");
        let prob: f64 = row.get(3).unwrap().parse().unwrap();
        assert!((0.0..=1.0).contains(&prob));
        let has: u8 = row.get(4).unwrap().parse().unwrap();
        let pixels: u64 = row.get(5).unwrap().parse().unwrap();
        // Detection and mask agree; under the built-in rule the reported score is at least 0.5
        // exactly on the slices called tumour (slice context re-ranks only the others).
        assert_eq!(has == 1, pixels > 0, "{file}");
        assert_eq!(has == 1, prob >= 0.5, "{file}: {prob}");
        let stem = Path::new(file).file_stem().unwrap().to_str().unwrap();
        let mask = image::open(o.join("masks").join(format!("{stem}_mask.png"))).unwrap();
        assert_eq!((mask.width(), mask.height()), (256, 256));
        let gray = mask.as_luma8().expect("8-bit single channel");
        assert!(gray.pixels().all(|v| v.0[0] == 0 || v.0[0] == 255));
        assert_eq!(gray.pixels().filter(|v| v.0[0] == 255).count() as u64, pixels);
        assert!(o.join("overlays").join(format!("{stem}.png")).exists());
    }
    let html = std::fs::read_to_string(o.join("report.html")).unwrap();
    assert!(html.contains("sha256") && html.contains("Per patient"));
    assert!(
        html.contains("p on each panel: the slice's largest pixel probability"),
        "the score is explained"
    );
    assert!(
        html.contains("<b>How sure</b>: tumor_probability against the truth on held-out patients"),
        "the built-in model's measured calibration is shown"
    );
    if summary["tumor_slices"].as_u64().unwrap() > 0 {
        assert!(html.contains("data:image/png;base64,"), "panels inline");
    }
    // The sample comes with its masks: the patient is scored as `evaluate segment` scores it
    // (0.9157 in models/evaluation/eval-seg-test/segmentation.json, the same model and slices).
    let truth = &summary["volumes"][0]["ground_truth"];
    assert!((truth["dice"].as_f64().unwrap() - 0.9157).abs() < 5e-4, "{truth}");
    assert_eq!(truth["truth_tumor_slices"], 8, "{truth}");
    assert_eq!(truth["missed_tumor_slices"], 1, "slice 5, 253 px: {truth}");
    assert_eq!(truth["false_tumor_slices"], 2, "{truth}");
    let run = &summary["ground_truth"];
    assert_eq!((run["volumes"].as_u64(), run["slices"].as_u64()), (Some(1), Some(20)), "{run}");
    assert_eq!(run["mean_dice"], truth["dice"]);
    assert_eq!(run["slice_accuracy"].as_f64(), Some(17.0 / 20.0), "{run}");
    assert!(html.contains("<b>Against the ground truth</b>, over the 1 volume(s) scored"));
    assert!(html.contains("Dice vs ground truth"), "the report shows the score");

    // The output folder is never reused without --force; with --force it is.
    assert_clean_failure(&tumorscan(&["predict", "samples/", "--out", p(&o)]), "--force");
    assert_eq!(
        tumorscan(&[
            "predict",
            "samples/TCGA_CS_5393_19990606/TCGA_CS_5393_19990606_9.tif",
            "--out",
            p(&o),
            "--force"
        ])
        .code,
        0
    );
}

/// `(tumor_probability, has_tumor, tumor_pixels)` of each row of a predictions.csv.
fn calls(path: &Path) -> Vec<(f64, bool, u64)> {
    let mut rdr = csv::Reader::from_path(path).unwrap();
    let h = rdr.headers().unwrap().clone();
    let col = |name: &str| h.iter().position(|c| c == name).unwrap();
    let (pc, hc, xc) = (col("tumor_probability"), col("has_tumor"), col("tumor_pixels"));
    rdr.records()
        .map(|r| {
            let r = r.unwrap();
            (r[pc].parse().unwrap(), &r[hc] == "1", r[xc].parse().unwrap())
        })
        .collect()
}

#[test]
fn threshold_cuts_the_reported_probability() {
    let out = tempfile::tempdir().unwrap();
    let run = |name: &str, extra: &[&str]| {
        let o = out.path().join(name);
        let mut args = vec!["predict", "samples/", "--out", p(&o)];
        args.extend_from_slice(extra);
        let r = tumorscan(&args);
        assert_eq!(r.code, 0, "{}", r.stderr);
        (calls(&o.join("predictions.csv")), read_json(o.join("summary.json")))
    };
    let (rule, summary) = run("rule", &[]);
    assert!(summary.get("threshold").is_none());
    let tumours = rule.iter().filter(|c| c.1).count();
    // Lower than the rule's 0.5: slices without an outline of their own (scored under 0.5) that
    // reach it are called too; the rule's calls and outlines stay.
    let (low, summary) = run("low", &["--threshold", "0.2"]);
    assert_eq!(summary["threshold"], 0.2);
    let html = std::fs::read_to_string(out.path().join("low/report.html")).unwrap();
    assert!(
        html.contains("where p reached 0.2 (<code>--threshold</code>)"),
        "the report says so"
    );
    assert!(low.iter().filter(|c| c.1).count() > tumours, "the sample has tumour ends");
    for (a, b) in rule.iter().zip(&low) {
        // (The CSV rounds scores to 4 decimals; the cut is on the unrounded score.)
        if (b.0 - 0.2).abs() > 1e-4 {
            assert_eq!(b.1, b.0 >= 0.2, "{b:?}");
        }
        assert_eq!(a.0, b.0);
        if a.1 {
            assert!(b.1 && a.2 == b.2, "{a:?} {b:?}");
        } else if b.1 {
            assert!(b.2 < 8, "under the rule's 8 pixels: {b:?}");
        }
    }
    // Higher: only the surer of the rule's slices.
    let (high, _) = run("high", &["--threshold", "0.99"]);
    for (a, b) in rule.iter().zip(&high) {
        assert_eq!(b.1, a.1 && a.0 >= 0.99, "{a:?} {b:?}");
    }
    // The top: only slices whose unrounded score is 1 (none on the sample, though the CSV
    // shows 1.0000 for some), so 0.99 is the highest cut that keeps any.
    let (top, _) = run("top", &["--threshold", "1"]);
    assert!(top.iter().all(|c| !c.1) && top.iter().any(|c| c.0 == 1.0));
    for bad in ["1.5", "-0.1", "NaN", "x"] {
        let flag = format!("--threshold={bad}");
        let r = tumorscan(&["predict", "samples/", "--out", p(&out.path().join("bad")), &flag]);
        assert_clean_failure(&r, "between 0 and 1");
    }
}

#[test]
fn bad_inputs_are_listed_and_good_ones_still_written() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.png");
    image::RgbImage::from_fn(64, 64, |x, y| image::Rgb([(x * 3) as u8, (y * 3) as u8, 40]))
        .save(&good)
        .unwrap();
    let gray = dir.path().join("gray.png");
    image::GrayImage::from_fn(48, 40, |x, _| image::Luma([x as u8 * 4]))
        .save(&gray)
        .unwrap();
    let junk = dir.path().join("junk.tif");
    std::fs::write(&junk, b"not an image").unwrap();
    let bomb = dir.path().join("bomb.png");
    std::fs::write(&bomb, png_header(100_000, 100_000)).unwrap();
    let txt = dir.path().join("notes.txt");
    std::fs::write(&txt, b"hello").unwrap();
    let out = dir.path().join("out");
    let r = tumorscan(&[
        "predict",
        p(&good),
        p(&gray),
        p(&junk),
        p(&bomb),
        p(&txt),
        "/nonexistent.png",
        "--out",
        p(&out),
    ]);
    assert_eq!(r.code, 2, "partial failure exit code; stderr {}", r.stderr);
    assert!(!r.stderr.contains("panicked"));
    for name in ["junk.tif", "bomb.png", "notes.txt", "/nonexistent.png"] {
        assert!(r.stderr.contains(name), "{name} listed: {}", r.stderr);
    }
    let csv = std::fs::read_to_string(out.join("predictions.csv")).unwrap();
    assert_eq!(csv.lines().count(), 3, "good and converted grayscale slices written");
    let m = image::open(out.join("masks/gray_mask.png")).unwrap();
    assert_eq!((m.width(), m.height()), (48, 40), "mask has the input's own size");
    // Nothing readable at all: exit 1.
    let r = tumorscan(&["predict", p(&junk), "--out", p(&dir.path().join("o2"))]);
    assert_clean_failure(&r, "junk.tif");
    // An empty folder.
    let empty = tempfile::tempdir().unwrap();
    assert_clean_failure(
        &tumorscan(&["predict", p(empty.path()), "--out", p(&dir.path().join("o3"))]),
        "no slice images",
    );
}

/// A PNG header declaring a huge image, with no data (decompression-bomb guard).
fn png_header(w: u32, h: u32) -> Vec<u8> {
    let mut v = vec![0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13, b'I', b'H', b'D', b'R'];
    v.extend(w.to_be_bytes());
    v.extend(h.to_be_bytes());
    v.extend([8, 2, 0, 0, 0]);
    let crc = crc32(&v[12..]);
    v.extend(crc.to_be_bytes());
    v
}

fn crc32(data: &[u8]) -> u32 {
    let mut c = 0xffff_ffffu32;
    for &b in data {
        c ^= b as u32;
        for _ in 0..8 {
            c = if c & 1 != 0 { 0xedb8_8320 ^ (c >> 1) } else { c >> 1 };
        }
    }
    !c
}

#[test]
fn nifti_volumes_round_trip_and_nan_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (nx, ny, nz) = (64usize, 64usize, 3usize);
    let vol = dir.path().join("flair.nii.gz");
    let data: Vec<f32> = (0..nx * ny * nz)
        .map(|i| ((i % nx) as f32 - 32.0).abs() + (i / (nx * ny)) as f32)
        .collect();
    write_nifti(&vol, (nx, ny, nz), &data);
    let out = dir.path().join("out");
    let r = tumorscan(&["predict", p(&vol), "--out", p(&out)]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let mask = out.join("flair_mask.nii.gz");
    let h = nifti::NiftiHeader::from_file(&mask).unwrap();
    assert_eq!(&h.dim[..4], &[3, 64, 64, 3]);
    assert_eq!(h.pixdim[1], 0.9);
    let csv = std::fs::read_to_string(out.join("predictions.csv")).unwrap();
    assert!(csv.contains("flair.nii.gz#2"), "{csv}");

    let bad = dir.path().join("nan.nii.gz");
    let mut d2 = data.clone();
    d2[5] = f32::NAN;
    write_nifti(&bad, (nx, ny, nz), &d2);
    assert_clean_failure(&tumorscan(&["predict", p(&bad), "--out", p(&dir.path().join("o2"))]), "NaN");
    let zero = dir.path().join("zero.nii.gz");
    write_nifti(&zero, (nx, 0, nz), &[]);
    assert_clean_failure(&tumorscan(&["predict", p(&zero), "--out", p(&dir.path().join("o3"))]), "zero");
}

fn write_nifti(path: &Path, dims: (usize, usize, usize), data: &[f32]) {
    write_nifti_4d(path, dims, 1, data)
}

/// A float32 NIfTI-1 file of `nt` volumes (3D when `nt` is 1), without orientation.
fn write_nifti_4d(path: &Path, dims: (usize, usize, usize), nt: usize, data: &[f32]) {
    write_nifti_stored(path, dims, nt, data, None)
}

/// A float32 NIfTI-1 file of `nt` volumes, with `sform` (rows of the affine) where given.
fn write_nifti_stored(path: &Path, (nx, ny, nz): (usize, usize, usize), nt: usize, data: &[f32], sform: Option<[[f32; 4]; 3]>) {
    use std::io::Write;
    let (x, y, z) = (nx as i16, ny as i16, nz as i16);
    let dims: &[i16] = if nt > 1 { &[x, y, z, nt as i16] } else { &[x, y, z] };
    let mut h = tumorscan_data::phantom::nifti_header(dims, 16, 32); // float32
    if let Some(rows) = sform {
        // Voxel sizes: the lengths of the affine's columns.
        for v in 0..3 {
            let size = rows.iter().map(|row| row[v] * row[v]).sum::<f32>().sqrt();
            h[80 + 4 * v..84 + 4 * v].copy_from_slice(&size.to_le_bytes());
        }
        h[254..256].copy_from_slice(&1i16.to_le_bytes()); // sform_code: scanner
        for (i, v) in rows.concat().iter().enumerate() {
            h[280 + 4 * i..284 + 4 * i].copy_from_slice(&v.to_le_bytes());
        }
    }
    for v in data {
        h.extend(v.to_le_bytes());
    }
    // `.nii` plain, `.nii.gz` compressed.
    if path.extension().is_some_and(|e| e == "nii") {
        return std::fs::write(path, h).unwrap();
    }
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&h).unwrap();
    std::fs::write(path, gz.finish().unwrap()).unwrap();
}

/// How a test volume's voxels are stored, as a converter might write the same axial slices.
#[derive(Clone, Copy, PartialEq)]
enum Stored {
    /// No orientation in the header; voxel (x, ny - 1 - row, z).
    Unoriented,
    /// Right to left, anterior to posterior (DICOM's order): voxel (x, row, z).
    Lps,
    /// Left to right, posterior to anterior: voxel (nx - 1 - x, ny - 1 - row, z).
    Ras,
    /// Sagittal slices: voxel i anterior-ward (ny - 1 - row), j the axial slice z, k the column x.
    Sagittal,
}

impl Stored {
    fn dims(self, (nx, ny, nz): (usize, usize, usize)) -> (usize, usize, usize) {
        if self == Stored::Sagittal {
            (ny, nz, nx)
        } else {
            (nx, ny, nz)
        }
    }

    /// Where shown pixel (`row`, `x`) of axial slice `z` is stored.
    fn index(self, (nx, ny, nz): (usize, usize, usize), z: usize, row: usize, x: usize) -> usize {
        match self {
            Stored::Unoriented => x + nx * (ny - 1 - row + ny * z),
            Stored::Lps => x + nx * (row + ny * z),
            Stored::Ras => nx - 1 - x + nx * (ny - 1 - row + ny * z),
            Stored::Sagittal => ny - 1 - row + ny * (z + nz * x),
        }
    }

    /// Voxel sizes 0.9 mm in plane, 3 mm between axial slices.
    fn sform(self) -> Option<[[f32; 4]; 3]> {
        match self {
            Stored::Unoriented => None,
            Stored::Lps => Some([[-0.9, 0.0, 0.0, 0.0], [0.0, -0.9, 0.0, 0.0], [0.0, 0.0, 3.0, 0.0]]),
            Stored::Ras => Some([[0.9, 0.0, 0.0, 0.0], [0.0, 0.9, 0.0, 0.0], [0.0, 0.0, 3.0, 0.0]]),
            Stored::Sagittal => Some([[0.0, 0.0, -0.9, 0.0], [0.9, 0.0, 0.0, 0.0], [0.0, 3.0, 0.0, 0.0]]),
        }
    }
}

/// The bundled sample patient as three float32 NIfTI volumes, one per sequence (pre-contrast,
/// FLAIR, post-contrast; display row r at y = ny - 1 - r), the three as one 4D file, and its
/// ground truth as a label map (tumour voxels 2, as BraTS labels one of its regions).
fn sample_as_sequences(dir: &Path) -> [std::path::PathBuf; 5] {
    sample_stored(dir, Stored::Unoriented)
}

/// [`sample_as_sequences`] with its voxels stored as `stored` says.
fn sample_stored(dir: &Path, stored: Stored) -> [std::path::PathBuf; 5] {
    let folder = repo_root().join("samples/TCGA_CS_5393_19990606");
    let slices: Vec<_> = (1..=20)
        .map(|k| {
            let path = folder.join(format!("TCGA_CS_5393_19990606_{k}.tif"));
            tumorscan_data::image_io::read_slice(&path, tumorscan_data::image_io::ChannelPolicy::Strict).unwrap()
        })
        .collect();
    let (nx, ny, nz) = (slices[0].width as usize, slices[0].height as usize, slices.len());
    let mut seq = vec![vec![0f32; nx * ny * nz]; 3];
    let mut truth = vec![0f32; nx * ny * nz];
    for (z, s) in slices.iter().enumerate() {
        let mask_path = folder.join(format!("TCGA_CS_5393_19990606_{}_mask.tif", z + 1));
        let mask = tumorscan_data::image_io::read_mask(&mask_path).unwrap();
        for row in 0..ny {
            for x in 0..nx {
                let at = stored.index((nx, ny, nz), z, row, x);
                truth[at] = 2.0 * mask.data[row * nx + x] as f32;
                for (c, channel) in seq.iter_mut().enumerate() {
                    channel[at] = s.data[(row * nx + x) * 3 + c] as f32 * 3.0;
                }
            }
        }
    }
    let files = ["pre", "flair", "post", "all", "truth"].map(|n| dir.join(format!("{n}.nii.gz")));
    let dims = stored.dims((nx, ny, nz));
    for (c, channel) in seq.iter().enumerate() {
        write_nifti_stored(&files[c], dims, 1, channel, stored.sform());
    }
    write_nifti_stored(&files[3], dims, 3, &seq.concat(), stored.sform());
    write_nifti_stored(&files[4], dims, 1, &truth, stored.sform());
    files
}

/// The voxels of a mask volume predict wrote.
fn mask_voxels(path: &Path) -> Vec<u8> {
    use std::io::Read;
    let mut bytes = Vec::new();
    flate2::read::GzDecoder::new(std::fs::File::open(path).unwrap())
        .read_to_end(&mut bytes)
        .unwrap();
    bytes.split_off(352)
}

#[test]
fn sequences_stored_apart_predict_as_one_four_d_volume() {
    let dir = tempfile::tempdir().unwrap();
    let [pre, flair, post, all, truth] = sample_as_sequences(dir.path());
    let (apart, together, alone) = (dir.path().join("apart"), dir.path().join("4d"), dir.path().join("alone"));
    let r = tumorscan(&[
        "predict",
        p(&flair),
        "--pre",
        p(&pre),
        "--post",
        p(&post),
        "--truth",
        p(&truth),
        "--out",
        p(&apart),
        "--json",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    // Scored against the label map as the slices with their _mask files are (0.9157).
    let summary: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let dice = summary["volumes"][0]["ground_truth"]["dice"].as_f64().unwrap();
    assert!((dice - 0.9157).abs() < 0.002, "{dice}");
    assert_eq!(tumorscan(&["predict", p(&all), "--out", p(&together)]).code, 0);
    assert_eq!(tumorscan(&["predict", p(&flair), "--out", p(&alone)]).code, 0);
    // Named after FLAIR, and voxel for voxel the 4D file's prediction.
    let combined = mask_voxels(&apart.join("flair_mask.nii.gz"));
    assert_eq!(combined, mask_voxels(&together.join("all_mask.nii.gz")));
    let scores = |out: &Path| -> Vec<String> {
        csv_rows(&out.join("predictions.csv"))
            .iter()
            .map(|r| r["tumor_probability"].clone())
            .collect()
    };
    assert_eq!(scores(&apart), scores(&together));
    let rows = csv_rows(&apart.join("predictions.csv"));
    assert!(rows.iter().all(|r| !r["notes"].contains("FLAIR in all three")), "{:?}", rows[0]);
    // The sample patient's tumour is found, and FLAIR alone predicts differently.
    assert!(combined.iter().filter(|&&v| v != 0).count() > 500);
    assert_ne!(scores(&apart), scores(&alone));
    // Only the post-contrast T1: the pre-contrast channel gets FLAIR, and the notes say so.
    let r = tumorscan(&["predict", p(&flair), "--post", p(&post), "--out", p(&dir.path().join("fp"))]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let notes = &csv_rows(&dir.path().join("fp/predictions.csv"))[0]["notes"];
    assert!(notes.contains("FLAIR in place of pre-contrast"), "{notes}");
}

#[test]
fn a_brats_style_folder_is_read_as_cases_scored_against_their_segmentation() {
    let dir = tempfile::tempdir().unwrap();
    let [pre, flair, post, _, truth] = sample_as_sequences(dir.path());
    let case = dir.path().join("BraTS2021_00001");
    std::fs::create_dir(&case).unwrap();
    for (from, suffix) in [(&pre, "t1"), (&flair, "flair"), (&post, "t1ce"), (&flair, "t2"), (&truth, "seg")] {
        std::fs::copy(from, case.join(format!("BraTS2021_00001_{suffix}.nii.gz"))).unwrap();
    }
    // A segmentation alone is not an image; a lone T1 is read as FLAIR, with a note.
    std::fs::copy(&truth, dir.path().join("other_seg.nii.gz")).unwrap();
    std::fs::copy(&pre, dir.path().join("lone_t1.nii.gz")).unwrap();
    let out = dir.path().join("out");
    let r = tumorscan(&[
        "predict",
        p(&case),
        p(&dir.path().join("other_seg.nii.gz")),
        p(&dir.path().join("lone_t1.nii.gz")),
        "--out",
        p(&out),
        "--json",
    ]);
    assert_eq!(r.code, 2, "one input refused: {}", r.stderr);
    assert!(r.stderr.contains("other_seg.nii.gz: is a segmentation by its name"), "{}", r.stderr);
    assert!(r.stderr.contains("lone_t1.nii.gz: its name says it is not FLAIR"), "{}", r.stderr);
    assert!(r.stderr.contains("BraTS2021_00001_t2.nii.gz: T2 is not used"), "{}", r.stderr);
    let summary: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(volume_ids(&summary), ["BraTS2021_00001", "lone_t1"]);
    let dice = summary["volumes"][0]["ground_truth"]["dice"].as_f64().unwrap();
    assert!((dice - 0.9157).abs() < 0.002, "{dice}");
    // Given as one input with --truth: the case's own notes still reach stderr.
    let r = tumorscan(&["predict", p(&case), "--truth", p(&truth), "--out", p(&dir.path().join("t"))]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr.contains("T2 is not used") && r.stderr.contains("replaces the ground truth"),
        "{}",
        r.stderr
    );
    // The same prediction as the sequences given by hand.
    let by_hand = dir.path().join("by-hand");
    let r = tumorscan(&["predict", p(&flair), "--pre", p(&pre), "--post", p(&post), "--out", p(&by_hand)]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        mask_voxels(&out.join("BraTS2021_00001_mask.nii.gz")),
        mask_voxels(&by_hand.join("flair_mask.nii.gz"))
    );
}

#[test]
fn volumes_stored_in_any_order_or_plane_are_shown_and_predicted_alike() {
    // Before the header's orientation was read, the LPS-stored copy was segmented upside down.
    let dir = tempfile::tempdir().unwrap();
    let kinds = [Stored::Unoriented, Stored::Lps, Stored::Ras, Stored::Sagittal];
    let mut inputs = Vec::new();
    for (n, stored) in kinds.iter().enumerate() {
        let made = dir.path().join(format!("made{n}"));
        std::fs::create_dir(&made).unwrap();
        let [pre, flair, post, _, truth] = sample_stored(&made, *stored);
        let case = dir.path().join(format!("BraTS2021_0000{n}"));
        std::fs::create_dir(&case).unwrap();
        for (from, suffix) in [(&pre, "t1"), (&flair, "flair"), (&post, "t1ce"), (&truth, "seg")] {
            std::fs::rename(from, case.join(format!("BraTS2021_0000{n}_{suffix}.nii.gz"))).unwrap();
        }
        inputs.push(case);
    }
    let out = dir.path().join("out");
    let mut args = vec!["predict"];
    args.extend(inputs.iter().map(|c| p(c)));
    args.extend(["--out", p(&out), "--json"]);
    let r = tumorscan(&args);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr.contains("BraTS2021_00003_flair.nii.gz: stored as sagittal slices"),
        "{}",
        r.stderr
    );
    let summary: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let dice: Vec<f64> = (0..4)
        .map(|n| summary["volumes"][n]["ground_truth"]["dice"].as_f64().unwrap())
        .collect();
    assert!((dice[0] - 0.9157).abs() < 0.002, "{dice:?}");
    assert!(dice.iter().all(|d| *d == dice[0]), "{dice:?}");
    // The reslicing is said in summary.json and the report too, for that volume only.
    let said = |n: usize| summary["volumes"][n]["notes"].to_string();
    assert!(said(3).contains("stored as sagittal slices") && said(0) == "null", "{}", said(3));
    let report = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(report.contains("BraTS2021_00003: stored as sagittal slices"));
    // Each mask volume is written in its input's voxel order.
    let shown = (256, 256, 20);
    let masks: Vec<Vec<u8>> = (0..4)
        .map(|n| mask_voxels(&out.join(format!("BraTS2021_0000{n}_mask.nii.gz"))))
        .collect();
    assert!(masks[0].iter().filter(|&&v| v == 1).count() > 1000);
    for (stored, mask) in kinds.iter().zip(&masks) {
        for z in 0..shown.2 {
            for row in 0..shown.1 {
                for x in 0..shown.0 {
                    let (a, b) = (Stored::Unoriented.index(shown, z, row, x), stored.index(shown, z, row, x));
                    assert_eq!(masks[0][a], mask[b]);
                }
            }
        }
    }
}

#[test]
fn sequences_that_do_not_fit_flair_are_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let data = |nz: usize| -> Vec<f32> { (0..32 * 32 * nz).map(|i| (i % 29) as f32).collect() };
    let (flair, short, rgb) = (d.join("flair.nii.gz"), d.join("short.nii.gz"), d.join("rgb.nii.gz"));
    write_nifti(&flair, (32, 32, 3), &data(3));
    write_nifti(&short, (32, 32, 2), &data(2));
    let mut three = data(9);
    three[5] += 7.0;
    write_nifti_4d(&rgb, (32, 32, 3), 3, &three);
    let out = d.join("o");
    let png = d.join("slice.png");
    image::RgbImage::new(32, 32).save(&png).unwrap();
    for (args, needle) in [
        (
            vec![p(&flair), "--pre", p(&short)],
            "not on FLAIR's voxel grid (2 slices, FLAIR has 3)",
        ),
        (
            vec![p(&flair), "--truth", p(&short)],
            "(32, 32, 2) voxels, the input has (32, 32, 3)",
        ),
        (
            vec![p(&flair), "--truth", p(&rgb)],
            "a mask volume has one value per voxel, this one 3",
        ),
        (vec![p(&png), "--truth", p(&flair)], "needs a NIfTI input"),
        (vec![p(&flair), "--post", p(&rgb)], "already holds three different channels"),
        (vec![p(&flair), p(&short), "--pre", p(&short)], "give exactly one input (got 2)"),
        (vec![p(&flair), "--pre", p(&d.join("missing.nii.gz"))], "--pre"),
        (vec![p(&d.join("none.nii.gz")), "--post", p(&flair)], "FLAIR input"),
    ] {
        let r = tumorscan(&[&["predict"], args.as_slice(), &["--out", p(&out)]].concat());
        assert_clean_failure(&r, needle);
        assert!(!out.exists(), "{needle}: --out was created");
    }
}

/// The volume names of a summary (`--json`), in order.
fn volume_ids(summary: &serde_json::Value) -> Vec<&str> {
    summary["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["volume"].as_str().unwrap())
        .collect()
}

/// The rows of a CSV as maps from column name to value.
fn csv_rows(path: &Path) -> Vec<std::collections::HashMap<String, String>> {
    let mut rdr = csv::Reader::from_path(path).unwrap();
    let h = rdr.headers().unwrap().clone();
    rdr.records()
        .map(|r| h.iter().map(String::from).zip(r.unwrap().iter().map(String::from)).collect())
        .collect()
}

#[test]
fn same_named_volumes_from_two_folders_both_keep_their_masks() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a/flair.nii.gz"), dir.path().join("b/flair.nii"));
    for (path, nz) in [(&a, 2usize), (&b, 3)] {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let data: Vec<f32> = (0..32 * 32 * nz).map(|i| ((i % 32) as f32 - 16.0).abs()).collect();
        write_nifti(path, (32, 32, nz), &data);
    }
    let out = dir.path().join("cn");
    let r = tumorscan(&["predict", p(&a), p(&b), "--out", p(&out), "--json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    // One mask volume each, with its own input's depth: neither overwrote the other.
    for (name, nz) in [("flair_mask.nii.gz", 2), ("flair-2_mask.nii.gz", 3)] {
        let h = nifti::NiftiHeader::from_file(out.join(name)).unwrap();
        assert_eq!(&h.dim[..4], &[3, 32, 32, nz], "{name}");
    }
    let summary: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(volume_ids(&summary), ["flair", "flair-2"]);
    // Every row names its own mask file, which exists, once.
    let rows = csv_rows(&out.join("predictions.csv"));
    assert_eq!(rows.len(), 5);
    let mut masks: Vec<&str> = rows.iter().map(|r| r["mask_file"].as_str()).collect();
    for m in &masks {
        assert!(out.join(m).is_file(), "{m}");
    }
    masks.sort();
    masks.dedup();
    assert_eq!(masks.len(), 5);
    assert!(rows
        .iter()
        .any(|r| r["volume"] == "flair-2" && r["mask_file"] == "masks/flair_z000-2_mask.png"));
}

/// A patient folder in `root` holding sample slice 10 and its mask.
fn one_slice_patient(root: &Path) -> std::path::PathBuf {
    let dir = root.join("p");
    std::fs::create_dir_all(&dir).unwrap();
    let s = repo_root().join("samples/TCGA_CS_5393_19990606");
    for name in ["TCGA_CS_5393_19990606_10.tif", "TCGA_CS_5393_19990606_10_mask.tif"] {
        std::fs::copy(s.join(name), dir.join(name)).unwrap();
    }
    dir
}

#[cfg(unix)]
#[test]
fn symbolic_link_loops_in_input_folders_are_read_once() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("loop");
    let p_dir = one_slice_patient(&root);
    std::os::unix::fs::symlink(".", p_dir.join("me")).unwrap();
    let run = |name: &str| {
        let r = tumorscan_within(60, &["predict", p(&root), "--out", p(&dir.path().join(name)), "--json"]);
        assert_eq!(r.code, 0, "{}", r.stderr);
        assert!(r.stderr.contains("symbolic link loop"), "the skipped loop is named: {}", r.stderr);
        serde_json::from_str::<serde_json::Value>(&r.stdout).unwrap()
    };
    assert_eq!(run("o1")["slices"], 1, "the one file, not one per me/me/...");
    // Two links that lead back up: the walk still ends.
    std::os::unix::fs::symlink("..", p_dir.join("up")).unwrap();
    std::os::unix::fs::symlink("../p", p_dir.join("self")).unwrap();
    let s = run("o2");
    assert_eq!(s["slices"], 1);
    assert_eq!(s["volumes"].as_array().unwrap().len(), 1);
}

#[test]
fn an_earlier_output_inside_an_input_folder_is_not_read_as_slices() {
    let dir = tempfile::tempdir().unwrap();
    let input = one_slice_patient(dir.path());
    let first = tumorscan(&["predict", p(&input), "--out", p(&input.join("results"))]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    let r = tumorscan(&["predict", p(&input), "--out", p(&dir.path().join("x")), "--json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let s: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(s["slices"], 1, "the overlays are not MRI slices");
    assert_eq!(s["volumes"].as_array().unwrap().len(), 1);
    assert!(r.stderr.contains("earlier `tumorscan predict`"), "{}", r.stderr);
    // Named directly, it is refused with the reason.
    assert_clean_failure(
        &tumorscan(&["predict", p(&input.join("results")), "--out", p(&dir.path().join("y"))]),
        "earlier `tumorscan predict`",
    );
}

#[test]
fn each_failure_is_reported_by_one_shard_and_no_shard_claims_nothing_was_read() {
    let data = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    phantom_dir(data.path(), 1, 2);
    let bad = dir.path().join("bad.png");
    std::fs::write(&bad, b"not a png").unwrap();
    let mut reported = 0;
    for i in 0..4 {
        let o = dir.path().join(format!("sh{i}"));
        let r = tumorscan(&["predict", p(data.path()), p(&bad), "--out", p(&o), "--shard", &format!("{i}/4")]);
        // 2 where this shard holds the failure, else 0 (predictions.csv may be empty).
        let has = r.stderr.contains("skipped");
        assert_eq!(r.code, if has { 2 } else { 0 }, "shard {i}: {}", r.stderr);
        assert!(o.join("predictions.csv").exists(), "shard {i}");
        reported += usize::from(has);
    }
    assert_eq!(reported, 1);
}

#[test]
fn masks_that_cannot_score_a_volume_are_said() {
    let dir = tempfile::tempdir().unwrap();
    let patient = dir.path().join("p");
    std::fs::create_dir(&patient).unwrap();
    for e in std::fs::read_dir(repo_root().join("samples/TCGA_CS_5393_19990606")).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), patient.join(e.file_name())).unwrap();
    }
    std::fs::remove_file(patient.join("TCGA_CS_5393_19990606_1_mask.tif")).unwrap();
    std::fs::write(patient.join("TCGA_CS_5393_19990606_2_mask.tif"), b"broken").unwrap();
    let r = tumorscan(&["predict", p(&patient), "--out", p(&dir.path().join("o")), "--json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr.contains("_2_mask.tif: not a readable image") && r.stderr.contains("; not used as ground truth"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("18 of 20 slices have a usable _mask file"), "{}", r.stderr);
    let summary: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert!(summary["volumes"][0].get("ground_truth").is_none());
}

#[test]
fn sequences_given_by_name_or_number_must_be_the_ones_meant() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Slice folders pair by slice number: `b1, b2, b10` carry none (no `_` before it).
    let (flair, pre) = (d.join("flair"), d.join("pre"));
    for (folder, name) in [(&flair, "a_"), (&pre, "b")] {
        std::fs::create_dir(folder).unwrap();
        for n in [1, 2, 10] {
            image::GrayImage::from_pixel(32, 32, image::Luma([n as u8 * 9]))
                .save(folder.join(format!("{name}{n}.png")))
                .unwrap();
        }
    }
    let out = d.join("o");
    let r = tumorscan(&["predict", p(&flair), "--pre", p(&pre), "--out", p(&out)]);
    assert_clean_failure(&r, "slices pair by number");
    // A name that says another sequence, and one file given twice.
    let data: Vec<f32> = (0..32 * 32 * 2).map(|i| (i % 17) as f32).collect();
    let (f, t1) = (d.join("c_flair.nii.gz"), d.join("c_t1.nii.gz"));
    write_nifti(&f, (32, 32, 2), &data);
    write_nifti(&t1, (32, 32, 2), &data);
    assert_clean_failure(
        &tumorscan(&["predict", p(&f), "--pre", p(&f), "--out", p(&out)]),
        "is given as both FLAIR input and --pre",
    );
    assert_clean_failure(&tumorscan(&["predict", p(&f), "--post", p(&t1), "--out", p(&out)]), "--post");
    let r = tumorscan(&["predict", p(&f), "--post", p(&t1), "--out", p(&out)]);
    assert!(r.stderr.contains("its name says pre-contrast"), "{}", r.stderr);
    let t2 = d.join("c_t2.nii.gz");
    write_nifti(&t2, (32, 32, 2), &data);
    assert_clean_failure(
        &tumorscan(&["predict", p(&f), "--pre", p(&t2), "--out", p(&out)]),
        "its name says T2",
    );
    // The image itself is no ground truth, nor is a sequence.
    assert_clean_failure(
        &tumorscan(&["predict", p(&f), "--truth", p(&f), "--out", p(&out)]),
        "given as both input and --truth",
    );
    assert_clean_failure(&tumorscan(&["predict", p(&f), "--truth", p(&t1), "--out", p(&out)]), "--truth");
    // A mask volume predict wrote is not read back as MRI.
    std::fs::copy(&f, d.join("x_mask.nii.gz")).unwrap();
    assert_clean_failure(
        &tumorscan(&["predict", p(&d.join("x_mask.nii.gz")), "--out", p(&out)]),
        "ground-truth mask",
    );
    assert!(!out.exists());
}

#[test]
fn empty_shards_merge_and_files_that_are_not_predictions_do_not() {
    let data = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    phantom_dir(data.path(), 1, 2);
    // One patient in three shards: two shards are empty, yet each writes predict's header.
    let mut csvs = Vec::new();
    for i in 0..3 {
        let o = dir.path().join(format!("sh{i}"));
        let r = tumorscan(&["predict", p(data.path()), "--out", p(&o), "--shard", &format!("{i}/3")]);
        assert_eq!(r.code, 0, "{}", r.stderr);
        let text = std::fs::read_to_string(o.join("predictions.csv")).unwrap();
        assert!(text.starts_with("file,volume,slice,"), "shard {i}: {text:?}");
        csvs.push(o.join("predictions.csv"));
    }
    let merged = dir.path().join("all.csv");
    let r = tumorscan(&["merge", p(&csvs[0]), p(&csvs[1]), p(&csvs[2]), "--out", p(&merged)]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(csv_rows(&merged).len(), 2);

    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "hello\nworld\n").unwrap();
    let empty = dir.path().join("empty.csv");
    std::fs::write(&empty, "").unwrap();
    for bad in [&text, &empty] {
        let r = tumorscan(&["merge", p(&csvs[0]), p(bad), "--out", p(&dir.path().join("m.csv"))]);
        assert_clean_failure(&r, p(bad));
        assert!(r.stderr.contains("not a predictions.csv"), "{}", r.stderr);
    }
    assert!(!dir.path().join("m.csv").exists());
    // A folder as --out is named, not "Is a directory (os error 21)".
    let r = tumorscan(&["merge", p(&csvs[0]), "--out", p(dir.path()), "--force"]);
    assert_clean_failure(&r, p(dir.path()));
    assert!(r.stderr.contains("is a folder"), "{}", r.stderr);
}

#[test]
fn a_refused_run_leaves_no_out_folder_and_bad_options_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("p1/sub");
    assert_clean_failure(&tumorscan(&["predict", "/nonexistent", "--out", p(&out)]), "/nonexistent");
    assert!(!dir.path().join("p1").exists(), "nothing created");
    // The corrected run is not blocked.
    let sample = "samples/TCGA_CS_5393_19990606/TCGA_CS_5393_19990606_10.tif";
    assert_eq!(tumorscan(&["predict", sample, "--out", p(&out)]).code, 0);
    // A failed --force run into an existing output keeps everything there.
    let before = std::fs::read(out.join("predictions.csv")).unwrap();
    assert_clean_failure(
        &tumorscan(&["predict", "/nonexistent", "--out", p(&out), "--force"]),
        "/nonexistent",
    );
    assert_eq!(std::fs::read(out.join("predictions.csv")).unwrap(), before);
    assert!(out.join("masks/TCGA_CS_5393_19990606_10_mask.png").exists());

    let empty_model = dir.path().join("model");
    std::fs::create_dir(&empty_model).unwrap();
    let o2 = dir.path().join("o2");
    let r = tumorscan(&["predict", sample, "--out", p(&o2), "--model", p(&empty_model)]);
    assert_clean_failure(&r, "--model must be a model folder (bundle.json, or model.json + model.bpk)");
    assert!(!o2.exists());
    let r = tumorscan(&["predict", sample, "--out", p(&o2), "--batch-size", "0"]);
    assert_clean_failure(&r, "at least 1");
    assert!(!o2.exists());
}

#[test]
fn shards_partition_by_patient_and_merge_back() {
    let data = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    phantom_dir(data.path(), 4, 11);
    let mut csvs = Vec::new();
    for i in 0..2 {
        let o = dir.path().join(format!("shard{i}"));
        let r = tumorscan(&["predict", p(data.path()), "--out", p(&o), "--shard", &format!("{i}/2")]);
        assert_eq!(r.code, 0, "{}", r.stderr);
        csvs.push(o.join("predictions.csv"));
    }
    let merged = dir.path().join("all.csv");
    let r = tumorscan(&["merge", p(&csvs[0]), p(&csvs[1]), "--out", p(&merged)]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        std::fs::read_to_string(&merged).unwrap().lines().count(),
        45,
        "44 slices + header, each once"
    );
    // The rows of one run, in its order (slice 2 before 10), and every mask found from the
    // merged file (mask_file was relative to a shard's folder).
    let single = dir.path().join("single");
    assert_eq!(tumorscan(&["predict", p(data.path()), "--out", p(&single)]).code, 0);
    let (merged_rows, single_rows) = (csv_rows(&merged), csv_rows(&single.join("predictions.csv")));
    let without_mask = |rows: &[std::collections::HashMap<String, String>]| -> Vec<Vec<(String, String)>> {
        rows.iter()
            .map(|r| {
                let mut kv: Vec<(String, String)> = r
                    .iter()
                    .filter(|(k, _)| *k != "mask_file")
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                kv.sort();
                kv
            })
            .collect()
    };
    assert_eq!(without_mask(&merged_rows), without_mask(&single_rows));
    for r in &merged_rows {
        let m = Path::new(&r["mask_file"]);
        assert!(m.is_absolute() && m.is_file(), "{}", m.display());
    }
    assert_clean_failure(
        &tumorscan(&["merge", p(&csvs[0]), p(&csvs[0]), "--out", p(&dir.path().join("dup.csv"))]),
        "more than one shard",
    );
    assert_clean_failure(
        &tumorscan(&["predict", p(data.path()), "--out", p(&dir.path().join("x")), "--shard", "2/2"]),
        "--shard",
    );
}

fn write_dicom(path: &Path, number: u32, series: &str, size: u16) {
    let bytes = tumorscan_data::phantom::dicom_slice(number, series, size, "1.2.840.10008.1.2.1", ["0.5", "0.5"]);
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn dicom_series_are_read_and_inconsistent_ones_refused() {
    let dir = tempfile::tempdir().unwrap();
    let series = dir.path().join("series");
    std::fs::create_dir(&series).unwrap();
    for n in 1..=3 {
        write_dicom(&series.join(format!("IM{n}.dcm")), n, "1.2.3.4", 64);
    }
    let out = dir.path().join("out");
    let r = tumorscan(&["predict", p(&series), "--out", p(&out), "--json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["slices"], 3);
    let csv = std::fs::read_to_string(out.join("predictions.csv")).unwrap();
    assert!(csv.contains("IM3.dcm"));
    assert!(out.join("masks/IM1_mask.png").exists());
    // Area in mm2 is known from PixelSpacing: the column is filled (0.00 when no tumour).
    let rows: Vec<&str> = csv.lines().skip(1).collect();
    assert!(rows.iter().all(|l| !l.split(',').nth(6).unwrap().is_empty()), "{csv}");
    // Its mask as a DICOM Segmentation over the series.
    assert!(out.join("series_seg.dcm").exists());

    write_dicom(&series.join("IM4.dcm"), 4, "9.9.9", 64);
    assert_clean_failure(
        &tumorscan(&["predict", p(&series), "--out", p(&dir.path().join("o2"))]),
        "inconsistent DICOM series",
    );
    std::fs::write(series.join("IM4.dcm"), b"DICM? no").unwrap();
    assert_clean_failure(&tumorscan(&["predict", p(&series), "--out", p(&dir.path().join("o3"))]), "IM4.dcm");
}

/// Compressed DICOM as a user's folder holds it: a JPEG 2000 slice is predicted (its lossy
/// compression, an irreversible wavelet, noted in the CSV and on stderr) and its SEG written; a
/// 12-bit lossy JPEG one is refused by name, with the way to decompress it, and nothing is written.
#[test]
fn compressed_dicom_is_predicted_and_unread_syntaxes_named() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/tests/fixtures/dicom-compressed");
    let dir = tempfile::tempdir().unwrap();
    let series = dir.path().join("series");
    std::fs::create_dir(&series).unwrap();
    std::fs::copy(fixtures.join("jpeg2000-u12.dcm"), series.join("IM1.dcm")).unwrap();
    let out = dir.path().join("out");
    let r = tumorscan(&["predict", p(&series), "--out", p(&out), "--json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["slices"], 1);
    let csv = std::fs::read_to_string(out.join("predictions.csv")).unwrap();
    assert!(csv.contains("stored with lossy JPEG 2000 compression"), "{csv}");
    assert!(r.stderr.contains("1 of 1 slices stored with lossy JPEG 2000"), "{}", r.stderr);
    assert!(out.join("series_seg.dcm").exists());

    let extended = dir.path().join("extended");
    std::fs::create_dir(&extended).unwrap();
    std::fs::copy(fixtures.join("jpeg-extended-u12.dcm"), extended.join("IM1.dcm")).unwrap();
    let refused = dir.path().join("o2");
    assert_clean_failure(
        &tumorscan(&["predict", p(&extended), "--out", p(&refused)]),
        "JPEG Extended (12-bit lossy) (1.2.840.10008.1.2.4.51) is not read: decompress the series first",
    );
    assert!(!refused.exists());
}

/// The sample patient's FLAIR as a DICOM series (as a scanner would send it): `predict` writes
/// its mask as a DICOM Segmentation whose frames are the mask PNGs, each referring to its slice.
#[test]
fn a_dicom_series_mask_is_written_as_a_dicom_segmentation() {
    let dir = tempfile::tempdir().unwrap();
    let series = dir.path().join("MR_FLAIR");
    std::fs::create_dir(&series).unwrap();
    let folder = repo_root().join("samples/TCGA_CS_5393_19990606");
    for k in 1..=20u32 {
        let tif = folder.join(format!("TCGA_CS_5393_19990606_{k}.tif"));
        let flair: Vec<u16> = image::open(&tif).unwrap().to_rgb8().pixels().map(|p| u16::from(p[1])).collect();
        let bytes = tumorscan_data::phantom::dicom_slice_of(k, "1.2.3.4", 256, "1.2.840.10008.1.2.1", ["0.94", "0.94"], &flair);
        std::fs::write(series.join(format!("IM{k}.dcm")), bytes).unwrap();
    }
    let out = dir.path().join("out");
    let r = tumorscan(&["predict", p(&series), "--out", p(&out)]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let seg = tumorscan_data::phantom::read_seg(&std::fs::read(out.join("MR_FLAIR_seg.dcm")).unwrap()).unwrap();
    assert_eq!((seg.rows, seg.cols, seg.masks.len()), (256, 256, 20));
    let uids: Vec<String> = (1..=20).map(|k| format!("1.2.826.0.1.{k}")).collect();
    assert_eq!(seg.sources, uids);
    let mut tumour = 0;
    for (k, frame) in (1..=20).zip(&seg.masks) {
        let png = image::open(out.join(format!("masks/IM{k}_mask.png"))).unwrap().to_luma8();
        assert!(png.pixels().map(|p| u8::from(p[0] > 0)).eq(frame.iter().copied()), "slice {k}");
        tumour += frame.iter().map(|&v| v as usize).sum::<usize>();
    }
    assert!(tumour > 1000, "{tumour} tumour pixels");
    // Saved into the series' folder, as a viewer keeps it, the SEG is passed over next time.
    std::fs::copy(out.join("MR_FLAIR_seg.dcm"), series.join("MR_FLAIR_seg.dcm")).unwrap();
    let r = tumorscan(&["predict", p(&series), "--out", p(&dir.path().join("again")), "--json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(
        (v["slices"].as_u64(), v["tumor_slices"].as_u64()),
        (Some(20), Some(9)),
        "{}",
        r.stdout
    );
    assert!(
        r.stderr.contains("MR_FLAIR_seg.dcm: a DICOM Segmentation, not an image"),
        "{}",
        r.stderr
    );
    // A folder of only that, given alone, is nothing to predict: exit 1, no --out.
    let seg_only = dir.path().join("SEG");
    std::fs::create_dir(&seg_only).unwrap();
    std::fs::copy(out.join("MR_FLAIR_seg.dcm"), seg_only.join("seg.dcm")).unwrap();
    let nothing = dir.path().join("nothing");
    let r = tumorscan(&["predict", p(&seg_only), "--out", p(&nothing)]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("no DICOM images"), "{}", r.stderr);
    assert!(!nothing.exists());
}

#[test]
fn dicom_series_of_two_sequences_combine_slice_by_slice() {
    let dir = tempfile::tempdir().unwrap();
    let (flair, t1, short) = (dir.path().join("flair"), dir.path().join("t1"), dir.path().join("t1-short"));
    for (folder, series, count) in [(&flair, "1.2.3.1", 3), (&t1, "1.2.3.2", 3), (&short, "1.2.3.3", 2)] {
        std::fs::create_dir(folder).unwrap();
        for n in 1..=count {
            write_dicom(&folder.join(format!("IM{n}.dcm")), n, series, 32);
        }
    }
    let out = dir.path().join("out");
    let r = tumorscan(&["predict", p(&flair), "--pre", p(&t1), "--out", p(&out)]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let rows = csv_rows(&out.join("predictions.csv"));
    assert_eq!(rows.len(), 3);
    assert!(
        rows.iter()
            .all(|r| r["volume"] == "flair" && r["notes"].contains("FLAIR in place of post-contrast")),
        "{rows:?}"
    );
    // The mask refers to the FLAIR series, the input.
    let seg = tumorscan_data::phantom::read_seg(&std::fs::read(out.join("flair_seg.dcm")).unwrap()).unwrap();
    assert_eq!(seg.sources.len(), 3);
    assert_clean_failure(
        &tumorscan(&["predict", p(&flair), "--pre", p(&short), "--out", p(&dir.path().join("o2"))]),
        "2 slices, FLAIR has 3",
    );
}
