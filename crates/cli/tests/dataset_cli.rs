//! `tumorscan dataset ...` end to end, including a corpus of malformed inputs.

mod common;
use common::*;
use std::path::Path;

#[test]
fn summary_index_split_show_on_phantoms() {
    let dir = tempfile::tempdir().unwrap();
    phantom_dir(dir.path(), 6, 5);
    let r = tumorscan(&["dataset", "summary", p(dir.path()), "--no-cache"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.contains("patients     6") && r.stdout.contains("slices       30"),
        "{}",
        r.stdout
    );
    let r = tumorscan(&["dataset", "summary", p(dir.path()), "--json", "--no-cache"]);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["tumor_slices"], 18);

    let csv = dir.path().join("slices.csv");
    assert_eq!(tumorscan(&["dataset", "index", p(dir.path()), "--out", p(&csv)]).code, 0);
    let text = std::fs::read_to_string(&csv).unwrap();
    assert!(text.starts_with("patient,slice,image_path,mask_path,has_tumor,tumor_pixels"));
    assert_eq!(text.lines().count(), 31);

    let folds = dir.path().join("folds.csv");
    assert_eq!(
        tumorscan(&["dataset", "split", p(dir.path()), "--folds", "3", "--seed", "1", "--out", p(&folds)]).code,
        0
    );
    let rows = tumorscan_data::split::read_folds(&folds).unwrap();
    assert_eq!(rows.len(), 6);
    for f in 0..3 {
        assert_eq!(rows.iter().filter(|r| r.fold == f).count(), 2);
    }

    let grid = dir.path().join("grid.png");
    assert_eq!(
        tumorscan(&["dataset", "show", p(dir.path()), "--count", "4", "--seed", "2", "--out", p(&grid)]).code,
        0
    );
    assert!(image::open(&grid).is_ok());
    // Never overwrite without --force.
    assert_clean_failure(&tumorscan(&["dataset", "show", p(dir.path()), "--out", p(&grid)]), "--force");
    let strip = dir.path().join("strip.png");
    assert_eq!(
        tumorscan(&["dataset", "show", p(dir.path()), "--patient", "TCGA_AA_0000", "--out", p(&strip)]).code,
        0
    );
}

/// Each case: build a dataset, break it one way, and expect a clear error naming the file.
#[test]
fn malformed_inputs_get_clear_errors() {
    type Breaker = fn(&Path) -> String;
    let cases: Vec<(&str, Breaker)> = vec![
        ("image without mask", |d| {
            let f = d.join("TCGA_AA_0000_20000101/TCGA_AA_0000_20000101_2_mask.png");
            std::fs::remove_file(&f).unwrap();
            "TCGA_AA_0000_20000101_2.png".into()
        }),
        ("truncated png", |d| {
            let f = d.join("TCGA_AA_0000_20000101/TCGA_AA_0000_20000101_1.png");
            let b = std::fs::read(&f).unwrap();
            std::fs::write(&f, &b[..b.len() / 2]).unwrap();
            "TCGA_AA_0000_20000101_1.png".into()
        }),
        ("zero-byte mask", |d| {
            std::fs::write(d.join("TCGA_AA_0000_20000101/TCGA_AA_0000_20000101_3_mask.png"), b"").unwrap();
            "_3_mask.png".into()
        }),
        ("text file named .tif", |d| {
            let f = d.join("TCGA_AA_0000_20000101/TCGA_AA_0000_20000101_9.tif");
            std::fs::write(&f, b"this is not a tiff").unwrap();
            image::GrayImage::new(32, 32)
                .save(d.join("TCGA_AA_0000_20000101/TCGA_AA_0000_20000101_9_mask.png"))
                .unwrap();
            "_9.tif".into()
        }),
        ("truncated tiff", |d| {
            let img = image::RgbImage::new(32, 32);
            let f = d.join("TCGA_AA_0000_20000101/TCGA_AA_0000_20000101_9.tif");
            img.save(&f).unwrap();
            let b = std::fs::read(&f).unwrap();
            std::fs::write(&f, &b[..b.len() / 3]).unwrap();
            image::GrayImage::new(32, 32)
                .save(d.join("TCGA_AA_0000_20000101/TCGA_AA_0000_20000101_9_mask.png"))
                .unwrap();
            "_9.tif".into()
        }),
        ("mask of wrong size", |d| {
            image::GrayImage::new(16, 16)
                .save(d.join("TCGA_AA_0000_20000101/TCGA_AA_0000_20000101_2_mask.png"))
                .unwrap();
            "_2_mask.png".into()
        }),
        ("16-bit image", |d| {
            let img: image::ImageBuffer<image::Rgb<u16>, Vec<u16>> = image::ImageBuffer::new(32, 32);
            img.save(d.join("TCGA_AA_0000_20000101/TCGA_AA_0000_20000101_2.png")).unwrap();
            "_2.png".into()
        }),
        ("grayscale image", |d| {
            image::GrayImage::new(32, 32)
                .save(d.join("TCGA_AA_0000_20000101/TCGA_AA_0000_20000101_2.png"))
                .unwrap();
            "_2.png".into()
        }),
        ("non-binary mask", |d| {
            image::GrayImage::from_pixel(32, 32, image::Luma([7]))
                .save(d.join("TCGA_AA_0000_20000101/TCGA_AA_0000_20000101_2_mask.png"))
                .unwrap();
            "not binary".into()
        }),
        ("malformed data.csv", |d| {
            std::fs::write(d.join("data.csv"), "Patient,age\nTCGA_AA_0000,1,2,3\n").unwrap();
            "data.csv".into()
        }),
        ("data.csv without Patient column", |d| {
            std::fs::write(d.join("data.csv"), "id,age\nx,1\n").unwrap();
            "data.csv".into()
        }),
        ("dangling symlink", |d| {
            std::os::unix::fs::symlink("/nonexistent/x.png", d.join("TCGA_AA_0000_20000101/TCGA_AA_0000_20000101_2.png")).ok();
            std::fs::remove_file(d.join("TCGA_AA_0000_20000101/TCGA_AA_0000_20000101_2.png")).ok();
            std::os::unix::fs::symlink("/nonexistent/x.png", d.join("TCGA_AA_0000_20000101/TCGA_AA_0000_20000101_2.png")).unwrap();
            "_2.png".into()
        }),
    ];
    for (name, breaker) in cases {
        let dir = tempfile::tempdir().unwrap();
        phantom_dir(dir.path(), 2, 3);
        let needle = breaker(dir.path());
        let r = tumorscan(&["dataset", "summary", p(dir.path()), "--no-cache"]);
        assert!(r.code != 0, "{name}: expected failure, got {}", r.stdout);
        assert!(!r.stderr.contains("panicked"), "{name}: panic: {}", r.stderr);
        assert!(r.stderr.contains(&needle), "{name}: message should name {needle}: {}", r.stderr);
    }
    // An empty folder and a missing one.
    let empty = tempfile::tempdir().unwrap();
    assert_clean_failure(&tumorscan(&["dataset", "summary", p(empty.path())]), "no slices found");
    assert_clean_failure(&tumorscan(&["dataset", "summary", "/nonexistent/dataset"]), "/nonexistent/dataset");
}

