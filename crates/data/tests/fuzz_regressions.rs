//! Inputs that crashed a fuzz target (see `fuzz/README.md`), kept in `tests/fuzz_regressions/`
//! as `<target>-<n>`: each is fed to the target's entry point and must come back as a clean
//! error (never a panic, an abort or a multi-GB allocation). New reproducers only need to be
//! dropped into the folder; the table below pins the expected reason for the known ones.

use std::path::{Path, PathBuf};
use tumorscan_data::image_io::{decode_mask, decode_slice, ChannelPolicy};

/// What each fuzz target calls, reduced to "which error, if any".
fn run(target: &str, bytes: &[u8]) -> Result<(), String> {
    match target {
        "image_slice" => {
            for name in ["fuzz.tif", "fuzz.png"] {
                let p = Path::new(name);
                for policy in [ChannelPolicy::Strict, ChannelPolicy::Lenient] {
                    let _ = decode_slice(p, bytes, policy);
                }
                let _ = decode_mask(p, bytes);
            }
            Ok(())
        }
        "nifti" => tumorscan_data::nifti::read_bytes("fuzz.nii.gz", bytes).map(drop),
        "dicom" => match tumorscan_data::dicom::read_file_bytes("fuzz.dcm", bytes)? {
            tumorscan_data::dicom::DicomFile::Image(slices) => tumorscan_data::dicom::assemble(Path::new("fuzz"), slices).map(drop),
            tumorscan_data::dicom::DicomFile::NotImage(_) => Ok(()),
        },
        other => panic!("unknown fuzz target '{other}'"),
    }
}

/// Expected error (a substring, or substrings any one of which will do, split by `|`) for the
/// reproducers found so far. Not listed: `dicom-6`, a JPEG
/// 2000 frame on which openjp2's packet header reader overflows an integer; with overflow
/// checks (the fuzz build, debug builds) that is a panic, caught and reported as an unreadable
/// frame; without (release) the frame decodes, to noise.
const EXPECTED: [(&str, &str); 7] = [
    // dicom-object: meta group string read with a zero-filled buffer of the declared length.
    ("dicom-1", "file meta element (0002,0002) declares"),
    // dicom-parser: OB value buffer of the declared length.
    ("dicom-2", "element (0000,2E00) declares 3759013886 bytes"),
    // dicom-parser: text value buffer of the declared length.
    ("dicom-3", "element (0008,1150) declares 3385393178 bytes"),
    // dicom-parser: UL value buffer of the declared length.
    ("dicom-4", "element (0000,0000) declares 3587560917 bytes"),
    // dicom-parser: US value buffer of the declared length.
    ("dicom-5", "element (0028,0010) declares 3758096386 bytes"),
    // pure_jpegls: a context's statistics overflow on a corrupt scan (context.rs:236); with
    // overflow checks a panic, caught, without an unreadable scan.
    (
        "dicom-7",
        "a JPEG-LS frame could not be decoded|unreadable JPEG-LS frame: its coded data",
    ),
    // nifti: volume buffer reserved from dims x bitpix (64 GiB here) before reading; now the
    // voxel size comes from the data type and only the bytes present are read.
    ("nifti-1", "shorter than its header declares"),
];

fn reproducers() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz_regressions");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

#[test]
fn every_fuzz_reproducer_is_a_clean_error() {
    let files = reproducers();
    assert!(files.len() >= EXPECTED.len(), "reproducers missing: {files:?}");
    for f in files {
        let name = f.file_name().unwrap().to_string_lossy().to_string();
        let (target, _) = name.rsplit_once('-').unwrap_or_else(|| panic!("{name}: expected <target>-<n>"));
        let bytes = std::fs::read(&f).unwrap();
        let result = run(target, &bytes);
        if let Some((_, want)) = EXPECTED.iter().find(|(n, _)| *n == name) {
            let err = result.expect_err(&name);
            assert!(want.split('|').any(|w| err.contains(w)), "{name}: {err}");
        }
    }
}
