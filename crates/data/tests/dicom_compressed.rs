//! Compressed DICOM pixel data, decoded by tumorscan and compared with what pydicom (with GDCM
//! and pylibjpeg) decodes the same files to. The fixtures are a synthetic phantom written by
//! `interop/dicom-compressed/make_fixtures.py`; each read one has its pydicom pixels beside it.

use rand::{Rng, SeedableRng};
use std::path::{Path, PathBuf};
use tumorscan_data::dicom::{assemble, read_one_bytes};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/dicom-compressed")
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(fixtures().join(format!("{name}.dcm"))).unwrap()
}

/// pydicom's pixels for a fixture.
fn expected(name: &str) -> Vec<f32> {
    let bytes = std::fs::read(fixtures().join(format!("{name}.pixels"))).unwrap();
    bytes
        .chunks_exact(4)
        .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f32)
        .collect()
}

/// Largest difference between tumorscan's and pydicom's decoding of each fixture: lossless
/// syntaxes (and JPEG 2000, decoded by ports of one library) exactly, baseline JPEG's inverse
/// DCT to within 1 (libjpeg and jpeg-decoder round differently).
const READ: [(&str, f32); 11] = [
    ("rle-u12", 0.0),
    ("rle-u8", 0.0),
    ("rle-s16", 0.0),
    ("jpeg-lossless-sv1-u12", 0.0),
    ("jpeg-lossless-sv1-s16", 0.0),
    ("jpeg-lossless-u16", 0.0),
    ("jpeg-baseline-u8", 1.0),
    ("jpeg2000-lossless-u12", 0.0),
    ("jpeg2000-lossless-s16", 0.0),
    ("jpeg2000-u12", 0.0),
    ("jpeg2000-lossless-u12-two-fragments", 0.0),
];

#[test]
fn compressed_slices_decode_as_pydicom_decodes_them() {
    for (name, tolerance) in READ {
        let slice = read_one_bytes(name, &fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!((slice.rows, slice.cols), (40, 56), "{name}");
        let want = expected(name);
        assert_eq!(slice.values.len(), want.len(), "{name}");
        let worst = slice.values.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
        assert!(worst <= tolerance, "{name}: differs from pydicom by up to {worst}");
        // The signed phantoms go below zero; the others do not.
        let min = slice.values.iter().copied().fold(f32::MAX, f32::min);
        assert_eq!(min < 0.0, name.ends_with("s16"), "{name}: min {min}");
        // Only lossy compression is noted.
        let lossy = name.starts_with("jpeg-baseline") || name == "jpeg2000-u12";
        assert_eq!(slice.lossy.is_some(), lossy, "{name}: {:?}", slice.lossy);
    }
    // A series of lossy slices says so.
    let slice = read_one_bytes("a/IM1.dcm", &fixture("jpeg2000-u12")).unwrap();
    let v = assemble(Path::new("a"), vec![slice]).unwrap();
    assert!(
        v.notes.iter().any(|n| n.contains("1 of 1 slices stored with lossy JPEG 2000")),
        "{:?}",
        v.notes
    );
}

#[test]
fn syntaxes_not_read_are_named_with_the_way_out() {
    for (name, what) in [("jpeg-ls-lossless-u12", "JPEG-LS Lossless"), ("jpeg-extended-u12", "JPEG Extended")] {
        let e = read_one_bytes(name, &fixture(name)).unwrap_err();
        assert!(e.contains(what) && e.contains("gdcmconv --raw"), "{name}: {e}");
    }
}

/// A stream whose size disagrees with Rows / Columns is refused, not misread into the
/// data set's grid; a cut stream is an error, not a panic.
#[test]
fn streams_that_disagree_with_the_data_set_are_refused() {
    use dicom_core::{DataElement, PrimitiveValue, VR};
    use dicom_dictionary_std::tags;
    for name in ["jpeg-lossless-sv1-u12", "jpeg2000-lossless-u12", "rle-u12", "jpeg-baseline-u8"] {
        let bytes = fixture(name);
        let mut obj = dicom_object::OpenFileOptions::new().from_reader(&bytes[128..]).unwrap();
        obj.put(DataElement::new(tags::ROWS, VR::US, PrimitiveValue::from(39u16)));
        let mut edited = Vec::new();
        obj.write_all(&mut edited).unwrap();
        let e = read_one_bytes(name, &edited).unwrap_err();
        let said = match name.starts_with("rle") {
            // RLE has no size of its own: its planes hold more samples than 39 rows.
            true => e.contains("or more samples but Rows x Columns are 2184"),
            false => e.contains("56x40") && e.contains("56x39"),
        };
        assert!(said, "{name}: {e}");
        obj.put(DataElement::new(tags::ROWS, VR::US, PrimitiveValue::from(41u16)));
        let mut edited = Vec::new();
        obj.write_all(&mut edited).unwrap();
        assert!(read_one_bytes(name, &edited).is_err(), "{name} read with Rows 41");
        for cut in [40, 400, 1000] {
            assert!(read_one_bytes(name, &bytes[..bytes.len() - cut]).is_err(), "{name} cut by {cut}");
        }
    }
}

/// Random bytes changed anywhere in the compressed files: each is read or refused, and the
/// process survives (the decoders' own panics are caught and reported).
#[test]
fn mutated_compressed_files_never_bring_the_reader_down() {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(60);
    let (mut read, mut refused) = (0, 0);
    // More per file with DICOM_MUTATIONS=N (a long run before a release).
    let per_file = std::env::var("DICOM_MUTATIONS").ok().and_then(|v| v.parse().ok()).unwrap_or(300);
    for (name, _) in READ {
        let base = fixture(name);
        for _ in 0..per_file {
            let mut f = base.clone();
            for _ in 0..rng.random_range(1..8) {
                let i = rng.random_range(128..f.len());
                f[i] = rng.random();
            }
            match read_one_bytes(name, &f) {
                Ok(s) => {
                    assert_eq!(s.values.len(), s.rows * s.cols);
                    read += 1
                }
                Err(_) => refused += 1,
            }
        }
    }
    assert!(read > 100 && refused > 100, "read {read}, refused {refused}");
}