#[test]
fn rgba_slices_are_converted_not_rejected() {
    let dir = tempfile::tempdir().unwrap();
    phantom_dir(dir.path(), 1, 2);
    image::RgbaImage::from_pixel(32, 32, image::Rgba([10, 20, 30, 255]))
        .save(dir.path().join("TCGA_AA_0000_20000101/TCGA_AA_0000_20000101_1.png"))
        .unwrap();
    let r = tumorscan(&["dataset", "summary", p(dir.path()), "--no-cache"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
}

/// `--threads` is global (before or after the subcommand); 0 is refused with a message.
#[test]
fn threads_option_sizes_the_pool_or_fails_clearly() {
    let dir = tempfile::tempdir().unwrap();
    phantom_dir(dir.path(), 2, 3);
    for args in [
        vec!["--threads", "1", "dataset", "summary", p(dir.path()), "--no-cache"],
        vec!["dataset", "summary", p(dir.path()), "--no-cache", "--threads", "2"],
    ] {
        let r = tumorscan(&args);
        assert_eq!(r.code, 0, "{}", r.stderr);
        assert!(r.stdout.contains("slices       6"), "{}", r.stdout);
    }
    assert_clean_failure(&tumorscan(&["--threads", "0", "dataset", "summary", p(dir.path())]), "--threads");
}

/// `index` and `split` keep an existing --out unless --force, like `show`.
#[test]
fn index_and_split_never_overwrite_without_force() {
    let dir = tempfile::tempdir().unwrap();
    phantom_dir(dir.path(), 2, 2);
    for cmd in ["index", "split"] {
        let out = dir.path().join(format!("{cmd}.csv"));
        std::fs::write(&out, "mine\n").unwrap();
        let mut args = vec!["dataset", cmd, p(dir.path()), "--out", p(&out)];
        if cmd == "split" {
            args.extend(["--folds", "2"]);
        }
        let r = tumorscan(&args);
        assert_clean_failure(&r, &format!("{} exists; pass --force to overwrite it", out.display()));
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "mine\n", "{cmd}: kept");
        args.push("--force");
        let r = tumorscan(&args);
        assert_eq!(r.code, 0, "{cmd}: {}", r.stderr);
        assert_ne!(std::fs::read_to_string(&out).unwrap(), "mine\n", "{cmd}: overwritten on --force");
    }
}

#[test]
fn show_refuses_zero_slices_and_says_when_it_draws_fewer() {
    let dir = tempfile::tempdir().unwrap();
    phantom_dir(dir.path(), 2, 2);
    let grid = dir.path().join("grid.png");
    assert_clean_failure(
        &tumorscan(&["dataset", "show", p(dir.path()), "--count", "0", "--out", p(&grid)]),
        "at least 1",
    );
    assert!(!grid.exists());
    let r = tumorscan(&["dataset", "show", p(dir.path()), "--count", "50", "--out", p(&grid)]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("drew 4 slices, not 50"), "{}", r.stderr);
    assert!(image::open(&grid).is_ok());
}
